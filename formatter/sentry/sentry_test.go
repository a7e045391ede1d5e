package sentry

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var received = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

var opts = Options{SentryURL: "https://sentry.example.com", Received: received}

func TestParseFixtures(t *testing.T) {
	for _, c := range []struct {
		file  string
		want  formatter.Alert
		dedup string
	}{
		{"event_alert.triggered.json", formatter.Alert{
			Resource: "event_alert", Action: "triggered", Title: "ReferenceError: heck is not defined",
			Project: "front-end", Org: "test-org", Level: "error", Location: "?(<anonymous>)",
			Rule: "Very Important Alert Rule!", Message: "heck is not defined",
			Link:    "https://sentry.io/organizations/test-org/issues/1117540176/",
			IssueID: "1117540176", EventID: "e4874d664c3540c1a32eab185f12c5ab",
			Time:     time.Date(2019, 8, 19, 21, 6, 17, 677000000, time.UTC),
			Settings: map[string]string{"channel": "#general"},
		}, "event_alert:e4874d664c3540c1a32eab185f12c5ab:"},
		{"event_alert.triggered.alert_rule_action.mock.json", formatter.Alert{
			Resource: "event_alert", Action: "triggered", Title: "Error #1: This is a test error!",
			Org: "lxyz", Environment: "production", Location: "SentryCustomError(frontend/src/util)",
			Rule: "issue alert", Message: "This is a test error!",
			Link:    "https://sentry.io/organizations/lxyz/issues/123/",
			IssueID: "123", EventID: "def456", Time: time.Date(2022, 4, 4, 18, 17, 18, 320000000, time.UTC),
			Settings: map[string]string{"title": "Alert Rule Action Item Title", "description": "Alert Rule Action Item Description", "userId": "1"},
			RuleID:   "456",
		}, "event_alert:def456:456"},
		{"error.created.json", formatter.Alert{
			Resource: "error", Action: "created", Title: "ReferenceError: blooopy is not defined",
			Project: "front-end", Org: "test-org", Level: "error", Location: "?(runner)", Message: "blooopy is not defined",
			Link:    "https://sentry.io/organizations/test-org/issues/1170820242/",
			IssueID: "1170820242", EventID: "bb78c1407cea4519aa397afc059c793d",
			Time: time.Date(2019, 8, 19, 20, 58, 37, 391000000, time.UTC),
		}, "error:bb78c1407cea4519aa397afc059c793d"},
		{"issue.created.json", formatter.Alert{
			Resource: "issue", Action: "created", Title: "ReferenceError: blooopy is not defined",
			Project: "front-end", ProjectName: "front-end", Level: "error", Location: "?(runner)",
			Message: "blooopy is not defined", Events: 1, Users: 1, IssueID: "1170820242", ShortID: "FRONT-END-9",
			Link: "https://sentry.example.com/issues/1170820242/",
			Time: time.Date(2019, 8, 19, 20, 58, 37, 391000000, time.UTC),
		}, "issue:1170820242:created"},
		{"issue.assigned.mock.json", formatter.Alert{
			Resource: "issue", Action: "assigned", Title: "Error #1: This is a test error!",
			Project: "ipe", ProjectName: "ipe", Org: "example", Level: "error", Location: "SentryCustomError(frontend/src/util)",
			Message: "This is a test error!", Events: 1, Users: 1, IssueID: "123", ShortID: "IPE-1", Assignee: "Person",
			Link: "https://sentry.example.com/organizations/example/issues/123/",
			Time: time.Date(2022, 4, 4, 18, 17, 18, 320000000, time.UTC),
		}, "issue:123:assigned"},
		{"metric_alert.resolved.json", formatter.Alert{
			Resource: "metric_alert", Action: "resolved", Title: "Resolved: Too many errors", Project: "bar",
			Org: "baz", Level: "resolved", Rule: "Too many errors",
			Message: "1000 events in the last 10 minutes\nFilter: level:error",
			Link:    "https://sentry.io/organizations/baz/alerts/1/", IssueID: "metric:7", RuleID: "7",
			Time: time.Date(2020, 9, 13, 12, 26, 40, 0, time.UTC),
		}, "metric_alert:4:resolved"},
		{"metric_alert.critical.mock.json", formatter.Alert{
			Resource: "metric_alert", Action: "critical", Title: "Critical: metric alert", Org: "example",
			Level: "critical", Rule: "metric alert", Message: "5 events in the last 10 minutes",
			Link: "https://sentry.example.com/organizations/example/alerts/rules/details/456/", IssueID: "metric:456", RuleID: "456",
			Time:     received,
			Settings: map[string]string{"title": "Alert Rule Action Item Title", "description": "Alert Rule Action Item Description", "userId": "1"},
		}, "metric_alert:789:critical"},
		{"legacy_webhook.json", formatter.Alert{
			Resource: "legacy", Action: "triggered", Title: "ReferenceError: hello is not defined",
			Project: "meow", ProjectName: "Meow", Org: "meredith", Level: "error", Location: "?(runner)",
			Rule: "Webhook Test", Message: "hello is not defined",
			Link:    "https://sentry.io/organizations/meredith/issues/1385042923/?referrer=webhooks_plugin",
			IssueID: "1385042923", EventID: "af17d39f6a5d4c19ae5a735043a3bd97",
			Time: time.Date(2019, 12, 19, 17, 58, 19, 836607000, time.UTC),
		}, "legacy:af17d39f6a5d4c19ae5a735043a3bd97"},
		{"legacy_webhook.sentry9.json", formatter.Alert{
			Resource: "legacy", Action: "triggered", Title: "This is an example Python exception",
			Project: "alerta5", ProjectName: "alerta5", Level: "error", Location: "raven.scripts.runner in main",
			Message: "This is an example Python exception",
			Link:    "https://sentry.io/alertaio/alerta5/issues/541485531/", IssueID: "541485531",
			EventID: "0476467adf8f499ea795a48fcc4bf290", Time: time.Date(2018, 5, 2, 8, 7, 10, 0, time.UTC),
		}, "legacy:0476467adf8f499ea795a48fcc4bf290"},
	} {
		t.Run(c.file, func(t *testing.T) {
			w, err := Parse(sentrytest.Resource(c.file), sentrytest.Fixture(t, c.file), opts)
			if err != nil {
				t.Fatal(err)
			}
			got := w.Alert
			got.Tags = nil
			if !equalAlerts(got, c.want) {
				gj, _ := json.MarshalIndent(got, "", "  ")
				wj, _ := json.MarshalIndent(c.want, "", "  ")
				t.Errorf("alert\n%s\nwant\n%s", gj, wj)
			}
			if w.DedupeKey != c.dedup {
				t.Errorf("dedupe key %q, want %q", w.DedupeKey, c.dedup)
			}
		})
	}
}

