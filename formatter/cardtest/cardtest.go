// Package cardtest checks that a rendered DingTalk card is inert: that the
// only links, HTML tags, mentions and headings in its markdown are the ones
// the card itself was meant to have, whatever text the alert carried. The
// renderer's tests, its fuzz target and the parsers' hostile-payload tests
// share it.
package cardtest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Want is what a card may contain.
type Want struct {
	// Links are the link targets the card may have (the alert's own link,
	// its pull requests, action links); each [text](url) must use one.
	Links []string
	// Mentions are the mobiles and user ids the card may @-mention;
	// All allows @all.
	Mentions []string
	All      bool
	// Fonts is how many <font> tags the card may open (its header).
	Fonts int
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]*)\)`)
	imageRE   = regexp.MustCompile(`!\[[^\]\n]*\]\(`)
	tagRE     = regexp.MustCompile(`<(/?)([A-Za-z!?][^>]*)>?`)
	mentionRE = regexp.MustCompile(`@([^\s\x{200b}@]+)`)
	fontRE    = regexp.MustCompile(`^font color=#[0-9A-Fa-f]{6}$`)
	autoRE    = regexp.MustCompile(`(?i)(https?|ftp|dingtalk)://|www\.[a-z0-9]`)
)

// Check returns what in text the card was not meant to have.
func Check(text string, want Want) []string {
	var bad []string
	targets := map[string]bool{}
	for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(want.Links, m[1]) {
			bad = append(bad, fmt.Sprintf("link to %q", m[1]))
		}
		targets[m[1]] = true
	}
	if imageRE.MatchString(text) {
		bad = append(bad, "an image")
	}
	fonts := 0
	for _, m := range tagRE.FindAllStringSubmatch(text, -1) {
		switch {
		case m[1] == "" && fontRE.MatchString(m[2]):
			fonts++
		case m[1] == "/" && m[2] == "font":
		default:
			bad = append(bad, fmt.Sprintf("HTML tag %q", m[0]))
		}
	}
	if fonts > want.Fonts {
		bad = append(bad, fmt.Sprintf("%d <font> tags, want at most %d", fonts, want.Fonts))
	}
	for _, m := range mentionRE.FindAllStringSubmatch(text, -1) {
		if !(slices.Contains(want.Mentions, m[1]) || want.All && m[1] == "all") {
			bad = append(bad, fmt.Sprintf("mention %q", m[0]))
		}
	}
	// A URL outside a link target would be auto-linked.
	rest := linkRE.ReplaceAllString(text, "]()")
	if loc := autoRE.FindStringIndex(rest); loc != nil {
		bad = append(bad, fmt.Sprintf("auto-link %q", rest[loc[0]:min(len(rest), loc[1]+20)]))
	}
	headings := 0
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimPrefix(line, "> ")
		if strings.HasPrefix(line, "#### ") && headings == 0 {
			// The card's own header.
			headings++
			continue
		}
		if strings.HasPrefix(l, "#") {
			bad = append(bad, fmt.Sprintf("heading %q", line))
		}
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "    ") {
			bad = append(bad, fmt.Sprintf("code block %q", line))
		}
	}
	for _, c := range []rune{'\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'} {
		if strings.ContainsRune(text, c) {
			bad = append(bad, fmt.Sprintf("bidi control %U", c))
		}
	}
	return bad
}
