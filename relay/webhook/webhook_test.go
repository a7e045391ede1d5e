package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/webhook"
)

const secret = "c1ient-s3cret"

type fixture struct {
	srv     *httptest.Server
	store   *queue.Bolt
	metrics *metrics.Metrics
	handler *webhook.Handler
}

func newFixture(t *testing.T, clientSecret, token string) *fixture {
	t.Helper()
	var secrets []string
	if clientSecret != "" {
		secrets = strings.Split(clientSecret, "\n")
	}
	store, err := queue.OpenBolt(t.TempDir(), queue.BoltOptions{DedupeWindow: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, metrics: metrics.New(prometheus.NewRegistry())}
	router := route.New([]route.Route{
		{Name: "payments", Match: &route.Match{Projects: []string{"payments"}}, Robots: []string{"ops"}},
		{Name: "default", Robots: []string{"web"}},
	})
	h := &webhook.Handler{
		ClientSecrets: secrets, Token: token, MaxBody: 64 << 10, SentryURL: "https://sentry.example.com",
		Queue: store, Router: router, Metrics: f.metrics,
	}
	f.handler = h
	ra := &webhook.RuleAction{ClientSecrets: secrets, Router: router}
	mux := chi.NewRouter()
	mux.Post("/sentry/webhook", h.ServeHTTP)
	mux.Post("/sentry/webhook/{route}", h.ServeHTTP)
	mux.Post("/sentry/alert-rule-action", ra.Save)
	mux.Get("/sentry/options/routes", ra.Options)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { f.srv.Close(); store.Close() })
	return f
}

func sign(body []byte) string { return sentrytest.Sign(secret, body) }

func load(t *testing.T, name string) []byte { return sentrytest.Fixture(t, name) }

type answer struct {
	status int
	body   map[string]string
	header http.Header
}

func (f *fixture) post(t *testing.T, path string, body []byte, headers map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer is not a JSON object: %q", raw)
	}
	return a
}

func TestIntegrationWebhooks(t *testing.T) {
	f := newFixture(t, secret, "")
	for _, c := range []struct {
		name, resource, file string
		status               int
		want                 string
	}{
		{"event alert", "event_alert", "event_alert.triggered.json", 202, "queued"},
		{"issue created", "issue", "issue.created.json", 202, "queued"},
		{"metric alert", "metric_alert", "metric_alert.resolved.json", 202, "queued"},
		{"error", "error", "error.created.json", 202, "queued"},
		{"installation", "installation", "installation.created.json", 200, "ignored"},
		{"comment", "comment", "comment.created.json", 200, "ignored"},
		{"seer", "seer", "seer.pr_created.json", 200, "ignored"},
		{"unknown resource", "something_new", "installation.created.json", 200, "ignored"},
		{"duplicate", "event_alert", "event_alert.triggered.json", 200, "ignored"},
	} {
		body := load(t, c.file)
		a := f.post(t, "/sentry/webhook", body, map[string]string{"Sentry-Hook-Resource": c.resource, "Sentry-Hook-Signature": sign(body)})
		if a.status != c.status || a.body["status"] != c.want {
			t.Errorf("%s: %d %v, want %d %s", c.name, a.status, a.body, c.status, c.want)
		}
		if c.status == 202 && len(a.body["id"]) != 32 {
			t.Errorf("%s: id %q", c.name, a.body["id"])
		}
		if c.status == 200 && a.body["reason"] == "" {
			t.Errorf("%s: ignored without a reason", c.name)
		}
	}
	f.store.Sync(context.Background())
	if got := f.store.Depth(context.Background(), "web"); got != 4 {
		t.Errorf("%d alerts queued for web, want 4", got)
	}
	if got := testutil.ToFloat64(f.metrics.WebhooksReceived.WithLabelValues("event_alert", "triggered", "duplicate")); got != 1 {
		t.Errorf("duplicate metric = %v", got)
	}
	if got := testutil.ToFloat64(f.metrics.WebhooksReceived.WithLabelValues("unknown", "created", "ignored")); got != 1 {
		t.Errorf("unknown resource metric = %v", got)
	}
	if got := testutil.ToFloat64(f.metrics.WebhooksReceived.WithLabelValues("installation", "created", "ignored")); got != 1 {
		t.Errorf("installation metric = %v", got)
	}
}

