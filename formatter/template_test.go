package formatter

import (
	"strings"
	"testing"
	"time"
)

func TestTemplateRenders(t *testing.T) {
	r := &Renderer{Keyword: "Sentry", Zone: shanghai}
	src := `{{define "title"}}{{.Alert.Project}}: {{.Alert.Title}}{{end}}
{{define "text"}}### {{.Emoji}} {{link .Alert.Title .Alert.Link}}
- level: <font color={{.Color}}>{{.Level}}</font>
- env: {{escape .Alert.Environment}}
- at: {{time .Alert.Time}}
- utc: {{timeIn "UTC" .Alert.Time}}
- browser: {{tag "browser" .Alert}}
> {{truncate 5 .Alert.Message}}
{{end}}`
	tpl, err := ParseTemplate("card.tmpl", src, r.Zone)
	if err != nil {
		t.Fatal(err)
	}
	r.Template = tpl
	a := sampleAlert(1)
	a.Environment = "[prod](https://evil.example)"
	a.Tags = []Tag{{Key: "browser", Value: "Chrome 120"}}
	a.Message = "0123456789"
	msg, err := r.Card(a, Mentions{Mobiles: []string{"13800000000"}})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Title() != "【Sentry】api: ValueError: bad input 1" {
		t.Errorf("title %q", msg.Title())
	}
	text := strings.ReplaceAll(msg.Text(), zwsp, "")
	for _, want := range []string{
		"### 🔴 [ValueError: bad input 1](https://sentry.example.com/organizations/acme/issues/1/)",
		"<font color=#E03E2F>error</font>",
		"- at: 2026-11-22 10:03:05 CST", "- utc: 2026-11-22 02:03:05 UTC",
		"- browser: Chrome 120", "> 0123…", "【Sentry】", "@13800000000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("templated text lacks %q:\n%s", want, msg.Text())
		}
	}
	if strings.Contains(msg.Text(), "](https://evil") {
		t.Errorf("escape did not neutralize the link: %s", msg.Text())
	}
}

func TestTemplateErrorsAtStartup(t *testing.T) {
	r := &Renderer{}
	for _, c := range []struct {
		name, src, want string
	}{
		{"syntax", "{{define \"title\"}}x{{end}}\n{{define \"text\"}}\n{{if}}{{end}}", "card.tmpl:3"},
		{"missing text", `{{define "title"}}x{{end}}`, `no {{define "text"}} block`},
		{"unknown field", "{{define \"title\"}}x{{end}}{{define \"text\"}}\n\n{{.Alert.Nope}}{{end}}", "card.tmpl:3"},
		{"unknown function", `{{define "title"}}{{nope}}{{end}}{{define "text"}}x{{end}}`, `function "nope" not defined`},
		{"bad zone", `{{define "title"}}x{{end}}{{define "text"}}{{timeIn "Mars/Base" .Alert.Time}}{{end}}`, "Mars/Base"},
	} {
		_, err := ParseTemplate("card.tmpl", c.src, r.Zone)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestTimeZone(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for zone, want := range map[string]string{"Asia/Shanghai": "2026-01-01 08:00:00 CST", "UTC": "2026-01-01 00:00:00 UTC", "America/New_York": "2025-12-31 19:00:00 EST"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := (&Renderer{Zone: loc}).FormatTime(at); got != want {
			t.Errorf("%s: %q, want %q", zone, got, want)
		}
	}
}
