package wecom

import (
	"regexp"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// style is one of the two syntaxes a WeCom message is written in: every
// card and digest is laid out once and written in either.
type style interface {
	// text is payload text on one line.
	text(s string) markup
	// label starts a labelled line.
	label(l string) markup
	fact(label, value string) markup
	// link is text linked to u; u "" leaves the text alone.
	link(text, u string) markup
	title(s, u string) markup
	header(colour, badge, heading string) markup
	quote(s string) markup
	note(s string) markup
	refs(refs []formatter.Ref) markup
	// tail is what ends the message: the link to Sentry when the title
	// cannot carry it, the mentions the content must write out.
	tail(view, link string, m formatter.Mentions) markup
	// limit is the most bytes of content WeCom accepts.
	limit() int
	message(content markup, m formatter.Mentions, title string) *Message
}

// styleFor picks markdown unless m pings mobiles or everyone, which WeCom's
// markdown cannot.
func styleFor(m formatter.Mentions) style {
	if len(validMobiles(m.Mobiles)) > 0 || m.All {
		return plainStyle{}
	}
	return markdownStyle{}
}

// markdownStyle writes WeCom's markdown.
type markdownStyle struct{}

func (markdownStyle) text(s string) markup { return markup(escapeMarkdown(s, false)) }

func (st markdownStyle) label(l string) markup { return "**" + st.text(l) + ":** " }

func (st markdownStyle) fact(label, value string) markup { return st.label(label) + st.text(value) }

// link brackets in the text become their full-width forms: a ']' would end
// the link early.
func (st markdownStyle) link(text, u string) markup {
	if u == "" {
		return st.text(text)
	}
	return "[" + markup(linkBrackets.Replace(escapeMarkdown(text, false))) + "](" + markup(u) + ")"
}

var linkBrackets = strings.NewReplacer("[", "［", "]", "］")

func (st markdownStyle) title(s, u string) markup { return "**" + st.link(s, u) + "**" }

func (st markdownStyle) header(colour, badge, heading string) markup {
	return `#### <font color="` + markup(colour) + `">` + st.text(badge) + "</font> " + st.text(heading)
}

// quote ends with a blank line: the next line would otherwise continue
// the quote.
func (markdownStyle) quote(s string) markup {
	return markup("> " + strings.ReplaceAll(escapeMarkdown(s, true), "\n", "\n> ") + "\n")
}

func (st markdownStyle) note(s string) markup { return "> ↪ " + st.text(s) + "\n" }

func (st markdownStyle) refs(refs []formatter.Ref) markup {
	parts := make([]string, len(refs))
	for i, ref := range refs {
		parts[i] = string(st.link(formatter.Shorten(ref.Title, lineRunes), linkable(ref.URL)))
	}
	return markup(strings.Join(parts, " · "))
}

// tail writes the user ids as <@userid>, as many as fit in maxMentionBytes.
func (markdownStyle) tail(_, _ string, m formatter.Mentions) markup {
	var b strings.Builder
	for _, id := range validUserIDs(m.UserIDs) {
		if b.Len()+len(id)+4 > maxMentionBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("<@" + id + ">")
	}
	return markup(b.String())
}

func (markdownStyle) limit() int { return MaxMarkdownText }

func (markdownStyle) message(content markup, _ formatter.Mentions, title string) *Message {
	return &Message{MsgType: TypeMarkdown, Content: string(content), title: title}
}

// plainStyle writes a text message: the same facts without markup; the
// mentions go beside the content.
type plainStyle struct{}

func (plainStyle) text(s string) markup { return markup(escapePlain(s, false)) }

func (st plainStyle) label(l string) markup { return st.text(l) + ": " }

func (st plainStyle) fact(label, value string) markup { return st.label(label) + st.text(value) }

func (st plainStyle) link(text, u string) markup {
	if u == "" {
		return st.text(text)
	}
	return st.text(text) + " " + markup(u)
}

func (st plainStyle) title(s, _ string) markup { return st.text(s) }

func (st plainStyle) header(_, badge, heading string) markup {
	return st.text(badge) + " " + st.text(heading)
}

func (plainStyle) quote(s string) markup {
	return markup("> " + strings.ReplaceAll(escapePlain(s, true), "\n", "\n> "))
}

func (st plainStyle) note(s string) markup { return "↪ " + st.text(s) }

func (st plainStyle) refs(refs []formatter.Ref) markup {
	parts := make([]string, len(refs))
	for i, ref := range refs {
		parts[i] = string(st.link(formatter.Shorten(ref.Title, lineRunes), linkable(ref.URL)))
	}
	return markup(strings.Join(parts, " · "))
}

func (st plainStyle) tail(view, link string, _ formatter.Mentions) markup {
	if link == "" {
		return ""
	}
	return st.label(view) + markup(link)
}

func (plainStyle) limit() int { return MaxText }

func (plainStyle) message(content markup, m formatter.Mentions, title string) *Message {
	msg := &Message{MsgType: TypeText, Content: string(content), title: title,
		MentionedList: validUserIDs(m.UserIDs), MentionedMobileList: validMobiles(m.Mobiles)}
	if m.All {
		msg.MentionedList = append(msg.MentionedList, "@all")
	}
	return msg
}

// userIDRE is WeCom's rule for user ids: letters, digits and _-@., the
// first a letter or digit, at most 64 bytes.
var userIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// validUserIDs keeps the ids WeCom can mention: a mention is the one piece
// of a message that must stay active, so nothing else may pass for one.
func validUserIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if userIDRE.MatchString(id) {
			out = append(out, id)
		}
	}
	return out
}

func validMobiles(mobiles []string) []string {
	var out []string
	for _, m := range mobiles {
		if formatter.ValidMobile(m) {
			out = append(out, m)
		}
	}
	return out
}