func TestSignatures(t *testing.T) {
	f := newFixture(t, secret, "")
	body := load(t, "issue.created.json")
	for _, c := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"hook signature", map[string]string{"Sentry-Hook-Signature": sign(body)}, 202},
		{"app signature", map[string]string{"Sentry-App-Signature": sign(body)}, 200}, // same issue: duplicate
		{"missing", nil, 401},
		{"wrong", map[string]string{"Sentry-Hook-Signature": sign([]byte("other"))}, 401},
		{"not hex", map[string]string{"Sentry-Hook-Signature": "zz"}, 401},
		{"sha256= prefix", map[string]string{"Sentry-Hook-Signature": "sha256=" + sign(body)}, 401},
	} {
		h := map[string]string{"Sentry-Hook-Resource": "issue"}
		for k, v := range c.headers {
			h[k] = v
		}
		if a := f.post(t, "/sentry/webhook", body, h); a.status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, a.status, a.body, c.status)
		}
	}
	// The signature covers the exact bytes: re-encoded JSON with the same
	// content does not pass.
	var v any
	json.Unmarshal(body, &v)
	reencoded, _ := json.Marshal(v)
	if a := f.post(t, "/sentry/webhook", reencoded, map[string]string{"Sentry-Hook-Resource": "issue", "Sentry-Hook-Signature": sign(body)}); a.status != 401 {
		t.Errorf("signature of other bytes accepted: %d", a.status)
	}
}

func TestLegacyToken(t *testing.T) {
	f := newFixture(t, secret, "legacy-token")
	body := load(t, "legacy_webhook.json")
	if a := f.post(t, "/sentry/webhook", body, nil); a.status != 401 {
		t.Errorf("without token: %d", a.status)
	}
	if a := f.post(t, "/sentry/webhook?token=wrong", body, nil); a.status != 401 {
		t.Errorf("wrong token: %d", a.status)
	}
	if a := f.post(t, "/sentry/webhook?token=legacy-token", body, nil); a.status != 202 {
		t.Errorf("right token: %d %v", a.status, a.body)
	}
	// A Sentry 9 payload is accepted the same way.
	if a := f.post(t, "/sentry/webhook?token=legacy-token", load(t, "legacy_webhook.sentry9.json"), nil); a.status != 202 {
		t.Errorf("sentry 9 payload: %d %v", a.status, a.body)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, "", "")
	for _, c := range []struct {
		name     string
		body     []byte
		resource string
		status   int
		want     string
	}{
		{"not json", []byte("<xml/>"), "", 400, "not valid JSON"},
		{"empty", nil, "event_alert", 400, "empty body"},
		{"not sentry", []byte(`{"hello":"world"}`), "", 400, "not a Sentry webhook"},
		{"missing data", []byte(`{"action":"triggered"}`), "event_alert", 400, "no data object"},
		{"empty object", []byte(`{}`), "event_alert", 400, "event_alert webhook has no action"},
		{"empty object, issue", []byte(`{}`), "issue", 400, "issue webhook has no action"},
		{"too big", bytes.Repeat([]byte("x"), 65<<10), "event_alert", 413, "RELAY_MAX_BODY_BYTES"},
	} {
		a := f.post(t, "/sentry/webhook", c.body, map[string]string{"Sentry-Hook-Resource": c.resource})
		if a.status != c.status || !strings.Contains(a.body["error"], c.want) {
			t.Errorf("%s: %d %v, want %d %q", c.name, a.status, a.body, c.status, c.want)
		}
		if a.header.Get("Sentry-Hook-Error") == "" {
			t.Errorf("%s: no Sentry-Hook-Error header", c.name)
		}
	}
	// A chunked body over the limit (no Content-Length) is refused too.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/sentry/webhook", io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("x", 70<<10)), strings.NewReader(`"}`)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	f.store.Sync(context.Background())
	if f.store.Depth(context.Background(), "web") != 0 {
		t.Error("bad input was queued")
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t, "", "")
	payments := []byte(`{"action":"created","data":{"issue":{"id":"1","title":"card declined","project":{"slug":"payments"}}}}`)
	if a := f.post(t, "/sentry/webhook", payments, map[string]string{"Sentry-Hook-Resource": "issue"}); a.status != 202 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	f.store.Sync(context.Background())
	if f.store.Depth(context.Background(), "ops") != 1 || f.store.Depth(context.Background(), "web") != 0 {
		t.Errorf("payments alert: ops %d web %d", f.store.Depth(context.Background(), "ops"), f.store.Depth(context.Background(), "web"))
	}
	// Forced onto a route by the URL.
	other := []byte(`{"action":"created","data":{"issue":{"id":"2","title":"x","project":{"slug":"web"}}}}`)
	if a := f.post(t, "/sentry/webhook/payments", other, map[string]string{"Sentry-Hook-Resource": "issue"}); a.status != 202 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	f.store.Sync(context.Background())
	if f.store.Depth(context.Background(), "ops") != 2 {
		t.Errorf("forced route not used: ops %d", f.store.Depth(context.Background(), "ops"))
	}
	a := f.post(t, "/sentry/webhook/ghost", other, map[string]string{"Sentry-Hook-Resource": "issue"})
	if a.status != 404 || !strings.Contains(a.body["error"], `unknown route "ghost"`) {
		t.Errorf("unknown route: %d %v", a.status, a.body)
	}
	// A route chosen in the Sentry rule that no longer exists falls back
	// to the match rules instead of losing the alert.
	gone := []byte(`{"action":"triggered","data":{"triggered_rule":"r","issue_alert":{"settings":[{"name":"route","value":"ghost"}]},"event":{"event_id":"e9","title":"T"}}}`)
	if a := f.post(t, "/sentry/webhook", gone, map[string]string{"Sentry-Hook-Resource": "event_alert"}); a.status != 202 {
		t.Errorf("alert with a stale route setting: %d %v", a.status, a.body)
	}
}

