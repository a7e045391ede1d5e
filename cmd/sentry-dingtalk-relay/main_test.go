package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

const (
	tok1 = "1111111111111111111111111111111111111111111111111111111111111111"
	tok2 = "2222222222222222222222222222222222222222222222222222222222222222"
	tok3 = "3333333333333333333333333333333333333333333333333333333333333333"
	tok4 = "4444444444444444444444444444444444444444444444444444444444444444"
	sec1 = "SEC1111111111111111111111111111111111111111111111111111111111111111"
	sec2 = "SEC2222222222222222222222222222222222222222222222222222222222222222"
)

func runCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "sentry-dingtalk-relay ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

func TestServeRefusesBadConfigInOneLine(t *testing.T) {
	code, _, errOut := runCmd(t, []string{"DINGTALK_TOKENS=" + tok1 + "\n" + tok2, "DINGTALK_SECRETS=" + sec1 + "\nabc"}, "serve")
	want := "sentry-dingtalk-relay: DINGTALK_SECRETS line 2: \"abc\" is not a SEC secret (it starts with SEC; use - for a robot without one)\n"
	if code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
}

func TestRender(t *testing.T) {
	code, out, _ := runCmd(t, []string{"DINGTALK_KEYWORD=Sentry", "RELAY_LANGUAGE=en"}, "render", sentrytest.File(t, "event_alert.triggered.json"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var msg struct {
		MsgType  string `json:"msgtype"`
		Markdown struct{ Title, Text string }
	}
	if err := json.Unmarshal([]byte(out), &msg); err != nil {
		t.Fatalf("render output is not the DingTalk JSON: %v\n%s", err, out)
	}
	if msg.MsgType != "markdown" || msg.Markdown.Title != "【Sentry】[front-end] ReferenceError: heck is not defined" || !strings.Contains(msg.Markdown.Text, "Very Important Alert Rule!") {
		t.Errorf("rendered %+v", msg)
	}
	// The resource is guessed: legacy and metric payloads render too.
	for _, f := range []string{"legacy_webhook.json", "metric_alert.resolved.json", "issue.assigned.mock.json"} {
		if code, out, errOut := runCmd(t, nil, "render", sentrytest.File(t, f)); code != 0 || !strings.Contains(out, `"msgtype": "markdown"`) {
			t.Errorf("%s: exit %d %s %s", f, code, out, errOut)
		}
	}
	if code, _, errOut := runCmd(t, nil, "render", sentrytest.File(t, "installation.created.json")); code != 1 || !strings.Contains(errOut, "produces no card") {
		t.Errorf("installation: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, nil, "render", "--resource", "issue", sentrytest.File(t, "metric_alert.resolved.json")); code != 1 || !strings.Contains(errOut, "no data.issue") {
		t.Errorf("forced wrong resource: exit %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, nil, "render"); code != 1 {
		t.Errorf("render without a file: exit %d", code)
	}
}

func TestRenderWithTemplateAndRoutes(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "card.tmpl")
	os.WriteFile(tmpl, []byte(`{{define "title"}}{{.Alert.Project}} {{.Action}}{{end}}{{define "text"}}## {{.Emoji}} {{escape .Alert.Title}} at {{time .Alert.Time}}{{end}}`), 0o600)
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte("robots:\n  web: {token: "+tok2+", keyword: WEB}\nroutes:\n  - name: fe\n    match: {projects: [front-end]}\n    robots: [web]\n    mentions: {mobiles: ['13900000000']}\n  - name: rest\n    robots: [robot-1]\n"), 0o600)
	env := []string{"DINGTALK_TOKENS=" + tok1, "RELAY_ROUTES_FILE=" + routes, "RELAY_TIMEZONE=UTC"}
	code, out, errOut := runCmd(t, env, "render", "--template", tmpl, sentrytest.File(t, "event_alert.triggered.json"))
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	if !strings.Contains(errOut, "# robot web") || !strings.Contains(out, `"title": "【WEB】front-end 告警"`) ||
		!strings.Contains(out, "at 2019-08-19 21:06:17 UTC") || !strings.Contains(out, "@13900000000") {
		t.Errorf("stdout %s\nstderr %s", out, errOut)
	}
	// A broken template fails with its line.
	os.WriteFile(tmpl, []byte("{{define \"title\"}}x{{end}}\n{{define \"text\"}}{{.Alert.Bogus}}{{end}}"), 0o600)
	code, _, errOut = runCmd(t, env, "render", "--template", tmpl, sentrytest.File(t, "event_alert.triggered.json"))
	if code != 1 || !strings.Contains(errOut, "card.tmpl:2") {
		t.Errorf("broken template: exit %d %q", code, errOut)
	}
}

func TestSchema(t *testing.T) {
	code, out, _ := runCmd(t, nil, "schema", "--webhook-url", "https://relay.example.com/dingtalk/sentry/webhook")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Elements []struct {
			Type, Title string
			Settings    struct {
				Type, URI, Description string
				RequiredFields         []map[string]string `json:"required_fields"`
				OptionalFields         []map[string]string `json:"optional_fields"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	// What Sentry's schema validator requires of an alert-rule-action.
	e := doc.Elements[0]
	s := e.Settings
	if len(doc.Elements) != 1 || e.Type != "alert-rule-action" || e.Title == "" || s.Type != "alert-rule-settings" ||
		s.URI != "/dingtalk/sentry/alert-rule-action" || len(s.Description) == 0 || len(s.Description) > 140 || len(s.RequiredFields) == 0 {
		t.Fatalf("schema %+v", doc)
	}
	route := s.RequiredFields[0]
	if route["type"] != "select" || route["name"] != "route" || route["uri"] != "/dingtalk/sentry/options/routes" || route["label"] == "" {
		t.Errorf("route field %+v", route)
	}
	if m := s.OptionalFields[0]; m["type"] != "text" || m["name"] != "mentions" {
		t.Errorf("mentions field %+v", m)
	}
	if code, _, errOut := runCmd(t, nil, "schema", "--webhook-url", "https://x/other"); code != 1 || !strings.Contains(errOut, "/sentry/webhook") {
		t.Errorf("bad webhook URL: %d %q", code, errOut)
	}
}

func TestTestCommand(t *testing.T) {
	dt := dingtalktest.New(
		dingtalktest.Robot{Token: tok1, Secret: sec1},
		dingtalktest.Robot{Token: tok2, Secret: sec2},
		dingtalktest.Robot{Token: tok3, Keyword: "告警机器人"},
	)
	ts := dt.Start(t)
	env := []string{
		"DINGTALK_API_URL=" + ts.URL + "/robot/send",
		// robot-2 has robot-1's secret; robot-3 lacks its keyword; robot-4 does not exist.
		"DINGTALK_TOKENS=" + strings.Join([]string{tok1, tok2, tok3, tok4}, "\n"),
		"DINGTALK_SECRETS=" + sec1 + "\n" + sec1 + "\n-\n-",
	}
	code, out, _ := runCmd(t, env, "test")
	if code != 1 {
		t.Errorf("exit %d with failing robots", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"robot-1      …1111  ok",
		"robot-2      …2222  FAILED  errcode 310000",
		"fix: DINGTALK_SECRETS line 2 does not belong to DINGTALK_TOKENS line 2",
		"robot-3      …3333  FAILED  errcode 310000: keywords not in content",
		"fix: the robot requires a custom keyword: set DINGTALK_KEYWORD",
		"robot-4      …4444  FAILED  errcode 300001: token is not exist",
		"fix: token does not exist: was the robot removed?",
		"3 of 4 robots failed",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], w)
		}
	}
	for _, s := range []string{tok1, tok2, sec1, sec2} {
		if strings.Contains(out, s) {
			t.Error("test output leaks a token or secret")
		}
	}
	if n := len(dt.Messages(tok1)); n != 1 {
		t.Errorf("robot-1 received %d test messages", n)
	}
	// All fine: exit 0.
	code, out, _ = runCmd(t, []string{"DINGTALK_API_URL=" + ts.URL + "/robot/send", "DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=" + sec1}, "test")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("healthy robot: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, nil, "test"); code != 1 || !strings.Contains(errOut, "no robots configured") {
		t.Errorf("no robots: %d %q", code, errOut)
	}
}

// fakeSentry is a Sentry ingest endpoint that checks what the SDK posts.
type fakeSentry struct {
	mu     sync.Mutex
	events []map[string]any
	auth   []string
	paths  []string
	status int
	// onEvent, when set, sees each event after it was answered (an alert
	// rule firing).
	onEvent func(ev map[string]any)
}

// envelopeEvents decodes the events of a Sentry envelope: a header line,
// then items, each a header line and a payload of the header's length (or
// up to the next line break when it has none).
func envelopeEvents(raw []byte) []map[string]any {
	var events []map[string]any
	_, rest, _ := bytes.Cut(raw, []byte("\n"))
	for len(rest) > 0 {
		var header []byte
		header, rest, _ = bytes.Cut(rest, []byte("\n"))
		var item struct {
			Type   string
			Length *int
		}
		if json.Unmarshal(header, &item) != nil {
			break
		}
		var payload []byte
		if item.Length != nil && *item.Length <= len(rest) {
			payload, rest = rest[:*item.Length], bytes.TrimPrefix(rest[*item.Length:], []byte("\n"))
		} else {
			payload, rest, _ = bytes.Cut(rest, []byte("\n"))
		}
		if item.Type == "event" {
			var ev map[string]any
			if json.Unmarshal(payload, &ev) == nil {
				events = append(events, ev)
			}
		}
	}
	return events
}

func (f *fakeSentry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = gz
	}
	raw, _ := io.ReadAll(body)
	events := envelopeEvents(raw)
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("X-Sentry-Auth")+"|"+r.URL.RawQuery)
	f.events = append(f.events, events...)
	status, onEvent := f.status, f.onEvent
	f.mu.Unlock()
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	w.Write([]byte(`{"id":"x"}`))
	if onEvent != nil && status == 200 {
		for _, ev := range events {
			go onEvent(ev)
		}
	}
}

func (f *fakeSentry) snapshot() ([]map[string]any, []string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any{}, f.events...), append([]string{}, f.auth...), append([]string{}, f.paths...)
}

func TestSmoke(t *testing.T) {
	fs := &fakeSentry{}
	ts := httptest.NewServer(fs)
	defer ts.Close()
	dsn := strings.Replace(ts.URL, "http://", "http://publickey123@", 1) + "/42"
	code, out, errOut := runCmd(t, nil, "smoke", "--dsn", dsn)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	events, auth, paths := fs.snapshot()
	if len(events) != 1 || paths[0] != "/api/42/envelope/" {
		t.Fatalf("ingest saw %d events at %v", len(events), paths)
	}
	if !strings.Contains(auth[0], "sentry_key=publickey123") {
		t.Errorf("auth %q", auth[0])
	}
	ev := events[0]
	msg, _ := ev["message"].(string)
	if !strings.HasPrefix(msg, "sentry-dingtalk-relay smoke test ") || ev["level"] != "error" || ev["environment"] != "smoke" {
		t.Errorf("event %v", ev)
	}
	for _, want := range []string{"event id: " + ev["event_id"].(string), "look for this title in DingTalk: " + msg, "/api/42/store/", "sentry_key=publickey123", "curl", "Send to DingTalk with these"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Sentry refusing the key is reported, with its answer.
	fs.status = 401
	if code, _, errOut := runCmd(t, nil, "smoke", "--dsn", dsn); code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("refused: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, nil, "smoke"); code != 1 || !strings.Contains(errOut, "--dsn") {
		t.Errorf("without --dsn: %d %q", code, errOut)
	}
}

func TestSelfReportingIsRateLimitedAndTagged(t *testing.T) {
	fs := &fakeSentry{}
	ts := httptest.NewServer(fs)
	defer ts.Close()
	rep, err := newReporter(strings.Replace(ts.URL, "http://", "http://k@", 1)+"/7", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sentry.CurrentHub().BindClient(nil)
	for i := range 20 {
		rep.logger.Error("sending failed", "robot", "robot-1", "attempt", i)
	}
	rep.logger.Info("not reported")
	// A panicking handler is reported through the middleware, then answered 500 by the relay.
	h := rep.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() { recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}()
	rep.flush()
	time.Sleep(100 * time.Millisecond)
	events, _, _ := fs.snapshot()
	if len(events) != reportBurst {
		t.Fatalf("%d events reported, want the burst of %d", len(events), reportBurst)
	}
	tags, _ := events[0]["tags"].(map[string]any)
	if tags[selfTag] != "true" || tags["component"] != "sentry-dingtalk-relay" {
		t.Errorf("tags %v", tags)
	}
	if events[0]["message"] != "sending failed" {
		t.Errorf("message %v", events[0]["message"])
	}
}

func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte("robots:\n  ops: {token: "+tok2+", secret: SECopsopsopsops, keyword: Sentry, fallback: [wx]}\n  wx: {type: wecom, key: wecom-key-0123-5aaa}\nroutes:\n  - name: payments\n    match: {projects: [payments], levels: [error, fatal]}\n    robots: [ops]\n    mentions: {mobiles: ['13900000000']}\n"), 0o600)
	env := []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_AT_MOBILES=13800000000", "RELAY_ROUTES_FILE=" + routes}
	code, out, errOut := runCmd(t, env, "config")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	for _, want := range []string{
		"robot-1        dingtalk …" + tok1[len(tok1)-4:] + ", not signed",
		"ops            dingtalk …" + tok2[len(tok2)-4:] + ", signed, keyword Sentry, fallback wx",
		"wx             wecom …5aaa",
		"payments       project payments, level error|fatal -> ops, mentioning 13900000000",
		// The robots of DINGTALK_TOKENS take what the routes file does not.
		"default        every alert -> robot-1, mentioning 13800000000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{tok1, tok2, "SECopsopsopsops", "wecom-key-0123"} {
		if strings.Contains(out, secret) {
			t.Errorf("config output shows a secret:\n%s", out)
		}
	}
	os.WriteFile(routes, []byte("robots:\n  ops: {token: "+tok2+"}\nroutes:\n  - name: all\n    robots: [ops]\n"), 0o600)
	if _, out, _ := runCmd(t, env, "config"); !strings.Contains(out, "robots no route uses: robot-1") || !strings.Contains(out, "warning: no route sends to robot-1") {
		t.Errorf("unused robot not named:\n%s", out)
	}
	if code, _, errOut := runCmd(t, []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=nope"}, "config"); code != 1 || !strings.Contains(errOut, "DINGTALK_SECRETS line 1") {
		t.Errorf("invalid config: exit %d %q", code, errOut)
	}
}
