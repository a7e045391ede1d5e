package wecom

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

func TestEscapeMarkdown(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain 文本", "plain 文本"},
		{"# heading", zwsp + "# heading"},
		{"> quote", zwsp + "> quote"},
		{"a # b > c", "a # b > c"},
		{`<font color="info">x</font>`, "<" + zwsp + `font color="info">x<` + zwsp + "/font>"},
		{"<@zhangsan>", "<" + zwsp + "@zhangsan>"},
		{"[x](https://e.com)", "[x]" + zwsp + "(https:" + zwsp + "//e.com)"},
		{"**bold** __b__", "*" + zwsp + "*bold*" + zwsp + "* _" + zwsp + "_b_" + zwsp + "_"},
		{"a*b_c", "a*b_c"},
		{"`code`", "`" + zwsp + "code`" + zwsp},
		{"&lt;", "&" + zwsp + "lt;"},
		{"see www.example.com", "see www" + zwsp + ".example.com"},
		{"line\nbreak\ttab", "line break tab"},
		{"rtl \u202eevil", "rtl \uFFFDevil"},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := escapeMarkdown(c.in, false); got != c.want {
			t.Errorf("escapeMarkdown(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := escapeMarkdown("a\r\n# b\n> c", true); got != "a\n"+zwsp+"# b\n"+zwsp+"> c" {
		t.Errorf("block: %q", got)
	}
}

func TestEscapePlain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"see https://e.com and WWW.e.com", "see https:" + zwsp + "//e.com and WWW" + zwsp + ".e.com"},
		{"<@all> **x**", "<@all> **x**"},
		{"a\nb\x00c", "a b c"},
	} {
		if got := escapePlain(c.in, false); got != c.want {
			t.Errorf("escapePlain(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// normalized is what escaping must keep of s: every character, with the
// ones that would break a line or reorder text replaced.
func normalized(s string, block bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if block {
		s = lineBreaks.Replace(s)
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case block && r == '\n':
			b.WriteRune(r)
		default:
			b.WriteRune(visible(r))
		}
	}
	return strings.ReplaceAll(b.String(), zwsp, "")
}

// activeRE finds what WeCom's markdown would act on in escaped text.
var activeRE = regexp.MustCompile("(?m)<[^\u200b]|&[^\u200b]|`[^\u200b]|`$|\\]\\(|\\*\\*|__|://|(?i:www)\\.|^[#>]")

var wwwRE = regexp.MustCompile(`(?i)www\.`)

func FuzzEscapeMarkdown(f *testing.F) {
	for _, s := range []string{"# x", "[a](https://b)", "<font color=\"info\">", "<@all>", "**b**", "`c`", "www.x", "&amp;", "\n> q", "\u202e", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, block := range []bool{false, true} {
			out := escapeMarkdown(s, block)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 from %q", s)
			}
			if m := activeRE.FindString(out); m != "" {
				t.Fatalf("escapeMarkdown(%q, %v) = %q keeps active markup %q", s, block, out, m)
			}
			if !block && strings.ContainsAny(out, "\n\r") {
				t.Fatalf("inline escape kept a line break: %q", out)
			}
			if got, want := strings.ReplaceAll(out, zwsp, ""), normalized(s, block); got != want {
				t.Fatalf("escaping dropped or changed characters: %q -> %q", want, got)
			}
			plain := escapePlain(s, block)
			if strings.Contains(plain, "://") || wwwRE.MatchString(plain) {
				t.Fatalf("escapePlain(%q) = %q can be auto-linked", s, plain)
			}
			if got, want := strings.ReplaceAll(plain, zwsp, ""), normalized(s, block); got != want {
				t.Fatalf("plain escaping dropped or changed characters: %q -> %q", want, got)
			}
		}
	})
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)]*)\)`)
	tagRE     = regexp.MustCompile("<[^\u200b][^>]*>?")
	allowedRE = regexp.MustCompile(`^(<font color="(warning|info|comment)">|</font>|<@([A-Za-z0-9_.@-]+)>)$`)
	autoRE    = regexp.MustCompile(`(?i)(https?|ftp)://|www\.[a-z0-9]`)
)

// inert returns what in markdown content the message was not meant to
// have: links other than links, tags other than its colour and mentions of
// ids, auto-linked URLs, headings beyond its own.
func inert(content string, links, ids []string) []string {
	var bad []string
	for _, m := range linkRE.FindAllStringSubmatch(content, -1) {
		if !slices.Contains(links, m[1]) {
			bad = append(bad, fmt.Sprintf("link to %q", m[1]))
		}
	}
	for _, tag := range tagRE.FindAllString(content, -1) {
		m := allowedRE.FindStringSubmatch(tag)
		if m == nil || m[3] != "" && !slices.Contains(ids, m[3]) {
			bad = append(bad, fmt.Sprintf("tag %q", tag))
		}
	}
	if loc := autoRE.FindStringIndex(linkRE.ReplaceAllString(content, "]()")); loc != nil {
		bad = append(bad, "auto-link")
	}
	headings := 0
	for _, line := range strings.Split(content, "\n") {
		if strings.HasPrefix(line, "#") {
			headings++
		}
		if strings.HasPrefix(line, "`") {
			bad = append(bad, fmt.Sprintf("code %q", line))
		}
	}
	if headings > 1 {
		bad = append(bad, fmt.Sprintf("%d headings", headings))
	}
	return bad
}

