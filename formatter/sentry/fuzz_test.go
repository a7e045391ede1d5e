package sentry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/cardtest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
)

// FuzzParse feeds the parser hostile bodies under every resource: it must
// never panic, and what it accepts must make a bounded alert whose card
// fits DingTalk's limit.
func FuzzParse(f *testing.F) {
	for _, name := range sentrytest.Fixtures() {
		f.Add(sentrytest.Resource(name), sentrytest.Fixture(f, name))
	}
	f.Add("event_alert", []byte(`{"action":"triggered","data":{"event":{"exception":[{"stacktrace":{"frames":[{"lineno":"x"}]}}]}}}`))
	f.Add("", []byte(`{"project":1,"event":{"tags":{"a":1}}}`))
	f.Fuzz(func(t *testing.T, resource string, body []byte) {
		w, err := Parse(resource, body, opts)
		if err != nil {
			return
		}
		a := w.Alert
		if w.DedupeKey == "" {
			t.Fatal("accepted webhook without a dedupe key")
		}
		raw, _ := json.Marshal(a)
		if len(raw) > 64<<10 {
			t.Fatalf("alert of %d bytes", len(raw))
		}
		for _, s := range []string{a.Title, a.Project, a.Environment, a.Message, a.Location, a.Link} {
			if !utf8.ValidString(s) && utf8.ValidString(string(body)) {
				t.Fatalf("invalid UTF-8 from valid input: %q", s)
			}
		}
		r := &formatter.Renderer{Keyword: "Sentry"}
		msg, err := r.Card(a, formatter.Mentions{Mobiles: []string{"13800000000"}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(msg.JSON()); n > formatter.MaxBodyBytes {
			t.Fatalf("card of %d bytes", n)
		}
		links := []string{formatter.SafeURL(a.Link)}
		for _, pr := range a.PullRequests {
			links = append(links, formatter.SafeURL(pr.URL))
		}
		if bad := cardtest.Check(msg.Text(), cardtest.Want{Links: links, Mentions: []string{"13800000000"}, Fonts: 1}); len(bad) > 0 {
			t.Fatalf("card not inert: %v\n%s", bad, msg.Text())
		}
	})
}

// bigEvent is an error event as large Sentry events get: many frames with
// context lines and variables, breadcrumbs, a request.
func bigEvent() []byte {
	var frames []map[string]any
	for i := range 200 {
		frames = append(frames, map[string]any{
			"filename": fmt.Sprintf("app/module%d.py", i), "lineno": i, "function": fmt.Sprintf("f%d", i),
			"in_app": i%3 == 0, "context_line": strings.Repeat("x = compute(y) ", 10),
			"pre_context": []string{"a", "b", "c", "d", "e"}, "post_context": []string{"f", "g", "h"},
			"vars": map[string]any{"x": strings.Repeat("v", 200), "y": []int{1, 2, 3}},
		})
	}
	var crumbs []map[string]any
	for i := range 500 {
		crumbs = append(crumbs, map[string]any{"category": "http", "message": fmt.Sprintf("GET /api/%d", i), "level": "info", "timestamp": 1700000000 + i})
	}
	ev := map[string]any{
		"event_id": "0123456789abcdef0123456789abcdef", "title": "ValueError: invalid literal for int() with base 10: 'abc'",
		"culprit": "", "level": "error", "environment": "production", "release": "api@1.2.3", "platform": "python",
		"datetime": "2026-11-22T02:03:04.000000Z", "issue_id": "4242",
		"url":     "https://sentry.example.com/api/0/projects/acme/api/events/0123456789abcdef0123456789abcdef/",
		"web_url": "https://sentry.example.com/organizations/acme/issues/4242/events/0123456789abcdef0123456789abcdef/",
		"exception": map[string]any{"values": []any{map[string]any{
			"type": "ValueError", "value": "invalid literal for int() with base 10: 'abc'",
			"stacktrace": map[string]any{"frames": frames},
		}}},
		"breadcrumbs": map[string]any{"values": crumbs},
		"tags":        [][]string{{"environment", "production"}, {"level", "error"}, {"server_name", "web-1"}},
		"request":     map[string]any{"url": "https://api.example.com/orders", "method": "POST", "data": strings.Repeat("d", 10000)},
	}
	b, _ := json.Marshal(map[string]any{"action": "triggered", "data": map[string]any{"event": ev, "triggered_rule": "New issue"}, "installation": map[string]any{"uuid": "x"}})
	return b
}

func BenchmarkParseAndRender(b *testing.B) {
	for _, c := range []struct {
		name, resource string
		body           []byte
	}{
		{"legacy_sentry9_fixture", "", sentrytest.Fixture(b, "legacy_webhook.sentry9.json")},
		{"event_alert_fixture", "event_alert", sentrytest.Fixture(b, "event_alert.triggered.json")},
		{"event_alert_big", "event_alert", bigEvent()},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := &formatter.Renderer{Keyword: "Sentry"}
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				w, err := Parse(c.resource, c.body, opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Card(w.Alert, formatter.Mentions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