func equalAlerts(a, b formatter.Alert) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestIssueLink(t *testing.T) {
	for in, want := range map[string]string{
		"https://sentry.io/organizations/o/issues/1/events/abc/":    "https://sentry.io/organizations/o/issues/1/",
		"https://sentry.io/organizations/o/issues/1/events/abc":     "https://sentry.io/organizations/o/issues/1/",
		"https://sentry.io/organizations/o/issues/1/?referrer=x":    "https://sentry.io/organizations/o/issues/1/?referrer=x",
		"https://sentry.example.com/api/0/projects/o/p/events/abc/": "https://sentry.example.com/api/0/projects/o/p/events/abc/",
		"https://o.sentry.io/issues/1/events/latest/?project=2":     "https://o.sentry.io/issues/1/?project=2",
	} {
		if got := issueLink(in); got != want {
			t.Errorf("issueLink(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEventTags(t *testing.T) {
	w, err := Parse("event_alert", sentrytest.Fixture(t, "event_alert.triggered.json"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Alert.Tag("browser"); got != "Chrome 75.0.3770" {
		t.Errorf("tag browser = %q", got)
	}
}

func TestIgnored(t *testing.T) {
	for _, c := range []struct {
		resource, file string
		body           string
	}{
		{resource: "installation", file: "installation.created.json"},
		{resource: "installation", file: "installation.deleted.mock.json"},
		{resource: "comment", file: "comment.created.json"},
		{resource: "seer", file: "seer.root_cause_completed.json"},
		{resource: "seer", file: "seer.pr_created.json"},
		{resource: "size_analysis", body: `{"action":"completed","data":{}}`},
		{resource: "preprod_artifact", body: `{"action":"size_analysis_completed","data":{"buildId":"b"}}`},
		{resource: "preprod_artifact", body: `{}`},
		{resource: "seer", body: `{}`},
		{resource: "something_new", body: `{"action":"x","data":{}}`},
		{resource: "issue", body: `{"action":"merged","data":{"issue":{"id":"1"}}}`},
		{resource: "metric_alert", body: `{"action":"paused","data":{}}`},
	} {
		body := []byte(c.body)
		if c.file != "" {
			body = sentrytest.Fixture(t, c.file)
		}
		w, err := Parse(c.resource, body, opts)
		reason, ok := IsIgnored(err)
		if !ok || reason == "" {
			t.Errorf("%s %s: err = %v, want ignored", c.resource, c.file, err)
		}
		if w.Alert.Resource != c.resource {
			t.Errorf("%s: ignored webhook reports resource %q", c.resource, w.Alert.Resource)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct {
		name, resource, body, want string
	}{
		{"empty", "event_alert", "", "empty body"},
		{"not json", "event_alert", "<html>", "not valid JSON"},
		{"truncated", "", `{"project_slug":"a","event":{`, "not valid JSON"},
		{"array", "issue", `[1,2]`, "expected a JSON object"},
		{"string", "", `"hello"`, "expected a JSON object"},
		{"legacy without event", "", `{"project_slug":"a"}`, "no project_slug and event"},
		{"random json", "", `{"hello":"world"}`, "not a Sentry webhook"},
		{"no data", "event_alert", `{"action":"triggered"}`, "no data object"},
		{"event_alert without event", "event_alert", `{"action":"triggered","data":{}}`, "neither data.event nor data.issue"},
		{"issue without issue", "issue", `{"action":"created","data":{}}`, "no data.issue"},
		{"error without error", "error", `{"action":"created","data":{}}`, "no data.error"},
		{"metric without metric", "metric_alert", `{"action":"critical","data":{}}`, "no data.metric_alert"},
		{"event not object", "event_alert", `{"action":"triggered","data":{"event":"x"}}`, "neither data.event nor data.issue"},
		{"empty event_alert", "event_alert", `{}`, "event_alert webhook has no action"},
		{"empty activity_alert", "activity_alert", `{}`, "activity_alert webhook has no action"},
		{"empty issue", "issue", `{}`, "issue webhook has no action"},
		{"empty metric_alert", "metric_alert", `{}`, "metric_alert webhook has no action"},
		{"empty error", "error", `{"data":{"error":{"event_id":"e"}}}`, "error webhook has no action"},
		{"activity without data", "activity_alert", `{"action":"triggered"}`, "no data object"},
	} {
		_, err := Parse(c.resource, []byte(c.body), opts)
		var inv *InvalidError
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		} else if !asInvalid(err, &inv) {
			t.Errorf("%s: err %T is not an InvalidError", c.name, err)
		}
	}
}

func asInvalid(err error, target **InvalidError) bool {
	e, ok := err.(*InvalidError)
	*target = e
	return ok
}

func TestLenientTypes(t *testing.T) {
	// Numbers where strings were, strings where numbers were, nulls
	// everywhere: what Sentry versions have sent.
	body := `{"action":"created","data":{"issue":{"id":1170820242,"title":"T","count":"12","userCount":"3",
		"level":null,"culprit":null,"project":{"slug":"p","name":null},"metadata":{"value":5},"lastSeen":null}}}`
	w, err := Parse("issue", []byte(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	a := w.Alert
	if a.IssueID != "1170820242" || a.Events != 12 || a.Users != 3 || a.Project != "p" || a.Message != "5" {
		t.Errorf("alert %+v", a)
	}
	// A wrong type deep inside the event must not lose the event.
	body = `{"action":"triggered","data":{"triggered_rule":"r","event":{"event_id":"e1","title":"T",
		"exception":{"values":"oops"},"tags":{"environment":"prod"},"threads":5,"metadata":[1],"stacktrace":"x"}}}`
	w, err = Parse("event_alert", []byte(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	if w.Alert.Title != "T" || w.Alert.Environment != "prod" || w.DedupeKey != "event_alert:e1:" {
		t.Errorf("alert %+v key %q", w.Alert, w.DedupeKey)
	}
}

func TestLocationFromFrames(t *testing.T) {
	mk := func(ex string) string {
		return `{"action":"created","data":{"error":{"event_id":"e","title":"T",` + ex + `}}}`
	}
	for _, c := range []struct{ name, event, want string }{
		{"culprit wins", `"culprit":"views.index","exception":{"values":[{"stacktrace":{"frames":[{"filename":"a.py","lineno":1,"in_app":true}]}}]}`, "views.index"},
		{"last in-app frame of last exception", `"exception":{"values":[
			{"stacktrace":{"frames":[{"filename":"first.py","lineno":9,"in_app":true}]}},
			{"stacktrace":{"frames":[{"filename":"app/a.py","lineno":3,"function":"f","in_app":true},{"filename":"app/b.py","lineno":7,"function":"g","in_app":true},{"filename":"lib/c.py","lineno":1,"in_app":false}]}}]}`, "app/b.py:7 in g"},
		{"no in-app frame: last frame", `"exception":{"values":[{"stacktrace":{"frames":[{"filename":"x.js","lineno":1},{"abs_path":"https://x/y.js","lineno":2,"in_app":null}]}}]}`, "https://x/y.js:2"},
		{"module when no file", `"exception":{"values":[{"stacktrace":{"frames":[{"module":"pkg.mod","function":"run","in_app":true}]}}]}`, "pkg.mod in run"},
		{"bare stacktrace", `"stacktrace":{"frames":[{"filename":"main.go","lineno":42,"function":"main","in_app":true}]}`, "main.go:42 in main"},
		{"crashed thread", `"threads":{"values":[{"crashed":false,"stacktrace":{"frames":[{"filename":"idle.c"}]}},{"crashed":true,"stacktrace":{"frames":[{"filename":"crash.c","lineno":5,"in_app":true}]}}]}`, "crash.c:5"},
		{"metadata filename", `"metadata":{"filename":"/runner"}`, "/runner"},
	} {
		w, err := Parse("error", []byte(mk(c.event)), opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if w.Alert.Location != c.want {
			t.Errorf("%s: location %q, want %q", c.name, w.Alert.Location, c.want)
		}
	}
}

func TestEventAlertWithIssue(t *testing.T) {
	// The newer event_alert form sends data.issue (camelCase) instead of data.event.
	body := `{"action":"triggered","data":{"triggered_rule":"Seer","issue":{"id":"42","shortId":"WEB-1",
		"title":"Slow DB","level":"warning","webUrl":"https://sentry.io/organizations/acme/issues/42/",
		"project":{"slug":"web","name":"Web"},"lastSeen":"2026-06-01T00:00:00Z"}}}`
	w, err := Parse("event_alert", []byte(body), opts)
	if err != nil {
		t.Fatal(err)
	}
	a := w.Alert
	if a.Title != "Slow DB" || a.Project != "web" || a.Org != "acme" || a.Rule != "Seer" || a.Link != "https://sentry.io/organizations/acme/issues/42/" || a.Level != "warning" {
		t.Errorf("alert %+v", a)
	}
	if w.DedupeKey != "event_alert:issue:42::2026-06-01T00:00:00Z" {
		t.Errorf("dedupe key %q", w.DedupeKey)
	}
}

func TestDedupeWithoutIDsUsesBody(t *testing.T) {
	body := []byte(`{"action":"critical","data":{"metric_alert":{"title":"m"}}}`)
	a, _ := Parse("metric_alert", body, opts)
	b, _ := Parse("metric_alert", body, opts)
	c, _ := Parse("metric_alert", []byte(`{"action":"critical","data":{"metric_alert":{"title":"n"}}}`), opts)
	if a.DedupeKey == "" || a.DedupeKey != b.DedupeKey || a.DedupeKey == c.DedupeKey {
		t.Errorf("keys %q %q %q", a.DedupeKey, b.DedupeKey, c.DedupeKey)
	}
}

func TestHostileFieldsAreBounded(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	body, _ := json.Marshal(map[string]any{
		"action": "triggered",
		"data": map[string]any{
			"triggered_rule": huge,
			"event": map[string]any{
				"event_id": "e", "title": huge, "culprit": huge, "environment": huge, "release": huge,
				"message": huge, "web_url": "javascript:alert(1)",
				"tags": func() [][]string {
					var t [][]string
					for range 1000 {
						t = append(t, []string{huge[:500], huge[:500]})
					}
					return t
				}(),
			},
		},
	})
	w, err := Parse("event_alert", body, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(w.Alert)
	if len(raw) > 16<<10 {
		t.Errorf("stored alert is %d bytes", len(raw))
	}
	if w.Alert.Link != "" {
		t.Errorf("unsafe link kept: %q", w.Alert.Link)
	}
}

func TestGuessResource(t *testing.T) {
	for _, name := range sentrytest.Fixtures() {
		if strings.HasPrefix(name, "alert_rule_action") || strings.HasPrefix(name, "integration_schema") {
			continue
		}
		want := sentrytest.Resource(name)
		if want == "" {
			want = ResourceLegacy
		}
		if got := GuessResource(sentrytest.Fixture(t, name)); got != want {
			t.Errorf("%s: guessed %q, want %q", name, got, want)
		}
	}
}

// TestGoldenCards renders every fixture that makes a card, in both
// languages, and compares with testdata/golden. Run with -update after a
// deliberate change and review the diff like code.
func TestGoldenCards(t *testing.T) {
	zone, _ := time.LoadLocation("Asia/Shanghai")
	var items []formatter.Item
	for _, name := range sentrytest.Fixtures() {
		w, err := Parse(sentrytest.Resource(name), sentrytest.Fixture(t, name), opts)
		if _, ok := IsIgnored(err); ok {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := formatter.Mentions{Mobiles: []string{"13800000000"}}
		items = append(items, formatter.Item{Alert: w.Alert, Mentions: m})
		for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
			r := &formatter.Renderer{Language: lang, Keyword: "Sentry", Zone: zone}
			msg, err := r.Card(w.Alert, m)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(name, ".json")+"."+lang, msg)
		}
	}
	msg, covered := (&formatter.Renderer{Keyword: "Sentry", Zone: zone}).Digest(items, false)
	if len(covered) != len(items) {
		t.Errorf("digest of the fixtures covers %d of %d", len(covered), len(items))
	}
	golden(t, "digest.zh-CN", msg)
}

func golden(t *testing.T, name string, msg formatter.Message) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(msg); err != nil {
		t.Fatal(err)
	}
	// The markdown text, readable, next to the JSON that is sent.
	buf.WriteString("\n--- text ---\n" + msg.Text() + "\n")
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got ---\n%s", path, buf.String())
	}
}
