package wecom

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// markup is message content: the message's own syntax, and payload text
// that went through an escaper. Payload text is a plain string and becomes
// markup only by an explicit conversion, which happens in the escapers and
// the few builders of style.go.
type markup string

// zwsp is a zero-width space. Inside a sequence WeCom's markdown would act
// on, it breaks the sequence while the reader sees the same text, so
// escaping never drops or visibly changes a character. WeCom documents no
// backslash escapes for its markdown.
const zwsp = "\u200b"

// escapeMarkdown makes payload text inert in WeCom markdown: it cannot
// start a heading or quote, open a link, a <font> tag or a <@mention>,
// form bold or inline code, or be auto-linked as a URL. With block set it
// keeps line breaks (and neutralises every line's start); otherwise they
// become spaces.
func escapeMarkdown(s string, block bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if block {
		s = lineBreaks.Replace(s)
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	lineStart := true
	for i, r := range s {
		rest := s[i+utf8.RuneLen(r):]
		if block && r == '\n' {
			b.WriteByte('\n')
			lineStart = true
			continue
		}
		r = visible(r)
		if lineStart && (r == '#' || r == '>') {
			b.WriteString(zwsp)
		}
		lineStart = false
		if r == '.' && afterWWW(s, i) {
			// www.example.com is auto-linked.
			b.WriteString(zwsp)
		}
		b.WriteRune(r)
		switch {
		case r == '<' || r == '&' || r == '`':
			// Tags (<font>, <@userid>), entities, inline code.
			b.WriteString(zwsp)
		case r == ']' && strings.HasPrefix(rest, "("):
			b.WriteString(zwsp)
		case (r == '*' || r == '_') && strings.HasPrefix(rest, string(r)):
			b.WriteString(zwsp)
		case r == ':' && strings.HasPrefix(rest, "//"):
			b.WriteString(zwsp)
		}
	}
	return b.String()
}

// lineBreaks makes every line end in '\n' before block text is escaped,
// so what follows a break is seen as the next line's start.
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// escapePlain makes payload text fit for a text message: one line (or,
// with block set, its lines), with nothing a client would turn into a
// link.
func escapePlain(s string, block bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if block {
		s = lineBreaks.Replace(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		if !(block && r == '\n') {
			r = visible(r)
		}
		if r == '.' && afterWWW(s, i) {
			b.WriteString(zwsp)
		}
		b.WriteRune(r)
		if r == ':' && strings.HasPrefix(s[i+1:], "//") {
			b.WriteString(zwsp)
		}
	}
	return b.String()
}

// afterWWW reports whether s[:i] ends with "www", in any case.
func afterWWW(s string, i int) bool {
	return i >= 3 && strings.EqualFold(s[i-3:i], "www")
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

// cutMarkup cuts s to at most n bytes on a UTF-8 boundary, never inside a
// link or a tag, and never between a character and the zero-width space
// that keeps it inert.
func cutMarkup(s markup, n int) markup {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if strings.HasPrefix(string(s[cut:]), zwsp) {
		_, size := utf8.DecodeLastRuneInString(string(s[:cut]))
		cut -= size
	}
	if open := openConstruct(string(s[:cut])); open >= 0 {
		cut = open
	}
	return s[:cut]
}

// openConstruct returns where a link or a tag that is unfinished at the end
// of s begins, or -1. Payload text cannot open either (its '<' and "](" are
// broken by zero-width spaces), but a '[' of payload text is taken for a
// link's start: cutting there too only cuts a little earlier.
func openConstruct(s string) int {
	open, tag, inURL := -1, -1, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case tag >= 0:
			if c == '>' {
				tag = -1
			}
		case c == '<' && !strings.HasPrefix(s[i+1:], zwsp):
			tag = i
		case inURL:
			if c == ')' {
				open, inURL = -1, false
			}
		case c == '[' && open < 0:
			open = i
		case c == ']' && open >= 0:
			if strings.HasPrefix(s[i+1:], "(") {
				inURL = true
				i++
			} else if i+1 < len(s) {
				open = -1
			}
		}
	}
	switch {
	case tag >= 0 && (open < 0 || tag < open):
		return tag
	case open >= 0:
		return open
	}
	return -1
}
