package formatter

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// zwsp is a zero-width space. Inserted inside a markdown-active sequence it
// breaks the sequence for the parser while the reader sees the same text, so
// escaping never drops or visibly changes a character. Backslash escapes are
// not used because DingTalk's renderer is not documented to honour them.
const zwsp = "\u200b"

// Escape makes user-supplied text safe to place inline in a DingTalk markdown
// card: it cannot start a heading, quote or list, open a link, image, HTML tag
// (<font>) or entity, form bold or strike-through, auto-link a URL, or
// mention anyone. Line breaks become spaces.
func Escape(s string) string {
	return escape(s, false)
}

// EscapeBlock is Escape for multi-line text: it keeps line breaks and
// neutralizes block syntax at the start of every line.
func EscapeBlock(s string) string {
	return escape(s, true)
}

// EscapeLinkText is Escape for the text of a markdown link. Square brackets
// inside link text would end the link early, so they become their full-width
// forms, the one place escaping substitutes a character.
func EscapeLinkText(s string) string {
	s = escape(s, false)
	return linkBrackets.Replace(s)
}

var linkBrackets = strings.NewReplacer("[", "［", "]", "］")

func escape(s string, block bool) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	lineStart := true
	var prev rune
	// mark breaks the sequence r begins unless the text already has its
	// break (escaping is idempotent: a template may escape escaped text).
	mark := func(rest string) {
		if !strings.HasPrefix(rest, zwsp) {
			b.WriteString(zwsp)
		}
	}
	for i, r := range s {
		width := utf8.RuneLen(r)
		if r == '\r' && block && strings.HasPrefix(s[i+1:], "\n") {
			continue
		}
		if r == '\n' && block {
			if !strings.HasSuffix(b.String(), "  ") {
				b.WriteString("  ")
			}
			b.WriteString("\n")
			lineStart, prev = true, r
			continue
		}
		switch {
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			r = ' '
		case isBidiControl(r):
			r = '\uFFFD'
		}
		if lineStart {
			if r == ' ' && block {
				// Leading spaces would turn the line into a code block.
				continue
			}
			if startsBlock(s[i:]) {
				b.WriteString(zwsp)
			}
			lineStart = false
		}
		rest := s[i+width:]
		switch r {
		case '<', '&', '@', '\\':
			// HTML tags and autolinks, entities, mentions, and backslash
			// escapes that could swallow the card's own syntax.
			b.WriteRune(r)
			mark(rest)
		case ']':
			b.WriteRune(r)
			if strings.HasPrefix(rest, "(") || strings.HasPrefix(rest, "[") || strings.HasPrefix(rest, ":") {
				b.WriteString(zwsp)
			}
		case '*', '_', '~':
			b.WriteRune(r)
			if len(rest) > 0 && rune(rest[0]) == r {
				b.WriteString(zwsp)
			}
		case ':':
			b.WriteRune(r)
			if strings.HasPrefix(rest, "//") {
				b.WriteString(zwsp)
			}
		case '.':
			if (prev == 'w' || prev == 'W') && strings.HasSuffix(strings.ToLower(s[:i]), "www") {
				// www.example.com is auto-linked by GFM renderers.
				b.WriteString(zwsp)
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// isBidiControl reports whether r is an explicit bidi embedding, override or
// isolate (U+202A–U+202E, U+2066–U+2069): in payload text it could reorder
// what a card shows around it, so escaping replaces it with U+FFFD, which
// also shows the reader that something was there. The implicit marks (LRM,
// RLM, ALM) reorder nothing beyond their neighbours and are kept.
func isBidiControl(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// startsBlock reports whether s, at the start of a line, would begin a
// heading, quote, list, table, fence or thematic break.
func startsBlock(s string) bool {
	if s == "" {
		return false
	}
	if strings.ContainsRune("#>-+*=|`~", rune(s[0])) {
		return true
	}
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	return digits > 0 && digits < len(s) && (s[digits] == '.' || s[digits] == ')')
}

// SafeURL returns u fit to be a markdown link target, or "" when u is not an
// absolute http(s) URL. Characters that would end the link early, and '@',
// which DingTalk could read as a mention, are percent-encoded.
func SafeURL(u string) string {
	u = strings.TrimSpace(u)
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	p.User = nil
	return urlChars.Replace(p.String())
}

var urlChars = strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", "<", "%3C", ">", "%3E", "\"", "%22", "`", "%60", "[", "%5B", "]", "%5D", "@", "%40")

// link renders [text](url), or just the text when the URL is unusable.
func link(text, u string) string {
	t := EscapeLinkText(text)
	if su := SafeURL(u); su != "" {
		return "[" + t + "](" + su + ")"
	}
	return t
}

var (
	mobileRE = regexp.MustCompile(`^(\+[0-9]{1,4}-)?[0-9]{5,20}$`)
	userIDRE = regexp.MustCompile(`^[A-Za-z0-9_.$-]{1,64}$`)
	colorRE  = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)
)

// MobileRule says which mobile numbers DingTalk can @-mention.
const MobileRule = "digits only (13800000000), or +country code, a hyphen and the digits (+86-13800000000); no other hyphens or spaces, or DingTalk will not ping"

// ValidMobile reports whether s is a mobile number DingTalk can @-mention
// (see MobileRule).
func ValidMobile(s string) bool {
	return mobileRE.MatchString(s)
}

// ValidUserID reports whether s can be a DingTalk user id in a mention.
func ValidUserID(s string) bool {
	return userIDRE.MatchString(s)
}

func validMobiles(ms []string) []string {
	return slices.DeleteFunc(slices.Clone(ms), func(s string) bool { return !ValidMobile(s) })
}

func validUserIDs(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return !ValidUserID(s) })
}

// Shorten cuts s to at most n runes, marking the cut with an ellipsis.
func Shorten(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := 0
	for i := range s {
		if runes == n-1 {
			return strings.TrimRightFunc(s[:i], unicode.IsSpace) + "…"
		}
		runes++
	}
	return s
}

// CutBytes cuts markdown s to at most n bytes on a UTF-8 boundary without
// splitting a link, an image or an HTML tag, so a cut card still renders.
func CutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	// Move the cut before any construct still open at the cut point.
	if open := openConstruct(s[:cut]); open >= 0 {
		cut = open
	}
	return s[:cut]
}

// openConstruct returns where a markdown link/image or an HTML tag that is
// unfinished at the end of s begins, or -1 when nothing is open.
func openConstruct(s string) int {
	open := -1     // start of the current "[...](...)" candidate
	inURL := false // inside "(...)" after "]"
	tag := -1      // start of an unclosed "<...>"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
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
		case c == '[':
			if open < 0 {
				open = i
				if i > 0 && s[i-1] == '!' {
					open = i - 1
				}
			}
		case c == ']' && open >= 0:
			if i+1 < len(s) && s[i+1] == '(' {
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
