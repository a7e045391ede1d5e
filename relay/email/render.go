package email

import (
	"bytes"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Message is a rendered mail.
type Message struct {
	Subject string
	// HTML and Text are the two alternative parts of the body.
	HTML, Text string
}

// Title is the mail's subject.
func (m *Message) Title() string { return m.Subject }

// Bounds on what one mail shows.
const (
	// MaxHTMLBytes keeps a digest's HTML part under the 102 KB above
	// which Gmail clips a message and hides its end.
	MaxHTMLBytes = 90_000
	subjectRunes = 120
	titleRunes   = 512
	fieldRunes   = 500
	quoteRunes   = 2000
	maxExtra     = 20
	maxRefs      = 20
	rowRunes     = 160
	compactRunes = 100
)

// card is what the card template shows; every string is payload text that
// the template escapes, but Color and Lang, which come from the relay.
type card struct {
	Lang, Color, Emoji, Level, Heading string
	Note, Title, Link, Subtitle, Quote string
	Facts                              []formatter.Fact
	RefsLabel                          string
	Refs                               []formatter.Ref
	Button                             string
}

// digest is what the digest template shows.
type digest struct {
	Lang, Color, Emoji, Title string
	Notes                     []string
	Facts                     []formatter.Fact
	Rows                      []row
	More                      string
}

// row is one issue of a digest.
type row struct {
	Color, Emoji, Title, Link, Count, Meta string
}

// form is how much of an alert a card shows.
type form int

const (
	full form = iota
	// compact is full with the extra facts dropped and the rest cut
	// shorter: what a card with huge fields falls back to.
	compact
	minimal
)

// Card renders one alert as a mail, within MaxHTMLBytes.
func (r *Receiver) Card(it formatter.Item) (notify.Message, error) {
	m, err := r.card(it, full)
	if err == nil && len(m.HTML) > MaxHTMLBytes {
		m, err = r.card(it, compact)
	}
	return m, err
}

// Minimal renders one alert with its heading, title, project, environment
// and time only: a small mail for a server that refused the full one.
func (r *Receiver) Minimal(it formatter.Item) notify.Message {
	m, err := r.card(it, minimal)
	if err != nil {
		// The templates are fixed and their data plain strings: only a
		// bug in them makes them fail.
		panic("email: card template: " + err.Error())
	}
	return m
}

func (r *Receiver) card(it formatter.Item, f form) (*Message, error) {
	a := it.Alert
	s := formatter.Summarize(a, r.lang, r.zone)
	l := formatter.LabelsFor(r.lang)
	c := card{
		Lang: langTag(r.lang), Color: s.Style.Color, Emoji: s.Style.Emoji, Level: strings.ToUpper(line(s.Level, 20)),
		Heading: line(s.Heading, fieldRunes), Note: line(it.Note, fieldRunes), Title: line(s.Title, titleRunes),
	}
	field, quote, extra := fieldRunes, quoteRunes, s.Extra[:min(len(s.Extra), maxExtra)]
	if f == compact {
		field, quote, extra = compactRunes, compactRunes, nil
	}
	if f == minimal {
		for _, fc := range []formatter.Fact{{Label: l.Project, Value: a.DisplayProject()}, {Label: l.Environment, Value: a.Environment}, {Label: l.Time, Value: formatter.FormatTime(a.Time, r.zone)}} {
			if strings.TrimSpace(fc.Value) != "" {
				c.Facts = append(c.Facts, fact(fc, field))
			}
		}
	} else {
		c.Link, c.Subtitle, c.Quote = s.Link, line(s.Subtitle, field), block(s.Quote, quote)
		for _, fc := range slices.Concat(s.Facts, extra) {
			c.Facts = append(c.Facts, fact(fc, field))
		}
		c.RefsLabel = l.PullRequests
		for _, ref := range s.Refs[:min(len(s.Refs), maxRefs)] {
			c.Refs = append(c.Refs, formatter.Ref{Title: line(ref.Title, field), URL: ref.URL})
		}
		if c.Link != "" {
			c.Button = l.ViewInSentry
		}
	}
	var html bytes.Buffer
	if err := templates.ExecuteTemplate(&html, "card", c); err != nil {
		return nil, err
	}
	return &Message{Subject: subject(a), HTML: html.String(), Text: cardText(c)}, nil
}

func fact(f formatter.Fact, n int) formatter.Fact {
	return formatter.Fact{Label: line(f.Label, n), Value: line(f.Value, n)}
}

func cardText(c card) string {
	var b strings.Builder
	if c.Note != "" {
		b.WriteString("↪ " + c.Note + "\n\n")
	}
	b.WriteString(c.Emoji + " " + c.Level + " · " + c.Heading + "\n")
	b.WriteString(c.Title + "\n")
	if c.Subtitle != "" {
		b.WriteString(c.Subtitle + "\n")
	}
	b.WriteString("\n")
	for _, f := range c.Facts {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	if len(c.Refs) > 0 {
		b.WriteString("\n" + c.RefsLabel + ":\n")
		for _, ref := range c.Refs {
			b.WriteString("- " + ref.Title + " <" + ref.URL + ">\n")
		}
	}
	if c.Quote != "" {
		b.WriteString("\n> " + strings.ReplaceAll(c.Quote, "\n", "\n> ") + "\n")
	}
	if c.Link != "" {
		b.WriteString("\n" + c.Button + ": " + c.Link + "\n")
	}
	return b.String()
}

// Digest renders waiting alerts as one mail: counts by level and project,
// then one row per issue, newest first. When not all fit in MaxHTMLBytes,
// the issues that waited longest are taken; covered lists the items the
// mail carries. With plain set, rows carry no links.
func (r *Receiver) Digest(items []formatter.Item, plain bool) (notify.Message, []int) {
	groups := formatter.GroupItems(items)
	rows := make([]row, len(groups))
	// The summary and the frame around the rows: measured below.
	used, n := 8<<10, 0
	var buf bytes.Buffer
	for i, g := range groups {
		rows[i] = r.row(g, plain)
		buf.Reset()
		if err := templates.ExecuteTemplate(&buf, "row", rows[i]); err != nil {
			panic("email: digest row template: " + err.Error())
		}
		if used+buf.Len() > MaxHTMLBytes && n > 0 {
			break
		}
		used += buf.Len()
		n++
	}
	for {
		msg, covered := r.digest(items, groups[:n], rows[:n])
		if len(msg.HTML) <= MaxHTMLBytes || n == 1 {
			return msg, covered
		}
		n--
	}
}

func (r *Receiver) row(g *formatter.Group, plain bool) row {
	a := g.Newest
	_, st := formatter.StyleOf(a)
	title := line(a.Title, rowRunes)
	if title == "" {
		title = "(no title)"
	}
	rw := row{Color: st.Color, Emoji: st.Emoji, Title: title, Count: "×" + strconv.Itoa(g.Count)}
	if !plain {
		rw.Link = formatter.SafeURL(a.Link)
	}
	var meta []string
	for _, s := range []string{a.DisplayProject(), a.Environment} {
		if s = line(s, 40); s != "" {
			meta = append(meta, s)
		}
	}
	if !a.Time.IsZero() {
		meta = append(meta, a.Time.In(r.zone).Format("15:04:05"))
	}
	rw.Meta = strings.Join(meta, " · ")
	return rw
}

func (r *Receiver) digest(items []formatter.Item, groups []*formatter.Group, rows []row) (*Message, []int) {
	l := formatter.LabelsFor(r.lang)
	f := formatter.Digest(items, groups, r.lang, r.zone)
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, line(n, fieldRunes))
	}
	_, st := formatter.StyleOf(f.Worst)
	d := digest{Lang: langTag(r.lang), Color: st.Color, Emoji: st.Emoji, Title: f.Heading, Notes: notes}
	d.Facts = append(d.Facts, formatter.Fact{Label: l.Levels, Value: f.Levels}, formatter.Fact{Label: l.Projects, Value: f.Projects})
	if f.Span != "" {
		d.Facts = append(d.Facts, formatter.Fact{Label: l.Time, Value: f.Span})
	}
	rowOf := map[*formatter.Group]row{}
	for i, g := range groups {
		rowOf[g] = rows[i]
	}
	for _, g := range f.Order {
		d.Rows = append(d.Rows, rowOf[g])
	}
	if rest := len(items) - len(f.Covered); rest > 0 {
		d.More = l.MoreFollow(rest)
	}
	var html bytes.Buffer
	if err := templates.ExecuteTemplate(&html, "digest", d); err != nil {
		panic("email: digest template: " + err.Error())
	}
	return &Message{Subject: f.Title, HTML: html.String(), Text: digestText(d)}, f.Covered
}

