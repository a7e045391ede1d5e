package sentry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
)

// TestParseWorkflowEngineFixtures covers what Sentry's workflow engine sends
// (testdata/*.{uptime,cron,workflow}.json and activity_alert.*, rebuilt
// from Sentry's source).
func TestParseWorkflowEngineFixtures(t *testing.T) {
	for _, c := range []struct {
		file  string
		check func(t *testing.T, a formatter.Alert)
		dedup string
	}{
		{"event_alert.triggered.uptime.json", func(t *testing.T, a formatter.Alert) {
			want(t, "kind", a.Kind, formatter.KindUptime)
			want(t, "title", a.Title, "Downtime detected for https://shop.acme.example/healthz")
			want(t, "subtitle", a.Subtitle, "Your monitored domain is down")
			want(t, "project", a.Project, "shop-uptime")
			want(t, "location", a.Location, "")
			want(t, "message", a.Message, "")
			want(t, "issue", a.IssueID, "10000000051")
			if len(a.Evidence) != 4 || a.Evidence[0] != (formatter.Evidence{Name: "Failure reason", Value: "Got a 503 status code", Important: true}) || a.Evidence[1].Important {
				t.Errorf("evidence %+v", a.Evidence)
			}
		}, "event_alert:9a1f0c2b3d4e4f5a8b7c6d5e4f3a2b1c:"},
		{"event_alert.triggered.cron.json", func(t *testing.T, a formatter.Alert) {
			want(t, "kind", a.Kind, formatter.KindCron)
			want(t, "title", a.Title, "Monitor failure: nightly-billing")
			want(t, "project", a.Project, "billing")
			if len(a.Evidence) == 0 || a.Evidence[0].Value != "1 missed check-in detected" {
				t.Errorf("evidence %+v", a.Evidence)
			}
		}, "event_alert:1b2c3d4e5f6a4b7c8d9e0f1a2b3c4d5e:"},
		{"event_alert.triggered.workflow.json", func(t *testing.T, a formatter.Alert) {
			want(t, "rule", a.Rule, "Error monitor for payments")
			want(t, "rule id", a.RuleID, "10000000077")
			want(t, "route setting", a.Settings["route"], "payments")
			want(t, "kind", a.Kind, "")
		}, "event_alert:e0f1a2b3c4d54e6f8a9b0c1d2e3f4a5b:10000000077"},
		{"metric_alert.critical.workflow.json", func(t *testing.T, a formatter.Alert) {
			want(t, "rule id", a.RuleID, "10000000412")
			want(t, "issue", a.IssueID, "metric:10000000412")
			want(t, "route setting", a.Settings["route"], "web")
			want(t, "level", a.Level, "critical")
		}, "metric_alert:10000003301:critical"},
		{"activity_alert.status_regression.json", func(t *testing.T, a formatter.Alert) {
			want(t, "resource", a.Resource, "activity_alert")
			want(t, "activity", a.Activity, "status_regression")
			want(t, "release", a.Release, "web@5.2.0")
			want(t, "title", a.Title, "TypeError: Cannot read properties of undefined (reading 'id')")
			want(t, "project", a.Project, "web")
			want(t, "org", a.Org, "acme")
			want(t, "link", a.Link, "https://sentry.acme.example/organizations/acme/issues/8812345/")
			want(t, "rule", a.Rule, "Regressions in web")
			want(t, "route setting", a.Settings["route"], "web")
			if a.Events != 42 || a.Users != 17 {
				t.Errorf("counts %d/%d", a.Events, a.Users)
			}
		}, "activity_alert:8812345:status_regression:10000000088:web@5.2.0"},
		{"activity_alert.status_resolved.json", func(t *testing.T, a formatter.Alert) {
			want(t, "activity", a.Activity, "status_resolved_in_release")
			want(t, "actor", a.Actor, "Li Wei")
			want(t, "release", a.Release, "web@5.2.1")
			if !a.Resolved() {
				t.Errorf("a resolve does not count as resolved")
			}
		}, "activity_alert:8812345:status_resolved_in_release:10000000089:web@5.2.1"},
		{"activity_alert.seer_root_cause_completed.json", func(t *testing.T, a formatter.Alert) {
			want(t, "activity", a.Activity, "seer_root_cause_completed")
			if !strings.HasPrefix(a.Message, "`cart.owner` is undefined") {
				t.Errorf("message %q, want Seer's summary", a.Message)
			}
		}, "activity_alert:8812345:seer_root_cause_completed:10000000090:"},
	} {
		t.Run(c.file, func(t *testing.T) {
			w, err := Parse(sentrytest.Resource(c.file), sentrytest.Fixture(t, c.file), opts)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, w.Alert)
			if w.DedupeKey != c.dedup {
				t.Errorf("dedupe key %q, want %q", w.DedupeKey, c.dedup)
			}
		})
	}
}

func want(t *testing.T, what, got, wanted string) {
	t.Helper()
	if got != wanted {
		t.Errorf("%s = %q, want %q", what, got, wanted)
	}
}