func TestRouteChosenInSentryRule(t *testing.T) {
	f := newFixture(t, "", "")
	// An issue alert whose rule picked the "payments" route for a web project...
	event := []byte(`{"action":"triggered","data":{"triggered_rule":"r","event":{"event_id":"e1","title":"T",
		"url":"https://s/api/0/projects/acme/web/events/e1/"},
		"issue_alert":{"settings":[{"name":"route","value":"payments"},{"name":"mentions","value":"13700000000"}]}}}`)
	// ...and a metric alert whose critical trigger action picked it too.
	metric := []byte(`{"action":"critical","data":{"metric_alert":{"id":"9","projects":["web"],"alert_rule":{"name":"m",
		"triggers":[{"label":"critical","actions":[{"type":"sentry_app","settings":[{"name":"route","value":"payments"}]}]}]}}}}`)
	for _, c := range []struct {
		resource string
		body     []byte
	}{{"event_alert", event}, {"metric_alert", metric}} {
		if a := f.post(t, "/sentry/webhook", c.body, map[string]string{"Sentry-Hook-Resource": c.resource}); a.status != 202 {
			t.Fatalf("%s: %d %v", c.resource, a.status, a.body)
		}
	}
	f.store.Sync(context.Background())
	if f.store.Depth(context.Background(), "ops") != 2 || f.store.Depth(context.Background(), "web") != 0 {
		t.Fatalf("ops %d web %d: the rules' route settings were not used", f.store.Depth(context.Background(), "ops"), f.store.Depth(context.Background(), "web"))
	}
	ds, _ := f.store.Pending(context.Background(), "ops", 10)
	if got := ds[0].Mentions.Mobiles; len(got) != 1 || got[0] != "13700000000" {
		t.Errorf("mentions from the rule: %v", got)
	}
}