func digestText(d digest) string {
	var b strings.Builder
	for _, n := range d.Notes {
		b.WriteString("↪ " + n + "\n")
	}
	if len(d.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString(d.Emoji + " " + d.Title + "\n\n")
	for _, f := range d.Facts {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	b.WriteString("\n")
	for i, rw := range d.Rows {
		b.WriteString(strconv.Itoa(i+1) + ". " + rw.Emoji + " " + rw.Title + " " + rw.Count)
		if rw.Meta != "" {
			b.WriteString(" · " + rw.Meta)
		}
		b.WriteString("\n")
		if rw.Link != "" {
			b.WriteString("   " + rw.Link + "\n")
		}
	}
	if d.More != "" {
		b.WriteString("\n" + d.More + "\n")
	}
	return b.String()
}

func subject(a formatter.Alert) string {
	title := line(a.Title, subjectRunes)
	if title == "" {
		title = "(no title)"
	}
	if p := line(a.DisplayProject(), 40); p != "" {
		title = "[" + p + "] " + title
	}
	return title
}

func langTag(lang string) string {
	if lang == formatter.LangEN {
		return "en"
	}
	return "zh-CN"
}

// line is payload text as one line: control characters become spaces and
// bidirectional controls U+FFFD (they could make a line read backwards),
// cut to n runes.
func line(s string, n int) string {
	return formatter.Shorten(formatter.PlainLine(strings.ToValidUTF8(s, "\uFFFD")), n)
}

// block is line for text whose line breaks count, such as a message.
func block(s string, n int) string {
	lines := strings.Split(strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(formatter.PlainLine(l), unicode.IsSpace)
	}
	return formatter.Shorten(strings.TrimSpace(strings.Join(lines, "\n")), n)
}

// templates are the HTML parts. html/template escapes every value for
// where it lands (text, attribute, URL), so payload text stays text;
// links are formatter.SafeURL's http(s) URLs. Styles are inline, as mail
// clients drop <style> blocks.
var templates = template.Must(template.New("mail").Parse(`
{{- define "head" -}}
<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0;padding:16px;background:#f4f5f7;font-family:-apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2328;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px;margin:0 auto;background:#ffffff;border-radius:6px;border-top:4px solid {{.Color}};">
<tr><td style="padding:20px 24px;">
{{- end -}}

{{- define "foot" -}}
</td></tr>
</table>
<p style="max-width:640px;margin:8px auto 0;font-size:12px;color:#8d8d8d;text-align:center;">sentry-dingtalk-relay</p>
</body>
</html>
{{end -}}

{{- define "facts" -}}
<table role="presentation" cellpadding="0" cellspacing="0" style="width:100%;font-size:14px;border-collapse:collapse;">
{{- range .}}
<tr><td style="padding:4px 12px 4px 0;color:#656d76;white-space:nowrap;vertical-align:top;">{{.Label}}</td><td style="padding:4px 0;word-break:break-word;">{{.Value}}</td></tr>
{{- end}}
</table>
{{- end -}}

{{- define "note" -}}
<p style="margin:0 0 12px;padding:8px 12px;background:#fff8e1;border-left:3px solid #F5A623;font-size:13px;">↪ {{.}}</p>
{{- end -}}

{{- define "card" -}}
{{template "head" .}}
{{if .Note}}{{template "note" .Note}}
{{end -}}
<p style="margin:0 0 4px;font-size:13px;font-weight:600;color:{{.Color}};">{{.Emoji}} {{.Level}} · {{.Heading}}</p>
<h1 style="margin:0 0 8px;font-size:18px;line-height:1.4;">{{if .Link}}<a href="{{.Link}}" style="color:#1f2328;text-decoration:none;">{{.Title}}</a>{{else}}{{.Title}}{{end}}</h1>
{{if .Subtitle}}<p style="margin:0 0 12px;font-size:14px;color:#656d76;">{{.Subtitle}}</p>
{{end -}}
{{template "facts" .Facts}}
{{if .Refs}}<p style="margin:12px 0 0;font-size:14px;">{{.RefsLabel}}:
{{- range $i, $r := .Refs}}{{if $i}} ·{{end}} <a href="{{$r.URL}}" style="color:#2788CE;">{{$r.Title}}</a>{{end}}</p>
{{end -}}
{{if .Quote}}<pre style="margin:12px 0 0;padding:10px 12px;background:#f6f8fa;border-radius:4px;font-size:13px;white-space:pre-wrap;word-break:break-word;font-family:SFMono-Regular,Consolas,monospace;">{{.Quote}}</pre>
{{end -}}
{{if .Link}}<p style="margin:20px 0 0;"><a href="{{.Link}}" style="display:inline-block;padding:10px 18px;background:{{.Color}};color:#ffffff;border-radius:4px;text-decoration:none;font-weight:600;">{{.Button}}</a></p>
{{end -}}
{{template "foot" .}}
{{- end -}}

{{- define "row" -}}
<tr><td style="padding:6px 8px 6px 0;vertical-align:top;color:{{.Color}};">{{.Emoji}}</td><td style="padding:6px 0;border-bottom:1px solid #eaecef;word-break:break-word;">{{if .Link}}<a href="{{.Link}}" style="color:#1f2328;">{{.Title}}</a>{{else}}{{.Title}}{{end}} <b>{{.Count}}</b><br><span style="font-size:12px;color:#656d76;">{{.Meta}}</span></td></tr>
{{- end -}}

{{- define "digest" -}}
{{template "head" .}}
{{range .Notes}}{{template "note" .}}
{{end -}}
<h1 style="margin:0 0 12px;font-size:18px;line-height:1.4;"><span style="color:{{.Color}};">{{.Emoji}}</span> {{.Title}}</h1>
{{template "facts" .Facts}}
<table role="presentation" cellpadding="0" cellspacing="0" style="width:100%;margin-top:12px;font-size:14px;border-collapse:collapse;">
{{- range .Rows}}
{{template "row" .}}
{{- end}}
</table>
{{if .More}}<p style="margin:12px 0 0;font-size:13px;color:#656d76;">{{.More}}</p>
{{end -}}
{{template "foot" .}}
{{- end -}}
`))
