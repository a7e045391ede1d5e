package formatter

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/cardtest"
)

// TestMarkupIsOnlyMadeByEscapers holds the package to the rule that makes
// its cards safe: a string becomes card markup only inside the escaping
// functions of markup.go (and the few places that convert markup that is
// already markup, or a colour of the card's own table).
func TestMarkupIsOnlyMadeByEscapers(t *testing.T) {
	allowed := map[string]bool{"text": true, "linked": true, "href": true, "templated": true,
		"joinMarkup": true, "markup": true, "mentionText": true, "fitJSON": true, "quote": true, "trimNewlines": true, "actionLink": true, "actionTarget": true}
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "markup" {
					return true
				}
				if _, lit := call.Args[0].(*ast.BasicLit); lit {
					return true
				}
				if arg, ok := call.Args[0].(*ast.CallExpr); ok {
					if id, ok := arg.Fun.(*ast.Ident); ok && id.Name == "colorCode" {
						return true
					}
				}
				if !allowed[fn.Name.Name] {
					t.Errorf("%s: %s converts a string to markup outside the escapers", fset.Position(call.Pos()), fn.Name.Name)
				}
				return true
			})
		}
	}
}

// hostile is text that tries every way of breaking out of a card field.
const hostile = "x](https://evil.example) [y](https://evil.example) <font color=#00FF00>@13800000000 @all</font>\n# h\n> q\n- l\n```\n![i](https://evil.example/i.png) https://evil.example www.evil.example <b>b</b> &amp; \u202egnp.exe\u2066"

func TestCardHostileLevelCannotInject(t *testing.T) {
	a := sampleAlert(1)
	a.Level = "[x](https://evil.example) <font color=#00FF00>red</font> @all @13900000000"
	r := &Renderer{Zone: shanghai}
	card, _ := r.Card(a, Mentions{})
	for name, msg := range map[string]Message{"card": card, "minimal": r.Minimal(a, Mentions{})} {
		if bad := cardtest.Check(msg.Text(), cardtest.Want{Links: []string{a.Link}, Fonts: 1}); len(bad) > 0 {
			t.Errorf("%s: %v\n%s", name, bad, msg.Text())
		}
	}
}

// everyTextField sets each text field of a to s, one after another.
func everyTextField(a Alert, s string) []Alert {
	var out []Alert
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		b := a
		bv := reflect.ValueOf(&b).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			bv.SetString(s)
		case reflect.Slice:
			switch f.Type().Elem() {
			case reflect.TypeFor[Tag]():
				bv.Set(reflect.ValueOf([]Tag{{Key: s, Value: s}}))
			case reflect.TypeFor[Evidence]():
				bv.Set(reflect.ValueOf([]Evidence{{Name: s, Value: s, Important: true}, {Name: s, Value: s}}))
			case reflect.TypeFor[Ref]():
				bv.Set(reflect.ValueOf([]Ref{{Title: s, URL: "https://github.com/acme/web/pull/1"}}))
			default:
				continue
			}
		case reflect.Map:
			bv.Set(reflect.ValueOf(map[string]string{s: s}))
		default:
			continue
		}
		out = append(out, b)
	}
	return out
}