func activityBody(activity string, extra map[string]any) []byte {
	data := map[string]any{
		"issue":    map[string]any{"id": "1", "title": "T", "webUrl": "https://sentry.io/organizations/o/issues/1/", "project": map[string]any{"slug": "p"}},
		"activity": map[string]any{"type": activity, "details": map[string]any{}},
		"alert":    map[string]any{"id": 18014398509481985, "title": "A"},
	}
	for k, v := range extra {
		data[k] = v
	}
	b, _ := json.Marshal(map[string]any{"action": "triggered", "data": data})
	return b
}

func TestActivityAlerts(t *testing.T) {
	for _, started := range []string{"seer_root_cause_started", "seer_solution_started", "seer_coding_started", "seer_pr_iteration_started"} {
		if _, err := Parse("activity_alert", activityBody(started, nil), opts); err == nil {
			t.Errorf("%s made a card", started)
		} else if _, ok := IsIgnored(err); !ok {
			t.Errorf("%s: %v, want ignored", started, err)
		}
	}
	w, err := Parse("activity_alert", activityBody("appeared_in_pull_request", map[string]any{
		"activity": map[string]any{"type": "appeared_in_pull_request", "details": map[string]any{
			"pull_requests": []any{map[string]any{"repo_name": "acme/web", "url": "https://github.com/acme/web/pull/7"},
				map[string]any{"repo_name": "x", "url": "javascript:alert(1)"}},
			"commit": map[string]any{"id": "abc", "key": "deadbeef"}}},
	}), opts)
	if err != nil {
		t.Fatal(err)
	}
	a := w.Alert
	if len(a.PullRequests) != 1 || a.PullRequests[0] != (formatter.Ref{Title: "acme/web", URL: "https://github.com/acme/web/pull/7"}) {
		t.Errorf("pull requests %+v (an unsafe URL must be dropped)", a.PullRequests)
	}
	want(t, "commit", a.Commit, "deadbeef")
	want(t, "link (camelCase webUrl)", a.Link, "https://sentry.io/organizations/o/issues/1/")
	// An id beyond 2^53 arrives as a JSON number: kept digit for digit.
	want(t, "alert id", a.RuleID, "18014398509481985")
	for _, body := range []string{
		`{"action":"triggered","data":{"issue":{"id":"1","title":"T"}}}`,
		`{"action":"triggered","data":{"activity":{"type":"status_resolved"}}}`,
	} {
		if _, err := Parse("activity_alert", []byte(body), opts); err == nil {
			t.Errorf("%s: parsed", body)
		} else if _, ok := err.(*InvalidError); !ok {
			t.Errorf("%s: %v, want invalid", body, err)
		}
	}
}

func TestSettingsDecodeJSONEncodedValues(t *testing.T) {
	body := `{"action":"triggered","data":{"event":{"event_id":"e","title":"T"},
		"issue_alert":{"id":"9","settings":[{"name":"route","value":"\"payments\""},{"name":"mentions","value":"13800000000"},{"name":"n","value":5}]}}}`
	w, err := Parse("event_alert", []byte(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := w.Alert.Settings; s["route"] != "payments" || s["mentions"] != "13800000000" || s["n"] != "5" {
		t.Errorf("settings %q", s)
	}
}

// TestDedupeIgnoresNames: Sentry may put a monitor's name where the rule's
// was, and names change; two deliveries of one event by one rule are one
// delivery whatever they are called.
func TestDedupeIgnoresNames(t *testing.T) {
	body := func(name string) []byte {
		return []byte(`{"action":"triggered","data":{"triggered_rule":"` + name + `","event":{"event_id":"e","title":"T"},"issue_alert":{"id":10000000077,"title":"` + name + `"}}}`)
	}
	a, _ := Parse("event_alert", body("Error monitor for payments"), opts)
	b, _ := Parse("event_alert", body("Payments errors (renamed)"), opts)
	if a.DedupeKey != b.DedupeKey || !strings.Contains(a.DedupeKey, "10000000077") {
		t.Errorf("keys %q / %q, want the same, by rule id", a.DedupeKey, b.DedupeKey)
	}
}

func TestOccurrenceFieldsAreBoundedAndLenient(t *testing.T) {
	huge := strings.Repeat("y", 64<<10)
	var evidence []any
	for range 60 {
		evidence = append(evidence, map[string]any{"name": huge, "value": huge, "important": "true"})
	}
	evidence = append(evidence, "not an object", map[string]any{"name": 5, "value": nil})
	body, _ := json.Marshal(map[string]any{"action": "triggered", "data": map[string]any{"event": map[string]any{
		"event_id": "e", "title": "T", "occurrence": map[string]any{"type": "7001", "issueTitle": huge, "subtitle": huge, "evidenceDisplay": evidence}}}})
	w, err := Parse("event_alert", body, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(w.Alert)
	if len(raw) > 32<<10 {
		t.Errorf("stored alert is %d bytes", len(raw))
	}
	if w.Alert.Kind != formatter.KindUptime {
		t.Errorf("kind %q from a type given as a string", w.Alert.Kind)
	}
}
