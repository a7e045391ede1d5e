package feishu

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// larkMD is lark_md text of a card: the card's own syntax, and payload text
// that went through escapeMD. Payload text is a plain string and becomes
// larkMD only by an explicit conversion, which happens in the escaper and
// the builders of card.go.
type larkMD string

// entities are the characters lark_md acts on anywhere in a line, written
// as the HTML character references Feishu's card markdown documents for
// showing them as they are: emphasis, strike-through, code, links
// ([text](url), <a>), tags (<at>, <font>, <text_tag>), emoji keys (:OK:),
// link variables ($urlVal), backslash escapes, and references themselves.
var entities = map[rune]string{
	'&': "&#38;", '<': "&#60;", '>': "&#62;", '*': "&#42;", '_': "&#95;", '~': "&#126;", '`': "&#96;",
	'[': "&#91;", ']': "&#93;", '(': "&#40;", ')': "&#41;", ':': "&#58;", '$': "&#36;", '\\': "&#92;",
}

// lineStartEntities are the characters that act only at the start of a
// line: headings, lists, rules.
var lineStartEntities = map[rune]string{'#': "&#35;", '+': "&#43;", '-': "&#45;", '=': "&#61;"}

// zwsp is a zero-width space. It keeps URLs in payload text from being
// auto-linked whether Feishu resolves character references before or
// after it looks for URLs.
const zwsp = "\u200b"

// escapeMD makes payload text inert in lark_md: it cannot form emphasis or
// a link, open a tag, mention anyone, show an emoji or a heading, or be
// auto-linked. The text reads the same: nothing is dropped. With block set
// it keeps line breaks; otherwise they become spaces.
func escapeMD(s string, block bool) larkMD {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if block {
		s = lineBreaks.Replace(s)
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	lineStart, listDot := true, -1
	for i, r := range s {
		if block && r == '\n' {
			b.WriteByte('\n')
			lineStart = true
			continue
		}
		r = visible(r)
		if lineStart && r == ' ' {
			b.WriteByte(' ')
			continue
		}
		if lineStart {
			lineStart = false
			if e, ok := lineStartEntities[r]; ok {
				b.WriteString(e)
				continue
			}
			// "1. " starts an ordered list.
			if digits := len(s[i:]) - len(strings.TrimLeft(s[i:], "0123456789")); digits > 0 && listMarker(s[i+digits:]) {
				listDot = i + digits
			}
		}
		switch {
		case i == listDot:
			b.WriteString("&#46;")
		case r == '.' && i >= 3 && strings.EqualFold(s[i-3:i], "www"):
			b.WriteString(zwsp + ".")
		case r == ':' && strings.HasPrefix(s[i+1:], "//"):
			b.WriteString(entities[r] + zwsp)
		case entities[r] != "":
			b.WriteString(entities[r])
		default:
			b.WriteRune(r)
		}
	}
	return larkMD(b.String())
}

// listMarker reports whether s, after a line's leading digits, makes the
// line an ordered list item.
func listMarker(s string) bool {
	rest, ok := strings.CutPrefix(s, ".")
	if !ok || rest == "" {
		return ok
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return r == '\n' || visible(r) == ' '
}

// lineBreaks makes every line end in '\n' before block text is escaped.
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// plainText makes payload text fit for a plain_text element: one line, no
// characters that break it or reorder the text around them.
func plainText(s string) string {
	return strings.Map(visible, strings.ToValidUTF8(s, "\uFFFD"))
}

// visible maps characters that would break a line or reorder the text
// around them: control characters become spaces, and bidi embeddings,
// overrides and isolates U+FFFD, which also shows the reader that
// something was there.
func visible(r rune) rune {
	switch {
	case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
		return ' '
	case r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069':
		return '\uFFFD'
	}
	return r
}