func TestEveryFieldIsEscaped(t *testing.T) {
	tpl, err := ParseTemplate("t", `{{define "title"}}{{.Alert.Title}}{{end}}{{define "text"}}
{{.Alert.Title}} {{.Alert.Project}} {{.Alert.Level}} {{.Alert.Environment}} {{.Alert.Location}} {{.Alert.Message}}
{{.Alert.Release}} {{.Alert.Rule}} {{.Alert.Assignee}} {{.Alert.Subtitle}} {{.Alert.Actor}} {{.Alert.Commit}} {{.Alert.Kind}}
{{range .Alert.Tags}}{{.Key}}={{.Value}} {{end}}{{range $k, $v := .Alert.Settings}}{{$k}}={{$v}} {{end}}
{{range .Alert.Evidence}}{{.Name}}: {{.Value}} {{end}}{{range .Alert.PullRequests}}{{link .Title .URL}} {{end}}
{{escape .Alert.Title}} {{escapeBlock .Alert.Message}} {{link .Alert.Title .Alert.Link}}{{end}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := sampleAlert(1)
	base.Activity = "status_regression"
	for _, a := range everyTextField(base, hostile) {
		links := []string{SafeURL(a.Link), "https://github.com/acme/web/pull/1"}
		m := Mentions{Mobiles: []string{"13800000000"}}
		want := cardtest.Want{Links: links, Mentions: []string{"13800000000"}, Fonts: 1}
		for _, typ := range []string{TypeMarkdown, TypeActionCard} {
			r := &Renderer{Keyword: "KW", Type: typ, Zone: shanghai}
			card, err := r.Card(a, m)
			if err != nil {
				t.Fatal(err)
			}
			templated, err := (&Renderer{Template: tpl}).Card(a, m)
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := r.Digest([]Item{{Alert: a, Mentions: m}, {Alert: sampleAlert(2)}}, false)
			plain, _ := r.Digest([]Item{{Alert: a, Mentions: m}, {Alert: sampleAlert(2)}}, true)
			for name, msg := range map[string]Message{"card": card, "minimal": r.Minimal(a, m), "template": templated, "digest": digest, "plain digest": plain} {
				w := want
				if name == "digest" {
					w.Links = append(w.Links, sampleAlert(2).Link)
				}
				if msg.MsgType == TypeActionCard {
					w.Mentions = nil
				}
				if bad := cardtest.Check(msg.Text(), w); len(bad) > 0 {
					t.Errorf("%s (%s) with a hostile field: %v\n%s", name, typ, bad, msg.Text())
				}
				if strings.ContainsAny(msg.Title(), "\u202e\u2066\n") {
					t.Errorf("%s: title keeps a control character: %q", name, msg.Title())
				}
			}
		}
	}
}

func TestTemplateViewEscapesEveryField(t *testing.T) {
	for _, a := range everyTextField(sampleAlert(1), hostile) {
		v := reflect.ValueOf(templateView(a))
		for i := range v.NumField() {
			name := v.Type().Field(i).Name
			if f := v.Field(i); f.Kind() == reflect.String && name != "Link" && f.String() != "" && f.String() == hostile {
				t.Errorf("templateView leaves %s unescaped", name)
			}
		}
	}
}

func TestEscapeIsIdempotent(t *testing.T) {
	for _, s := range []string{hostile, "a  \n  b", "**x** __y__ ~~z~~ http://a www.b.c @x &y <z \\w"} {
		if once, twice := Escape(s), Escape(Escape(s)); once != twice {
			t.Errorf("Escape(Escape(%q)) = %q, want %q", s, twice, once)
		}
		if once, twice := EscapeBlock(s), EscapeBlock(EscapeBlock(s)); once != twice {
			t.Errorf("EscapeBlock twice = %q, want %q", twice, once)
		}
	}
}

func TestBidiControlsAreShown(t *testing.T) {
	got := Escape("invoice\u202Efdp.exe \u2067x\u2069 \u200Fok")
	if strings.ContainsAny(got, "\u202e\u2067\u2069") {
		t.Errorf("bidi controls survived: %q", got)
	}
	if strings.Count(got, "\uFFFD") != 3 || !strings.Contains(got, "\u200F") {
		t.Errorf("Escape = %q: want each explicit control as U+FFFD and the RLM kept", got)
	}
}

// FuzzCardIsInert renders arbitrary alerts in every form and checks that
// nothing in them becomes a link, tag, mention, heading or code block the
// card did not make itself.
func FuzzCardIsInert(f *testing.F) {
	f.Add(hostile, "proj", "error", "prod", "x", "msg")
	f.Add("a](b)", "[p](http://x)", "<font>", "@all", "www.x.y", "# h\n> q")
	f.Add("\u202e", "**", "__", "~~", "```", "    code")
	f.Fuzz(func(t *testing.T, title, project, level, env, location, message string) {
		a := Alert{Resource: "event_alert", Action: "triggered", Title: title, Project: project, Level: level,
			Environment: env, Location: location, Message: message, Release: message, Subtitle: title,
			Link: "https://sentry.example.com/organizations/o/issues/1/", Time: time.Unix(1, 0),
			Tags: []Tag{{Key: title, Value: message}}, Evidence: []Evidence{{Name: level, Value: env, Important: true}, {Name: env, Value: message}},
			PullRequests: []Ref{{Title: title, URL: "https://github.com/o/r/pull/1"}}}
		m := Mentions{Mobiles: []string{"13800000000"}}
		want := cardtest.Want{Links: []string{a.Link, "https://github.com/o/r/pull/1"}, Mentions: m.Mobiles, Fonts: 1}
		r := &Renderer{Keyword: "KW"}
		card, _ := r.Card(a, m)
		digest, _ := r.Digest([]Item{{Alert: a, Mentions: m}, {Alert: a}}, false)
		for _, msg := range []Message{card, r.Minimal(a, m), digest} {
			if bad := cardtest.Check(msg.Text(), want); len(bad) > 0 && !slices.Equal(bad, nil) {
				t.Fatalf("%v\n%s", bad, msg.Text())
			}
			if len(msg.JSON()) > MaxBodyBytes {
				t.Fatalf("body of %d bytes", len(msg.JSON()))
			}
		}
	})
}
