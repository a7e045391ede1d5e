package feishu

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

func TestEscapeMD(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain 文本 1.2", "plain 文本 1.2"},
		{"**bold** _i_ ~~s~~ `c`", "&#42;&#42;bold&#42;&#42; &#95;i&#95; &#126;&#126;s&#126;&#126; &#96;c&#96;"},
		{"[x](https://e.com)", "&#91;x&#93;&#40;https&#58;" + zwsp + "//e.com&#41;"},
		{"<at id=all></at>", "&#60;at id=all&#62;&#60;/at&#62;"},
		{"<font color='red'>", "&#60;font color='red'&#62;"},
		{":OK: $urlVal \\*", "&#58;OK&#58; &#36;urlVal &#92;&#42;"},
		{"&#42; &amp;", "&#38;#42; &#38;amp;"},
		{"# h", "&#35; h"},
		{"- item", "&#45; item"},
		{"a - b # c", "a - b # c"},
		{"12. item", "12&#46; item"},
		{"  + x", "  &#43; x"},
		{"see www.e.com", "see www" + zwsp + ".e.com"},
		{"a\nb", "a b"},
		{"\u202eevil \xff", "\uFFFDevil \uFFFD"},
	} {
		if got := string(escapeMD(c.in, false)); got != c.want {
			t.Errorf("escapeMD(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := string(escapeMD("a\r\n# b\n3. c", true)); got != "a\n&#35; b\n3&#46; c" {
		t.Errorf("block: %q", got)
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
		if block && r == '\n' {
			b.WriteRune(r)
		} else {
			b.WriteRune(visible(r))
		}
	}
	return strings.ReplaceAll(b.String(), zwsp, "")
}

var (
	referenceRE = regexp.MustCompile(`&#[0-9]+;`)
	lineStartRE = regexp.MustCompile(`(?m)^ *([#+\-=]|[0-9]+\.( |$))`)
	autoLinkRE  = regexp.MustCompile(`(?i)://|www\.`)
)

func FuzzEscapeMD(f *testing.F) {
	for _, s := range []string{"**b**", "[a](https://b)", "<at id=all></at>", ":OK:", "# h\n- l\n1. o", "&#42;", "www.x", "\u202e", "\xff", "]\r("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, block := range []bool{false, true} {
			out := string(escapeMD(s, block))
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 from %q", s)
			}
			// Outside character references, nothing lark_md acts on is left.
			if bare := referenceRE.ReplaceAllString(out, ""); strings.ContainsAny(bare, "&<>*_~`[]():$\\") {
				t.Fatalf("escapeMD(%q, %v) = %q keeps markup", s, block, out)
			}
			if m := lineStartRE.FindString(out); m != "" {
				t.Fatalf("escapeMD(%q, %v) = %q starts a line with %q", s, block, out, m)
			}
			if !block && strings.ContainsAny(out, "\r\n") {
				t.Fatalf("inline escape kept a line break: %q", out)
			}
			// Resolved as Feishu resolves references, it reads as the input,
			// and cannot be auto-linked.
			decoded := html.UnescapeString(out)
			if autoLinkRE.MatchString(decoded) {
				t.Fatalf("escapeMD(%q) reads %q, which can be auto-linked", s, decoded)
			}
			if got, want := strings.ReplaceAll(decoded, zwsp, ""), normalized(s, block); got != want {
				t.Fatalf("escaping dropped or changed characters: %q -> %q", want, got)
			}
		}
	})
}

var (
	linkRE = regexp.MustCompile(`\]\(([^)]*)\)`)
	atRE   = regexp.MustCompile(`<at id=([^>]*)></at>`)
)

// inert returns what the card's lark_md was not meant to have: links
// other than links, tags other than mentions of ids, a bare URL.
func inert(c card, links, ids []string) []string {
	var bad []string
	var texts []string
	for _, e := range c.Elements {
		if e.Text != nil && e.Text.Tag == "lark_md" {
			texts = append(texts, e.Text.Content)
		}
		for _, f := range e.Fields {
			texts = append(texts, f.Text.Content)
		}
		for _, b := range e.Actions {
			if !slices.Contains(links, b.URL) {
				bad = append(bad, fmt.Sprintf("button to %q", b.URL))
			}
		}
	}
	for _, s := range texts {
		for _, m := range linkRE.FindAllStringSubmatch(s, -1) {
			if !slices.Contains(links, m[1]) {
				bad = append(bad, fmt.Sprintf("link to %q", m[1]))
			}
		}
		rest := linkRE.ReplaceAllString(s, "]()")
		for _, m := range atRE.FindAllStringSubmatch(rest, -1) {
			if !slices.Contains(ids, m[1]) {
				bad = append(bad, fmt.Sprintf("mention of %q", m[1]))
			}
		}
		rest = atRE.ReplaceAllString(rest, "")
		if strings.Contains(rest, "<") || strings.Contains(rest, "://") {
			bad = append(bad, fmt.Sprintf("markup in %q", rest))
		}
	}
	return bad
}

