package wecom

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Message types and their content limits, in bytes of content.
const (
	TypeMarkdown    = "markdown"
	TypeText        = "text"
	MaxMarkdownText = 4096
	MaxText         = 2048
)

// Limits on what one card shows, so one field cannot crowd out the rest.
const (
	titleRunes = 200
	fieldRunes = 200
	quoteRunes = 400
	noteRunes  = 100
	lineRunes  = 90
	labelRunes = 40
	// maxLinkBytes bounds a link target: a longer one is left out (the
	// text stays) so it cannot take a message's room.
	maxLinkBytes = 1024
	// maxMentionBytes bounds the <@userid> mentions of a markdown message.
	maxMentionBytes = 1024
)

// Message is a rendered WeCom robot message.
type Message struct {
	// MsgType is TypeMarkdown or TypeText.
	MsgType string
	// Content is the markdown or the text.
	Content string
	// MentionedList are the user ids (and "@all") a text message pings.
	MentionedList []string
	// MentionedMobileList are the mobiles a text message pings.
	MentionedMobileList []string
	title               string
}

// Title is what logs and the dry run show of the message.
func (m *Message) Title() string { return m.title }

// JSON is the body WeCom is sent: UTF-8, without HTML escaping (which
// would make every '<' six bytes) and without \u escapes, which WeCom
// refuses.
func (m *Message) JSON() []byte {
	type text struct {
		Content             string   `json:"content"`
		MentionedList       []string `json:"mentioned_list,omitempty"`
		MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
	}
	body := struct {
		MsgType  string `json:"msgtype"`
		Markdown *text  `json:"markdown,omitempty"`
		Text     *text  `json:"text,omitempty"`
	}{MsgType: m.MsgType}
	t := &text{Content: m.Content, MentionedList: m.MentionedList, MentionedMobileList: m.MentionedMobileList}
	if m.MsgType == TypeText {
		body.Text = t
	} else {
		body.Markdown = t
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		// Only strings: encoding cannot fail.
		panic("wecom: encode message: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Card renders one alert. It is markdown unless the alert must ping
// mobiles or everyone, which only WeCom's text messages can.
func (r *Receiver) Card(it formatter.Item) (notify.Message, error) {
	return r.card(it, styleFor(it.Mentions), false), nil
}

// Minimal renders one alert as a short text message without links: what
// WeCom accepts whatever made it refuse the card.
func (r *Receiver) Minimal(it formatter.Item) notify.Message {
	return r.card(it, plainStyle{}, true)
}

func (r *Receiver) card(it formatter.Item, st style, minimal bool) *Message {
	a := it.Alert
	s := formatter.Summarize(a, r.language, r.zone)
	l := formatter.LabelsFor(r.language)
	var must, optional []markup
	if it.Note != "" {
		must = append(must, st.note(formatter.Shorten(it.Note, noteRunes)))
	}
	badge := s.Style.Emoji + " " + strings.ToUpper(formatter.Shorten(s.Level, 20))
	must = append(must, st.header(colourWord(a), badge, s.Heading))
	link := linkable(s.Link)
	if minimal {
		link = ""
	}
	must = append(must, st.title(formatter.Shorten(s.Title, titleRunes), link))
	if minimal {
		for _, f := range []formatter.Fact{{Label: l.Project, Value: a.DisplayProject()}, {Label: l.Environment, Value: a.Environment}, {Label: l.Time, Value: formatter.FormatTime(a.Time, r.zone)}} {
			if strings.TrimSpace(f.Value) != "" {
				must = append(must, st.fact(formatter.Shorten(f.Label, labelRunes), formatter.Shorten(f.Value, fieldRunes)))
			}
		}
	} else {
		if s.Subtitle != "" {
			optional = append(optional, st.text(formatter.Shorten(s.Subtitle, fieldRunes)))
		}
		for _, f := range s.Facts {
			optional = append(optional, st.fact(formatter.Shorten(f.Label, labelRunes), formatter.Shorten(f.Value, fieldRunes)))
		}
		if refs := st.refs(s.Refs); refs != "" {
			optional = append(optional, st.label(l.PullRequests)+refs)
		}
		if s.Quote != "" {
			optional = append(optional, st.quote(formatter.Shorten(s.Quote, quoteRunes)))
		}
		for _, f := range s.Extra {
			optional = append(optional, st.fact(formatter.Shorten(f.Label, labelRunes), formatter.Shorten(f.Value, fieldRunes)))
		}
	}
	content, _ := compose(must, optional, st.tail(l.ViewInSentry, link, it.Mentions), st.limit())
	return st.message(content, it.Mentions, cardTitle(a))
}

// cardTitle is the message's title for logs: plain text.
func cardTitle(a formatter.Alert) string {
	title := formatter.Shorten(formatter.PlainLine(a.Title), 64)
	if p := a.DisplayProject(); p != "" {
		title = "[" + formatter.PlainLine(p) + "] " + title
	}
	return title
}

// Digest renders waiting alerts (oldest first) as one message: counts by
// level and project, then one line per issue (repeats collapsed as ×N),
// newest first. When not all fit, the issues waiting longest are taken
// and covered lists the items carried; a line is never cut. It is a text
// message when any of the items must ping mobiles or everyone. With plain
// set, lines carry no links.
func (r *Receiver) Digest(items []formatter.Item, plain bool) (notify.Message, []int) {
	groups := formatter.GroupItems(items)
	var all formatter.Mentions
	for _, it := range items {
		all = all.Union(it.Mentions)
	}
	st := styleFor(all)
	// The most groups that fit whole: more groups never make a shorter
	// message, so the largest n that is not cut is found by bisection.
	lo, hi := min(1, len(groups)), len(groups)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, _, cut := r.digest(items, groups[:mid], st, plain); cut {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	msg, covered, _ := r.digest(items, groups[:lo], st, plain)
	return msg, covered
}

func (r *Receiver) digest(items []formatter.Item, groups []*formatter.Group, st style, plain bool) (*Message, []int, bool) {
	l := formatter.LabelsFor(r.language)
	d := formatter.Digest(items, groups, r.language, r.zone)
	_, worst := formatter.StyleOf(d.Worst)
	var must []markup
	for _, n := range d.Notes {
		must = append(must, st.note(formatter.Shorten(n, noteRunes)))
	}
	must = append(must,
		st.header(colourWord(d.Worst), worst.Emoji, d.Heading),
		st.label(l.Levels)+st.text(d.Levels),
		st.label(l.Projects)+st.text(d.Projects),
	)
	if d.Span != "" {
		must = append(must, st.label(l.Time)+st.text(d.Span))
	}
	must = append(must, "")
	for i, g := range d.Order {
		must = append(must, st.text(strconv.Itoa(i+1)+". ")+r.digestLine(g, st, plain))
	}
	if rest := len(items) - len(d.Covered); rest > 0 {
		must = append(must, "", st.text(l.MoreFollow(rest)))
	}
	content, cut := compose(must, nil, st.tail("", "", d.Mentions), st.limit())
	return st.message(content, d.Mentions, d.Title), d.Covered, cut
}

// digestLine is one issue of a digest. Its "×N" says how many alerts of
// the issue the line stands for.
func (r *Receiver) digestLine(g *formatter.Group, st style, plain bool) markup {
	a := g.Newest
	_, ls := formatter.StyleOf(a)
	title := formatter.Shorten(formatter.PlainLine(a.Title), lineRunes)
	if title == "" {
		title = "(no title)"
	}
	link := linkable(a.Link)
	if plain {
		link = ""
	}
	line := st.text(ls.Emoji+" ") + st.link(title, link) + st.text(" ×"+strconv.Itoa(g.Count))
	for _, s := range []string{a.DisplayProject(), a.Environment} {
		if s != "" {
			line += st.text(" · " + formatter.Shorten(s, 40))
		}
	}
	if !a.Time.IsZero() {
		line += st.text(" · " + a.Time.In(r.location()).Format("15:04:05"))
	}
	return line
}

func (r *Receiver) location() *time.Location {
	if r.zone != nil {
		return r.zone
	}
	return time.UTC
}

// WeCom's three colour words for <font color>.
const (
	colourWarning = "warning" // orange-red
	colourInfo    = "info"    // green
	colourComment = "comment" // grey
)

// colourWord is the colour of an alert's badge: red-ish for errors and
// warnings, green for information and resolutions, grey for debug.
// Regressions are red whatever the level.
func colourWord(a formatter.Alert) string {
	level, _ := formatter.StyleOf(a)
	switch {
	case a.Worsened():
		return colourWarning
	case level == "info" || level == "resolved":
		return colourInfo
	case level == "debug":
		return colourComment
	}
	return colourWarning
}

// linkable is u fit to be a link target, or "".
func linkable(u string) string {
	if s := formatter.SafeURL(u); len(s) <= maxLinkBytes {
		return s
	}
	return ""
}

// compose joins must, then as many of optional as fit, then tail, one per
// line, within limit bytes. What of optional does not fit is left out,
// marked by an ellipsis; must is cut (on a rune boundary, outside links
// and tags) only when it does not fit by itself. cut reports either.
func compose(must, optional []markup, tail markup, limit int) (content markup, cut bool) {
	const ellipsis = "…"
	length := func(parts []markup) int {
		n := 0
		for _, p := range parts {
			n += len(p) + 1
		}
		return n - 1
	}
	tailCost := 0
	if tail != "" {
		tailCost = len(tail) + 1
	}
	parts := append(slices.Clone(must), optional...)
	if length(parts)+tailCost > limit {
		cut = true
		parts = slices.Clone(must)
		used := length(parts)
		for _, p := range optional {
			if used+1+len(p)+1+len(ellipsis)+tailCost > limit {
				break
			}
			parts = append(parts, p)
			used += 1 + len(p)
		}
		if used+1+len(ellipsis)+tailCost > limit {
			joined := markup(strings.Join(toStrings(parts), "\n"))
			parts = nil
			if kept := cutMarkup(joined, limit-tailCost-1-len(ellipsis)); kept != "" {
				parts = []markup{kept}
			}
		}
		parts = append(parts, ellipsis)
	}
	if tail != "" {
		parts = append(parts, tail)
	}
	return markup(strings.Join(toStrings(parts), "\n")), cut
}

func toStrings(parts []markup) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}