func TestStoreFailureAnswers503(t *testing.T) {
	f := newFixture(t, "", "")
	f.store.Close()
	a := f.post(t, "/sentry/webhook", load(t, "legacy_webhook.json"), nil)
	if a.status != 503 || !strings.Contains(a.body["error"], "could not store") {
		t.Errorf("%d %v", a.status, a.body)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestRuleActionSave(t *testing.T) {
	f := newFixture(t, secret, "")
	for _, c := range []struct {
		name   string
		body   string
		signed bool
		status int
		want   string
	}{
		{"valid", `{"fields":[{"name":"route","value":"payments"},{"name":"mentions","value":"13800000000, +1-2025550123"}],"installationId":"x"}`, true, 200, `DingTalk route "payments"`},
		{"no route chosen", `{"fields":[],"installationId":"x"}`, true, 200, "match"},
		{"unknown route", `{"fields":[{"name":"route","value":"ghost"}],"installationId":"x"}`, true, 400, `unknown DingTalk route "ghost"; choose one of: payments, default`},
		{"bad mobile", `{"fields":[{"name":"route","value":"default"},{"name":"mentions","value":"13800000000,bob"}]}`, true, 400, `"bob" is not a mobile number`},
		{"unsigned", `{"fields":[{"name":"route","value":"payments"}]}`, false, 401, "Sentry-App-Signature"},
		{"not json", `fields=1`, true, 400, "not a Sentry alert-rule-action body"},
	} {
		h := map[string]string{}
		if c.signed {
			h["Sentry-App-Signature"] = sign([]byte(c.body))
		}
		a := f.post(t, "/sentry/alert-rule-action", []byte(c.body), h)
		if a.status != c.status || !strings.Contains(a.body["message"], c.want) {
			t.Errorf("%s: %d %v, want %d %q", c.name, a.status, a.body, c.status, c.want)
		}
	}
	// The shared fixture from Sentry's example app: no route field, other fields ignored.
	body := load(t, "alert_rule_action.request.mock.json")
	if a := f.post(t, "/sentry/alert-rule-action", body, map[string]string{"Sentry-App-Signature": sign(body)}); a.status != 200 {
		t.Errorf("example request: %d %v", a.status, a.body)
	}
}

func TestRouteOptions(t *testing.T) {
	f := newFixture(t, secret, "")
	get := func(query string, signed bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/sentry/options/routes?installationId=x"+query, nil)
		if signed {
			req.Header.Set("Sentry-App-Signature", sign(nil))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if status, body := get("", true); status != 200 || body != `[{"label":"payments","value":"payments"},{"label":"default","value":"default"}]` {
		t.Errorf("options: %d %s", status, body)
	}
	if status, body := get("&query=pay", true); status != 200 || body != `[{"label":"payments","value":"payments"}]` {
		t.Errorf("filtered options: %d %s", status, body)
	}
	if status, _ := get("", false); status != 401 {
		t.Errorf("unsigned options request: %d", status)
	}
}

func TestSeveralClientSecrets(t *testing.T) {
	f := newFixture(t, "secret-of-sentry-io\n"+secret, "")
	body := load(t, "issue.created.json")
	for _, c := range []struct {
		name, key string
		want      int
	}{{"first integration", "secret-of-sentry-io", 202}, {"second integration", secret, 200}, {"neither", "someone-else", 401}} {
		name := c.name
		a := f.post(t, "/sentry/webhook", body, map[string]string{"Sentry-Hook-Resource": "issue", "Sentry-Hook-Signature": sentrytest.Sign(c.key, body)})
		// The second post of the same body is a duplicate: 200, but authentic.
		if a.status != c.want {
			t.Errorf("%s: %d %v, want %d", name, a.status, a.body, c.want)
		}
	}
}

// TestNoRouteIsLoggedAndCounted: an alert no route takes is answered 200
// ignored, and neither silently nor as if it were a comment webhook.
func TestNoRouteIsLoggedAndCounted(t *testing.T) {
	var logs bytes.Buffer
	store, err := queue.OpenBolt(t.TempDir(), queue.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := metrics.New(prometheus.NewRegistry())
	h := &webhook.Handler{MaxBody: 1 << 20, Queue: store, Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Router: route.New([]route.Route{{Name: "p", Match: &route.Match{Projects: []string{"payments"}}, Robots: []string{"ops"}}})}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := range 5 {
		body := fmt.Sprintf(`{"action":"created","data":{"issue":{"id":"%d","title":"card declined","project":{"slug":"web"}}}}`, i)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Sentry-Hook-Resource", "issue")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	if got := testutil.ToFloat64(m.WebhooksReceived.WithLabelValues("issue", "created", "no_route")); got != 5 {
		t.Errorf("no_route = %v, want 5", got)
	}
	if n := strings.Count(logs.String(), "no route matches this alert"); n != 1 {
		t.Errorf("%d warnings for 5 unrouted alerts of one project, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "project=web") || !strings.Contains(logs.String(), `title="card declined"`) {
		t.Errorf("the warning does not say what was dropped:\n%s", logs.String())
	}
}

type tooLarge struct{}

func (tooLarge) Enqueue(context.Context, queue.Submission) (bool, error) {
	return false, fmt.Errorf("store: %w", queue.ErrTooLarge)
}

func TestStoreRefusingTheSizeIs413(t *testing.T) {
	h := &webhook.Handler{MaxBody: 1 << 20, Queue: tooLarge{}, Router: route.New([]route.Route{{Name: "d", Robots: []string{"x"}}})}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/sentry/webhook", bytes.NewReader(load(t, "issue.created.json")))
	req.Header.Set("Sentry-Hook-Resource", "issue")
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "too large") {
		t.Errorf("%d %s", rec.Code, rec.Body.String())
	}
}

type canary struct{ seen []string }

func (c *canary) Observe(a formatter.Alert, _ time.Time) bool {
	c.seen = append(c.seen, a.Resource+"."+a.Action)
	return a.EventID == "canary-event"
}

func TestWatchersSeeEveryAuthenticWebhook(t *testing.T) {
	f := newFixture(t, "", "")
	w := &canary{}
	f.handler.Watchers = []webhook.Watcher{w}
	own := []byte(`{"action":"created","data":{"error":{"event_id":"canary-event","title":"sentry-dingtalk-relay canary 1"}}}`)
	if a := f.post(t, "/sentry/webhook", own, map[string]string{"Sentry-Hook-Resource": "error"}); a.status != 200 || !strings.Contains(a.body["reason"], "canary") {
		t.Errorf("the canary's own webhook: %d %v, want it consumed", a.status, a.body)
	}
	f.post(t, "/sentry/webhook", load(t, "comment.created.json"), map[string]string{"Sentry-Hook-Resource": "comment"})
	if fmt.Sprint(w.seen) != "[error.created comment.created]" {
		t.Errorf("watchers saw %v", w.seen)
	}
	f.store.Sync(context.Background())
	if f.store.Depth(context.Background(), "web") != 0 {
		t.Error("the canary's webhook was queued as a card")
	}
}