func FuzzCard(f *testing.F) {
	f.Add("[x](https://evil.example) <at id=all></at>", "**b** :OK:", "<font color='red'>", "www.evil.example")
	f.Add("# h\n- l", "&#60;at id=all&#62;", "$urlVal", "](https://x)")
	r, err := New(Config{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/2f3c9a1e-8b7d-4c6e-9f0a-1b2c3d4e5f60", Keyword: "Sentry"}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	link, pr := "https://sentry.example.com/issues/1/", "https://github.com/a/b/pull/1"
	f.Fuzz(func(t *testing.T, title, project, message, env string) {
		a := formatter.Alert{Resource: "event_alert", Action: "triggered", Title: title, Project: project, Message: message,
			Environment: env, Level: env, Location: title, Rule: message, Subtitle: project, Link: link, Time: time.Unix(1e9, 0),
			Evidence:     []formatter.Evidence{{Name: title, Value: message}, {Name: project, Value: env, Important: true}},
			PullRequests: []formatter.Ref{{Title: title, URL: pr}}}
		ids := []string{"ou_ok", title}
		items := []formatter.Item{{Alert: a, Mentions: formatter.Mentions{UserIDs: ids}, Note: message}, {Alert: a}}
		allowed := []string{"ou_ok"}
		if idRE.MatchString(title) && title != "all" {
			allowed = append(allowed, title)
		}
		card, _ := r.Card(items[0])
		digest, _ := r.Digest(items, false)
		for _, msg := range []*Message{card.(*Message), digest.(*Message), r.Minimal(items[0]).(*Message)} {
			if bad := inert(msg.card, []string{link, pr}, allowed); len(bad) > 0 {
				t.Fatalf("%v in %s", bad, msg.JSON())
			}
			if !strings.HasPrefix(msg.card.Header.Title.Content, "【Sentry】") && !strings.Contains(msg.card.Header.Title.Content, "Sentry") {
				t.Fatalf("header %q lacks the keyword", msg.card.Header.Title.Content)
			}
			if !json.Valid(msg.JSON()) || len(msg.JSON()) > TargetBody {
				t.Fatalf("%d bytes", len(msg.JSON()))
			}
		}
	})
}

func TestHostileCardIsInert(t *testing.T) {
	r, _ := New(Config{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/2f3c9a1e-8b7d-4c6e-9f0a-1b2c3d4e5f60"}, Options{})
	evil := "[click](https://evil.example) <at id=all></at> <a href='https://evil.example'>x</a> **b** :OK: ~~s~~\n# h"
	a := formatter.Alert{Resource: "event_alert", Action: "triggered", Title: evil, Project: evil, Environment: evil, Message: evil,
		Location: evil, Link: "https://sentry.example.com/issues/1/", PullRequests: []formatter.Ref{{Title: evil, URL: "https://github.com/a/b/pull/1"}}}
	it := formatter.Item{Alert: a, Note: evil, Mentions: formatter.Mentions{UserIDs: []string{"ou_ok", "<at id=all>"}}}
	card, _ := r.Card(it)
	digest, _ := r.Digest([]formatter.Item{it}, false)
	for _, msg := range []*Message{card.(*Message), digest.(*Message)} {
		if bad := inert(msg.card, []string{a.Link, "https://github.com/a/b/pull/1"}, []string{"ou_ok"}); len(bad) > 0 {
			t.Errorf("%v in %s", bad, msg.JSON())
		}
	}
	// The checker itself catches what escaping prevents.
	raw := card.(*Message).card
	raw.Elements = append(raw.Elements, div("[x](https://evil) <at id=all></at> <b>"))
	if bad := inert(raw, []string{a.Link, "https://github.com/a/b/pull/1"}, []string{"ou_ok"}); len(bad) != 3 {
		t.Errorf("checker found %v", bad)
	}
}