func FuzzCard(f *testing.F) {
	f.Add("# [x](https://evil.example) <@all>", "<font color=\"info\">", "**b** `c`", "www.evil.example")
	f.Add("a\n# b", "> q", "&#60;", "]( https://x )")
	r, err := New(Config{Key: "693a91f6-7a3c-4bc4-97a0-0ec2f1a5c0de"}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	link := "https://sentry.example.com/issues/1/"
	f.Fuzz(func(t *testing.T, title, project, message, env string) {
		a := formatter.Alert{Resource: "event_alert", Action: "triggered", Title: title, Project: project, Message: message,
			Environment: env, Level: env, Location: title, Rule: message, Subtitle: project, Link: link, Time: time.Unix(1e9, 0),
			Evidence:     []formatter.Evidence{{Name: title, Value: message}, {Name: project, Value: env, Important: true}},
			PullRequests: []formatter.Ref{{Title: title, URL: "https://github.com/a/b/pull/1"}}}
		items := []formatter.Item{{Alert: a, Mentions: formatter.Mentions{UserIDs: []string{"ok", title}}, Note: message}, {Alert: a}}
		card, _ := r.Card(items[0])
		digest, _ := r.Digest(items, false)
		ids := validUserIDs([]string{"ok", title})
		for _, msg := range []*Message{card.(*Message), digest.(*Message)} {
			if bad := inert(msg.Content, []string{link, "https://github.com/a/b/pull/1"}, ids); len(bad) > 0 {
				t.Fatalf("%v in\n%s", bad, msg.Content)
			}
			if len(msg.Content) > MaxMarkdownText {
				t.Fatalf("%d bytes", len(msg.Content))
			}
		}
	})
}

func TestHostileCardIsInert(t *testing.T) {
	r, _ := New(Config{Key: "693a91f6-7a3c-4bc4-97a0-0ec2f1a5c0de"}, Options{})
	evil := "# [click](https://evil.example) <@boss> <font color=\"info\">ok</font> ** `x` www.evil.example &amp;\n> quoted"
	a := formatter.Alert{Resource: "event_alert", Action: "triggered", Title: evil, Project: evil, Environment: evil, Message: evil,
		Location: evil, Link: "https://sentry.example.com/issues/1/"}
	for _, it := range []formatter.Item{{Alert: a, Note: evil}, {Alert: a, Mentions: formatter.Mentions{UserIDs: []string{"ok"}}}} {
		msg, _ := r.Card(it)
		if bad := inert(msg.(*Message).Content, []string{a.Link}, []string{"ok"}); len(bad) > 0 {
			t.Errorf("%v in\n%s", bad, msg.(*Message).Content)
		}
		digest, _ := r.Digest([]formatter.Item{it}, false)
		if bad := inert(digest.(*Message).Content, []string{a.Link}, []string{"ok"}); len(bad) > 0 {
			t.Errorf("digest: %v in\n%s", bad, digest.(*Message).Content)
		}
	}
	// The checker itself catches what escaping prevents.
	if bad := inert("#### h\n[x](https://evil) <@boss>\n# two", []string{}, nil); len(bad) != 3 {
		t.Errorf("checker found %v", bad)
	}
}

func TestCutMarkupKeepsLinksWhole(t *testing.T) {
	s := markup("ab [title](https://e.com/x) <font color=\"info\">长</font> <" + zwsp + "x")
	for n := range len(s) + 1 {
		cut := string(cutMarkup(s, n))
		if len(cut) > n || !utf8.ValidString(cut) {
			t.Fatalf("cut to %d: %q", n, cut)
		}
		if strings.Count(cut, "[") != strings.Count(cut, ")") || strings.Count(cut, "<")-strings.Count(cut, "<"+zwsp) != strings.Count(cut, ">") {
			t.Fatalf("cut to %d leaves a construct open: %q", n, cut)
		}
		if strings.HasSuffix(cut, "<") {
			t.Fatalf("cut to %d separates '<' from its zero-width space: %q", n, cut)
		}
	}
}

func TestComposeDropsOptionalPartsFirst(t *testing.T) {
	must := []markup{"header", "title"}
	optional := []markup{"one", "two", markup(strings.Repeat("x", 50))}
	got, cut := compose(must, optional, "<@a>", 30)
	if !cut || got != "header\ntitle\none\ntwo\n…\n<@a>" {
		t.Errorf("compose = %q, %v", got, cut)
	}
	got, cut = compose(must, optional[:2], "<@a>", 100)
	if cut || got != "header\ntitle\none\ntwo\n<@a>" {
		t.Errorf("compose with room = %q, %v", got, cut)
	}
	got, cut = compose([]markup{"[a long title](https://e.com)"}, nil, "<@a>", 20)
	if !cut || got != "…\n<@a>" {
		t.Errorf("compose cutting must = %q, %v", got, cut)
	}
}
