package sentry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/cardtest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
)

const hostile = "x](https://evil.example) <font color=#00FF00>@13900000000 @all</font>\n# h\n> q\n```\n![i](https://evil.example/i.png) https://evil.example \u202egnp.exe"

// withEachString returns v once per string leaf of it, that leaf replaced
// by s.
func withEachString(v any, s string) []any {
	var out []any
	switch x := v.(type) {
	case string:
		return []any{s}
	case map[string]any:
		for k, child := range x {
			for _, c := range withEachString(child, s) {
				m := make(map[string]any, len(x))
				for kk, vv := range x {
					m[kk] = vv
				}
				m[k] = c
				out = append(out, m)
			}
		}
	case []any:
		for i, child := range x {
			for _, c := range withEachString(child, s) {
				l := append([]any(nil), x...)
				l[i] = c
				out = append(out, l)
			}
		}
	}
	return out
}

// TestHostileStringInEveryField puts hostile text into every string of
// every fixture, one at a time, and checks that the cards made of it (full,
// minimal, digest) have no link, tag, mention or heading of their own.
func TestHostileStringInEveryField(t *testing.T) {
	r := &formatter.Renderer{Keyword: "Sentry"}
	m := formatter.Mentions{Mobiles: []string{"13800000000"}}
	cases := 0
	for _, name := range sentrytest.Fixtures() {
		if strings.HasPrefix(name, "integration_schema") || strings.HasPrefix(name, "alert_rule_action") {
			continue
		}
		var doc any
		if err := json.Unmarshal(sentrytest.Fixture(t, name), &doc); err != nil {
			t.Fatal(err)
		}
		for _, variant := range withEachString(doc, hostile) {
			body, _ := json.Marshal(variant)
			w, err := Parse(sentrytest.Resource(name), body, opts)
			if err != nil {
				continue
			}
			cases++
			a := w.Alert
			links := []string{formatter.SafeURL(a.Link)}
			for _, pr := range a.PullRequests {
				links = append(links, formatter.SafeURL(pr.URL))
			}
			want := cardtest.Want{Links: links, Mentions: m.Mobiles, Fonts: 1}
			card, err := r.Card(a, m)
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := r.Digest([]formatter.Item{{Alert: a, Mentions: m}, {Alert: a, Mentions: m}}, false)
			for kind, msg := range map[string]formatter.Message{"card": card, "minimal": r.Minimal(a, m), "digest": digest} {
				if bad := cardtest.Check(msg.Text(), want); len(bad) > 0 {
					t.Fatalf("%s: %s of a hostile variant: %v\n%s", name, kind, bad, msg.Text())
				}
			}
		}
	}
	if cases < 500 {
		t.Errorf("only %d hostile variants parsed", cases)
	}
	t.Logf("%d hostile variants rendered", cases)
}
