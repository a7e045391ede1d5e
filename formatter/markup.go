package formatter

import (
	"net/url"
	"strings"
)

// markup is DingTalk card markdown: the card's own syntax, and payload text
// that went through an escaper. Payload text is a plain string, and Go lets a
// string become markup only by an explicit conversion (untyped constants,
// the card's syntax, convert by themselves), so the card is assembled from
// markup values and the conversions live in the few functions below.
// TestMarkupIsOnlyMadeByEscapers holds the package to that.
type markup string

// text is payload text made safe inline.
func text(s string) markup { return markup(Escape(s)) }

// quote is payload text as a markdown quote, line by line.
func quote(s string) markup { return markup("> " + strings.ReplaceAll(EscapeBlock(s), "\n", "\n> ")) }

// trimNewlines drops the line breaks markup ends with.
func trimNewlines(m markup) markup { return markup(strings.TrimRight(string(m), "\n")) }

// linked is [text](url), or the escaped text when the URL is unusable.
func linked(s, u string) markup { return markup(link(s, u)) }

// actionLink is [label](url) for an action link: an http(s) URL, or a
// dingtalk:// link that opens a page in DingTalk's side panel; "" for
// anything else.
func actionLink(label, u string) markup {
	t := actionTarget(u)
	if t == "" {
		return ""
	}
	return markup("[" + EscapeLinkText(label) + "](" + string(t) + ")")
}

// actionTarget is u when it is fit to be an action's link target.
func actionTarget(u string) markup {
	if safe := SafeURL(u); safe != "" {
		return markup(safe)
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "dingtalk" || p.Host != "dingtalkclient" || strings.ContainsAny(u, " ()[]<>\"`@") {
		return ""
	}
	return markup(u)
}

// href is a URL fit to be a link target, or "".
func href(u string) markup { return markup(SafeURL(u)) }

// templated is what a card template produced: the template placed payload
// text only through its escaped view of the alert (see templateView).
func templated(s string) markup { return markup(s) }

// joinMarkup joins markup with a separator of the card's own syntax.
func joinMarkup(parts []markup, sep markup) markup {
	ss := make([]string, len(parts))
	for i, p := range parts {
		ss[i] = string(p)
	}
	return markup(strings.Join(ss, string(sep)))
}

// card builds a card's markdown text.
type card struct{ b strings.Builder }

func (c *card) put(parts ...markup) {
	for _, p := range parts {
		c.b.WriteString(string(p))
	}
}

// fact writes "- **label:** value".
func (c *card) fact(f Fact) {
	c.put("- **", text(f.Label), ":** ", text(Shorten(f.Value, fieldRunes)), "\n")
}

func (c *card) markup() markup { return markup(c.b.String()) }
