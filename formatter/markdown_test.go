package formatter

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// active finds markdown-active sequences that escaped user text must never
// contain: links/images, HTML tags and entities, mentions, bold, strike,
// autolinks and block syntax at a line start.
var active = []struct {
	name string
	re   *regexp.Regexp
}{
	{"link", regexp.MustCompile(`\]\(`)},
	{"reference", regexp.MustCompile(`\]\[|\]:`)},
	{"html tag", regexp.MustCompile(`<[A-Za-z/!?]`)},
	{"entity", regexp.MustCompile(`&#?[A-Za-z0-9]+;`)},
	{"mention", regexp.MustCompile(`@[A-Za-z0-9+]`)},
	{"bold", regexp.MustCompile(`\*\*|__`)},
	{"strike", regexp.MustCompile(`~~`)},
	{"autolink", regexp.MustCompile(`://|(?i)www\.`)},
	{"backslash escape", regexp.MustCompile(`\\[!-/:-@\[-` + "`" + `{-~]`)},
	{"block start", regexp.MustCompile(`(?m)^(#|>|-|\+|\*|=|\||` + "`" + `|~|[0-9]+[.)])`)},
}

func checkInert(t *testing.T, in, out string) {
	t.Helper()
	for _, a := range active {
		if loc := a.re.FindStringIndex(out); loc != nil {
			t.Errorf("Escape(%q) = %q still has a %s at %d: %q", in, out, a.name, loc[0], out[loc[0]:loc[1]])
		}
	}
}

