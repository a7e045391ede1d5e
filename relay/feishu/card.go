package feishu

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Size limits of a message body.
const (
	// MaxBody is what Feishu accepts.
	MaxBody = 20 << 10
	// TargetBody is what the renderer aims for, leaving headroom.
	TargetBody = 18000
)

// Limits on what one card shows, so one field cannot crowd out the rest.
const (
	titleRunes = 120
	fieldRunes = 200
	labelRunes = 40
	quoteRunes = 400
	noteRunes  = 200
	lineRunes  = 90
	// maxLinkBytes bounds a link target: a longer one is left out (the
	// text stays) so it cannot take a card's room.
	maxLinkBytes = 1024
	// maxMentionBytes bounds a card's mentions.
	maxMentionBytes = 2048
)

// Message is a rendered Feishu message: an interactive card (message card
// JSON 1.0, which every Feishu and Lark client renders).
type Message struct {
	card  card
	title string
}

// Title is what logs and the dry run show of the message: the card's
// header.
func (m *Message) Title() string { return m.title }

// JSON is the body Feishu is sent, without the signature.
func (m *Message) JSON() []byte { return m.body("", "") }

// body is the request body with the signature, when there is one.
func (m *Message) body(timestamp, sign string) []byte {
	v := struct {
		Timestamp string `json:"timestamp,omitempty"`
		Sign      string `json:"sign,omitempty"`
		MsgType   string `json:"msg_type"`
		Card      *card  `json:"card"`
	}{timestamp, sign, "interactive", &m.card}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Without HTML escaping: it would make every '<' and '&' six bytes.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only strings, slices and bools: encoding cannot fail.
		panic("feishu: encode message: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

type card struct {
	Config   cardConfig `json:"config"`
	Header   header     `json:"header"`
	Elements []element  `json:"elements"`
}

type cardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
	EnableForward  bool `json:"enable_forward"`
}

type header struct {
	Template string `json:"template"`
	Title    text   `json:"title"`
}

type text struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

type element struct {
	Tag     string   `json:"tag"`
	Text    *text    `json:"text,omitempty"`
	Fields  []field  `json:"fields,omitempty"`
	Actions []button `json:"actions,omitempty"`
}

type field struct {
	IsShort bool `json:"is_short"`
	Text    text `json:"text"`
}

type button struct {
	Tag  string `json:"tag"`
	Text text   `json:"text"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

func div(md larkMD) element {
	return element{Tag: "div", Text: &text{Tag: "lark_md", Content: string(md)}}
}

// fact is a labelled value: the label bold above it.
func fact(label, value string) field {
	md := "**" + escapeMD(formatter.Shorten(label, labelRunes), false) + "**\n" + escapeMD(formatter.Shorten(value, fieldRunes), false)
	return field{IsShort: true, Text: text{Tag: "lark_md", Content: string(md)}}
}

// link is text linked to u, or the text alone when u is "".
func link(s, u string) larkMD {
	if u == "" {
		return escapeMD(s, false)
	}
	return "[" + escapeMD(s, false) + "](" + larkMD(u) + ")"
}

// entry is one optional piece of a card: a field joins the fields before
// it, an element stands alone.
type entry struct {
	field   *field
	element *element
}

// signatureSize is what a signature adds to a body.
var signatureSize = len(`"timestamp":"1700000000","sign":"` + strings.Repeat("x", 44) + `",`)

// fit builds the card of head, must, as many optional entries as fit
// (in order; an ellipsis says some were left out) and tail, within
// TargetBody bytes with the signature.
func fit(head header, must []element, optional []entry, tail []element) card {
	build := func(k int) card {
		c := card{Config: cardConfig{WideScreenMode: true, EnableForward: true}, Header: head, Elements: slices.Clone(must)}
		joins := false
		for _, e := range optional[:k] {
			if e.field == nil {
				c.Elements = append(c.Elements, *e.element)
				joins = false
				continue
			}
			if !joins {
				c.Elements = append(c.Elements, element{Tag: "div"})
				joins = true
			}
			last := &c.Elements[len(c.Elements)-1]
			last.Fields = append(last.Fields, *e.field)
		}
		if k < len(optional) {
			c.Elements = append(c.Elements, div("…"))
		}
		c.Elements = append(c.Elements, tail...)
		return c
	}
	size := func(c card) int { return len((&Message{card: c}).JSON()) + signatureSize }
	// More entries never make a smaller card: bisect for the most that fit.
	lo, hi := 0, len(optional)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if size(build(mid)) <= TargetBody {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return build(lo)
}

// Card renders one alert as a card: the header coloured by level, the
// facts as fields, a button to Sentry, the mentions.
func (r *Receiver) Card(it formatter.Item) (notify.Message, error) {
	return r.card(it, false), nil
}

// Minimal renders one alert as a short card without links: what Feishu
// takes whatever made it refuse the card.
func (r *Receiver) Minimal(it formatter.Item) notify.Message {
	return r.card(it, true)
}

func (r *Receiver) card(it formatter.Item, minimal bool) *Message {
	a := it.Alert
	s := formatter.Summarize(a, r.language, r.zone)
	l := formatter.LabelsFor(r.language)
	var must []element
	if it.Note != "" {
		must = append(must, div("↪ "+escapeMD(formatter.Shorten(it.Note, noteRunes), false)))
	}
	badge := s.Style.Emoji + " " + strings.ToUpper(formatter.Shorten(s.Level, 20))
	must = append(must, div("**"+escapeMD(s.Heading, false)+"** · "+escapeMD(badge, false)))
	var optional []entry
	var tail []element
	if minimal {
		facts := element{Tag: "div"}
		for _, f := range []formatter.Fact{{Label: l.Project, Value: a.DisplayProject()}, {Label: l.Environment, Value: a.Environment}, {Label: l.Time, Value: formatter.FormatTime(a.Time, r.zone)}} {
			if strings.TrimSpace(f.Value) != "" {
				facts.Fields = append(facts.Fields, fact(f.Label, f.Value))
			}
		}
		if len(facts.Fields) > 0 {
			must = append(must, facts)
		}
	} else {
		add := func(e element) { optional = append(optional, entry{element: &e}) }
		addFact := func(f formatter.Fact) {
			fd := fact(f.Label, f.Value)
			optional = append(optional, entry{field: &fd})
		}
		if s.Subtitle != "" {
			add(div(escapeMD(formatter.Shorten(s.Subtitle, fieldRunes), false)))
		}
		for _, f := range s.Facts {
			addFact(f)
		}
		if len(s.Refs) > 0 {
			refs := make([]string, len(s.Refs))
			for i, ref := range s.Refs {
				refs[i] = string(link(formatter.Shorten(ref.Title, lineRunes), linkable(ref.URL)))
			}
			add(div("**" + escapeMD(l.PullRequests, false) + ":** " + larkMD(strings.Join(refs, " · "))))
		}
		if s.Quote != "" {
			add(div(escapeMD(formatter.Shorten(s.Quote, quoteRunes), true)))
		}
		for _, f := range s.Extra {
			addFact(f)
		}
		if u := linkable(s.Link); u != "" {
			tail = append(tail, element{Tag: "action", Actions: []button{{
				Tag: "button", Text: text{Tag: "plain_text", Content: l.ViewInSentry}, Type: "primary", URL: u,
			}}})
		}
	}
	if m := mentions(it.Mentions); m != "" {
		tail = append(tail, div(m))
	}
	title := r.headerTitle(cardTitle(a))
	return &Message{card: fit(header{Template: template(a), Title: text{Tag: "plain_text", Content: title}}, must, optional, tail), title: title}
}

// cardTitle is "[project] title".
func cardTitle(a formatter.Alert) string {
	title := formatter.Shorten(strings.TrimSpace(a.Title), titleRunes)
	if title == "" {
		title = "(no title)"
	}
	if p := a.DisplayProject(); p != "" {
		title = "[" + formatter.Shorten(p, 40) + "] " + title
	}
	return title
}

// headerTitle is a card's header, plain text: the bot's keyword, when it
// has one, comes first unless the title already holds it, since Feishu
// refuses a card without it.
func (r *Receiver) headerTitle(title string) string {
	title = plainText(title)
	if r.keyword != "" && !strings.Contains(title, r.keyword) {
		title = "【" + r.keyword + "】" + title
	}
	return title
}

// Digest renders waiting alerts (oldest first) as one card: counts by
// level and project, then one line per issue (repeats collapsed as ×N),
// newest first. When not all fit, the issues waiting longest are taken
// and covered lists the items carried; a line is never cut. With plain
// set, lines carry no links.
func (r *Receiver) Digest(items []formatter.Item, plain bool) (notify.Message, []int) {
	groups := formatter.GroupItems(items)
	// More groups never make a smaller card: bisect for the most that
	// fit.
	lo, hi := min(1, len(groups)), len(groups)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if msg, _ := r.digest(items, groups[:mid], plain); len(msg.JSON())+signatureSize <= TargetBody {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	msg, covered := r.digest(items, groups[:lo], plain)
	return msg, covered
}

func (r *Receiver) digest(items []formatter.Item, groups []*formatter.Group, plain bool) (*Message, []int) {
	l := formatter.LabelsFor(r.language)
	d := formatter.Digest(items, groups, r.language, r.zone)
	summary := []larkMD{
		"**" + escapeMD(l.Levels, false) + ":** " + escapeMD(d.Levels, false),
		"**" + escapeMD(l.Projects, false) + ":** " + escapeMD(d.Projects, false),
	}
	if d.Span != "" {
		summary = append(summary, "**"+escapeMD(l.Time, false)+":** "+escapeMD(d.Span, false))
	}
	lines := make([]larkMD, len(d.Order))
	for i, g := range d.Order {
		lines[i] = escapeMD(strconv.Itoa(i+1)+". ", false) + r.digestLine(g, plain)
	}
	var elements []element
	for _, n := range d.Notes {
		elements = append(elements, div("↪ "+escapeMD(formatter.Shorten(n, noteRunes), false)))
	}
	elements = append(elements, div(joinMD(summary)), div(joinMD(lines)))
	if rest := len(items) - len(d.Covered); rest > 0 {
		elements = append(elements, div(escapeMD(l.MoreFollow(rest), false)))
	}
	if md := mentions(d.Mentions); md != "" {
		elements = append(elements, div(md))
	}
	title := r.headerTitle(d.Title)
	c := card{Config: cardConfig{WideScreenMode: true, EnableForward: true},
		Header: header{Template: template(d.Worst), Title: text{Tag: "plain_text", Content: title}}, Elements: elements}
	return &Message{card: c, title: title}, d.Covered
}

func joinMD(lines []larkMD) larkMD {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = string(l)
	}
	return larkMD(strings.Join(s, "\n"))
}

// digestLine is one issue of a digest. Its "×N" says how many alerts of
// the issue the line stands for.
func (r *Receiver) digestLine(g *formatter.Group, plain bool) larkMD {
	a := g.Newest
	_, st := formatter.StyleOf(a)
	title := formatter.Shorten(strings.TrimSpace(a.Title), lineRunes)
	if title == "" {
		title = "(no title)"
	}
	u := linkable(a.Link)
	if plain {
		u = ""
	}
	line := escapeMD(st.Emoji+" ", false) + link(title, u) + escapeMD(" ×"+strconv.Itoa(g.Count), false)
	for _, s := range []string{a.DisplayProject(), a.Environment} {
		if s != "" {
			line += escapeMD(" · "+formatter.Shorten(s, 40), false)
		}
	}
	if !a.Time.IsZero() {
		line += escapeMD(" · "+a.Time.In(r.location()).Format("15:04:05"), false)
	}
	return line
}

func (r *Receiver) location() *time.Location {
	if r.zone != nil {
		return r.zone
	}
	return time.UTC
}

// template is the header colour of an alert's card.
func template(a formatter.Alert) string {
	switch formatter.Severity(a) {
	case 3:
		return "orange"
	case 2:
		return "blue"
	case 1:
		return "grey"
	case 0:
		return "green"
	}
	return "red"
}

// linkable is u fit to be a link target, or "".
func linkable(u string) string {
	if s := formatter.SafeURL(u); len(s) <= maxLinkBytes {
		return s
	}
	return ""
}

// idRE is what a custom bot can mention: an open_id (ou_…) or a user_id.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// mentions is the <at> tags of m, as many as fit in maxMentionBytes.
// Custom bots can mention by open_id or user_id and everyone; mobiles
// cannot be mentioned, so they are left out. Only well-formed ids are
// written: a mention is the one piece of a card that must stay active, so
// nothing else may pass for one.
func mentions(m formatter.Mentions) larkMD {
	var parts []string
	size := 0
	for _, id := range m.UserIDs {
		if !idRE.MatchString(id) || id == "all" {
			continue
		}
		tag := "<at id=" + id + "></at>"
		if size+len(tag)+1 > maxMentionBytes {
			break
		}
		parts = append(parts, tag)
		size += len(tag) + 1
	}
	if m.All {
		parts = append(parts, "<at id=all></at>")
	}
	return larkMD(strings.Join(parts, " "))
}