func TestEscapeNeutralizesHostileText(t *testing.T) {
	for _, in := range []string{
		"[click me](https://evil.example/phish)",
		"![img](https://evil.example/x.png)",
		"<font color=#FF0000>FAKE RESOLVED</font>",
		"# Heading\n## another",
		"> quoted\n- list\n1. ordered\n+ plus",
		"@13800000000 @all please look",
		"**bold** __bold__ ~~strike~~",
		"visit https://evil.example or www.evil.example",
		"&#64;13800000000 &lt;font&gt;",
		`trailing backslash \`,
		`\[not a link\](x)`,
		"[a]: https://evil.example",
		"---\n===",
		"`code` ```fence```",
		"| a | b |\n|---|---|",
		"tab\tand\rcarriage\u2028separator",
	} {
		out := Escape(in)
		checkInert(t, in, out)
		if strings.ContainsAny(out, "\n\r\t") {
			t.Errorf("Escape(%q) = %q keeps a line break", in, out)
		}
	}
}

func TestEscapeKeepsTextReadable(t *testing.T) {
	for in, want := range map[string]string{
		"TypeError: Cannot read properties of undefined (reading 'x')": "TypeError: Cannot read properties of undefined (reading 'x')",
		"KeyError: ['foo']":              "KeyError: ['foo']",
		"snake_case_name in module":      "snake_case_name in module",
		"1 + 1 = 2":                      "1 + 1 = 2",
		"用户 @张三 的订单 [12] 失败":             "用户 @张三 的订单 [12] 失败",
		"a\nb":                           "a b",
		"**x**":                          "**x**",
		"<font color=#FF0000>x</font>":   "<font color=#FF0000>x</font>",
		"see https://example.com/a?b=c)": "see https://example.com/a?b=c)",
	} {
		got := strings.ReplaceAll(Escape(in), zwsp, "")
		if got != want {
			t.Errorf("Escape(%q) without zero-width spaces = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeBlockKeepsLines(t *testing.T) {
	in := "line one\n# not a heading\n> not a quote\n  indented code?\nlast"
	out := EscapeBlock(in)
	checkInert(t, in, out)
	lines := strings.Split(out, "\n")
	if len(lines) != 5 {
		t.Fatalf("EscapeBlock kept %d lines, want 5: %q", len(lines), out)
	}
	if got := strings.ReplaceAll(lines[1], zwsp, ""); got != "# not a heading  " {
		t.Errorf("line 2 = %q", got)
	}
}

func TestEscapeLinkText(t *testing.T) {
	got := EscapeLinkText("KeyError: ['x'] ]")
	if strings.ContainsAny(got, "[]") {
		t.Errorf("EscapeLinkText left a bracket that would end the link: %q", got)
	}
	if !strings.Contains(got, "［'x'］") {
		t.Errorf("EscapeLinkText = %q, want full-width brackets", got)
	}
}

func TestSafeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://sentry.io/organizations/acme/issues/1/":   "https://sentry.io/organizations/acme/issues/1/",
		"https://sentry.io/issues/1/?q=a)b":                "https://sentry.io/issues/1/?q=a%29b",
		"https://user:pass@sentry.io/x":                    "https://sentry.io/x",
		"javascript:alert(1)":                              "",
		"dtmd://dingtalkclient/sendMessage?content=x":      "",
		"/relative/path":                                   "",
		"":                                                 "",
		"https://sentry.io/a b":                            "https://sentry.io/a%20b",
		"http://sentry.local:9000/organizations/o/issues/": "http://sentry.local:9000/organizations/o/issues/",
	} {
		if got := SafeURL(in); got != want {
			t.Errorf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello world", 6, "hello…"},
		{"你好世界你好", 3, "你好…"},
		{"abc", 0, ""},
	} {
		if got := Shorten(c.in, c.n); got != c.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestCutBytes(t *testing.T) {
	link := "[title](https://sentry.io/organizations/acme/issues/1/)"
	for _, c := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"fits", "abc", 10, "abc"},
		{"rune boundary", "ab你好", 4, "ab"},
		{"inside link text", "x " + link, 5, "x "},
		{"inside link url", "x " + link, 30, "x "},
		{"after link", "x " + link + " tail", len("x "+link) + 2, "x " + link + " t"},
		{"inside font tag", "a <font color=#FF0000>b</font>", 8, "a "},
		{"escaped lt is no tag", "a <" + zwsp + "b c", 7, "a <" + zwsp + "b"},
	} {
		got := CutBytes(c.s, c.n)
		if got != c.want {
			t.Errorf("%s: CutBytes(%q, %d) = %q, want %q", c.name, c.s, c.n, got, c.want)
		}
		if len(got) > c.n || !utf8.ValidString(got) {
			t.Errorf("%s: CutBytes gave %d bytes (limit %d), valid UTF-8 %v", c.name, len(got), c.n, utf8.ValidString(got))
		}
	}
}

func TestJSONLenMatchesEncoding(t *testing.T) {
	for _, s := range []string{"plain", "quote \" back \\ nl \n tab \t", "<font>&", "中文 emoji 🔴", "\x01\x1f", "bad \xff utf8", "\u2028\u2029"} {
		m := Message{MsgType: "markdown", Markdown: &Markdown{Title: "", Text: s}}
		empty := Message{MsgType: "markdown", Markdown: &Markdown{}}
		if got, want := jsonLen(s), len(m.JSON())-len(empty.JSON()); got != want {
			t.Errorf("jsonLen(%q) = %d, encoding adds %d bytes", s, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"[a](http://x)", "<font color=#f00>", "@138", "# h\n> q", "**b**", "www.x.com", "a\\](b)", "&#64;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, block := range []bool{false, true} {
			out := escape(s, block)
			if !utf8.ValidString(out) {
				t.Fatalf("escape(%q) is not valid UTF-8", s)
			}
			checkInert(t, s, out)
			// Nothing is dropped: without the zero-width spaces the text
			// is the input with control characters as spaces.
			want := strings.Map(func(r rune) rune {
				if r == '\n' && block {
					return r
				}
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
					return ' '
				}
				if isBidiControl(r) {
					return '\uFFFD'
				}
				return r
			}, crlf(strings.ToValidUTF8(s, "\uFFFD"), block))
			got := strings.ReplaceAll(out, zwsp, "")
			if block {
				// Spaces around a line break are markdown's, not the
				// text's: leading ones would make a code block, and two
				// trailing ones make the break.
				got, want = trimLineEnds(trimLineStarts(got)), trimLineEnds(trimLineStarts(want))
			}
			if got != want {
				t.Fatalf("escape(%q, %v) changed the text: got %q, want %q", s, block, got, want)
			}
		}
	})
}

// crlf is s with the line breaks of blocks as escape sees them: CRLF is a
// break, a lone CR a space.
func crlf(s string, block bool) string {
	if block {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return s
}

func trimLineEnds(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines[:len(lines)-1] {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func trimLineStarts(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, " ")
	}
	return strings.Join(lines, "\n")
}

func FuzzCutBytes(f *testing.F) {
	f.Add("x [t](https://a/b) <font color=#FF0000>r</font> 你好", 12)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > len(s)+10 {
			return
		}
		got := CutBytes(s, n)
		if len(got) > n {
			t.Fatalf("CutBytes(%q, %d) = %d bytes", s, n, len(got))
		}
		if !strings.HasPrefix(s, got) {
			t.Fatalf("CutBytes(%q, %d) = %q is not a prefix", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("CutBytes(%q, %d) split a rune", s, n)
		}
	})
}
