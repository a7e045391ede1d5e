package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/admin"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

const (
	tokA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tokB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	secretA = "SECaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// running is a relay serving on loopback in front of a DingTalk double.
type running struct {
	url    string
	dt     *dingtalktest.Server
	dir    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// receivers is the receiver table of robots (a dry run when there are
// none), as the relay's configuration makes it.
func receivers(robots []dingtalk.Robot, log *slog.Logger) []dispatch.Receiver {
	base := formatter.Renderer{Language: formatter.LangEN}
	if len(robots) == 0 {
		return []dispatch.Receiver{relay.DryRun(log, base, nil)}
	}
	client := &dingtalk.Client{HTTP: notify.NewHTTPClient()}
	var out []dispatch.Receiver
	for _, r := range robots {
		if r.Keyword == "" {
			r.Keyword = "Sentry"
		}
		out = append(out, dispatch.Receiver{Name: r.Name, Type: "dingtalk", Key: queue.RobotKey(r.Token),
			Rate: ratelimit.Rate{PerMinute: 18}, Receiver: dingtalk.NewReceiver(r, base, client)})
	}
	return out
}

// newRelay builds a relay on a bbolt store in dir.
func newRelay(t *testing.T, dir string, rcvs []dispatch.Receiver, routes []route.Route, log *slog.Logger) *relay.Relay {
	t.Helper()
	var r *relay.Relay
	store, err := queue.OpenBolt(dir, queue.BoltOptions{DedupeWindow: 30 * time.Minute, Notify: func(key string) { r.Wake(key) }})
	if err != nil {
		t.Fatal(err)
	}
	r, err = relay.New(relay.Options{
		DataDir: dir, MaxBodyBytes: 1 << 20, MaxAge: 24 * time.Hour, ShutdownTimeout: 5 * time.Second,
		Receivers: rcvs, Routes: routes, Log: log,
		Storage: relay.Storage{Store: store, Limiter: ratelimit.NewWindow(ratelimit.Period, nil)},
	})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	return r
}

func start(t *testing.T, dir string, robots []dingtalk.Robot, routes []route.Route) *running {
	t.Helper()
	dt := dingtalktest.New(dingtalktest.Robot{Token: tokA, Secret: secretA, Keyword: "Sentry"}, dingtalktest.Robot{Token: tokB})
	ts := dt.Start(t)
	for i := range robots {
		if robots[i].URL == "" {
			robots[i].URL = ts.URL + "/robot/send"
		}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if len(robots) == 0 {
		for i := range routes {
			routes[i].Robots = []string{relay.DryRunName}
		}
	}
	r := newRelay(t, dir, receivers(robots, log), routes, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{url: "http://" + ln.Addr().String(), dt: dt, dir: dir, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() { rr.stop(t) })
	waitFor(t, "the admin socket", func() bool {
		_, err := admin.Dial(dir)
		return err == nil
	})
	return rr
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("relay did not stop")
	}
}

func envRobots() []dingtalk.Robot {
	return []dingtalk.Robot{
		{Name: "robot-1", Token: tokA, Secret: secretA},
		{Name: "robot-2", Token: tokB},
	}
}

func defaultRoute() []route.Route {
	return []route.Route{{Name: "default", Robots: []string{"robot-1", "robot-2"}, Mentions: route.Mentions{Mobiles: []string{"13800000000"}}}}
}

func post(t *testing.T, url, resource, file string) int {
	t.Helper()
	req := sentrytest.Request(url+"/sentry/webhook", resource, "", sentrytest.Fixture(t, file))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	r := start(t, t.TempDir(), envRobots(), defaultRoute())
	for _, c := range []struct{ resource, file string }{
		{"event_alert", "event_alert.triggered.json"},
		{"", "legacy_webhook.json"},
	} {
		if status := post(t, r.url, c.resource, c.file); status != http.StatusAccepted {
			t.Fatalf("%s: %d", c.file, status)
		}
	}
	waitFor(t, "both alerts at both robots", func() bool {
		return r.dt.Count("ReferenceError: heck") == 2 && r.dt.Count("ReferenceError: hello") == 2
	})
	for _, tok := range []string{tokA, tokB} {
		for _, m := range r.dt.Messages(tok) {
			if !strings.Contains(m.Title, "【Sentry】") || len(m.Pinged) != 1 {
				t.Errorf("message %q pinged %v", m.Title, m.Pinged)
			}
		}
	}
	if status, body := get(t, r.url+"/healthz"); status != 200 || body != "ok\n" {
		t.Errorf("healthz %d %q", status, body)
	}
	if status, _ := get(t, r.url+"/readyz"); status != 200 {
		t.Errorf("readyz %d", status)
	}
	_, metrics := get(t, r.url+"/metrics")
	for _, want := range []string{
		`sentry_dingtalk_relay_webhooks_received_total{action="triggered",outcome="queued",resource="event_alert"} 1`,
		`sentry_dingtalk_relay_webhooks_received_total{action="triggered",outcome="queued",resource="legacy"} 1`,
		`sentry_dingtalk_relay_sends_total{outcome="ok",robot="robot-1",type="dingtalk"}`,
		`sentry_dingtalk_relay_queue_depth{robot="robot-2"} 0`,
		`sentry_dingtalk_relay_delivery_latency_seconds_count`,
		`sentry_dingtalk_relay_build_info`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{tokA, tokB, secretA} {
		if strings.Contains(metrics, secret) || strings.Contains(r.logs.String(), secret) {
			t.Errorf("a token or secret appears in the metrics or logs")
		}
	}
}

func TestDryRunWithoutRobots(t *testing.T) {
	r := start(t, t.TempDir(), nil, []route.Route{{Name: "default", Mentions: route.Mentions{Mobiles: []string{"13800000000"}}}})
	if status := post(t, r.url, "issue", "issue.created.json"); status != 202 {
		t.Fatalf("%d", status)
	}
	waitFor(t, "the card in the log", func() bool {
		return strings.Contains(r.logs.String(), "dry run") && strings.Contains(r.logs.String(), "blooopy is not defined")
	})
	if !strings.Contains(r.logs.String(), `@13800000000`) {
		t.Errorf("dry-run card lacks the mention: %s", r.logs.String())
	}
}

func TestRestartDeliversQueuedAlerts(t *testing.T) {
	dir := t.TempDir()
	// DingTalk refuses robot-2 (unknown token) at first: its alerts wait.
	robots := envRobots()
	robots[1].Token = "cccccccccccccccccccccccccccccccc"
	r := start(t, dir, robots, defaultRoute())
	post(t, r.url, "issue", "issue.created.json")
	waitFor(t, "robot-1 delivered", func() bool { return r.dt.Count("blooopy") == 1 })
	r.stop(t)

	// The token was wrong; the user fixes it. The queued delivery belonged
	// to the old robot, so it becomes a dead letter...
	r2 := start(t, dir, envRobots(), defaultRoute())
	if !strings.Contains(r2.logs.String(), "no longer configured") {
		t.Errorf("orphaned deliveries not reported: %s", r2.logs.String())
	}
	// ...which deadletters replay sends to the fixed robot, through the admin socket.
	c, err := admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Reason != "robot no longer configured" || !strings.Contains(list[0].Robot, "not configured") {
		t.Fatalf("dead letters %+v (%v)", list, err)
	}
	if _, err := c.Replay(context.Background(), admin.ReplayRequest{All: true}); err == nil || !strings.Contains(err.Error(), "--robot") {
		t.Errorf("replay to a gone robot: %v", err)
	}
	res, err := c.Replay(context.Background(), admin.ReplayRequest{All: true, Robot: "robot-2"})
	if err != nil || res.Replayed != 1 || fmt.Sprint(res.Robots) != "[robot-2]" {
		t.Fatalf("replay: %+v %v", res, err)
	}
	waitFor(t, "replayed alert delivered", func() bool { return len(r2.dt.Messages(tokB)) == 1 })
}

func TestRoutesSplitAlertsBetweenGroups(t *testing.T) {
	routes := []route.Route{
		{Name: "frontend", Match: &route.Match{Projects: []string{"front-end"}}, Robots: []string{"robot-2"},
			Mentions: route.Mentions{Mobiles: []string{"13900000000"}, Levels: []string{"fatal"}}},
		{Name: "rest", Robots: []string{"robot-1"}, Mentions: route.Mentions{Mobiles: []string{"13800000000"}}},
	}
	// Two groups, two DingTalk doubles.
	frontend := dingtalktest.New(dingtalktest.Robot{Token: tokB})
	robots := envRobots()
	robots[1].URL = frontend.Start(t).URL + "/robot/send"
	r := start(t, t.TempDir(), robots, routes)
	post(t, r.url, "event_alert", "event_alert.triggered.json") // front-end, error
	post(t, r.url, "", "legacy_webhook.json")                   // meow
	waitFor(t, "a message in each group", func() bool {
		return len(r.dt.Messages("")) == 1 && len(frontend.Messages("")) == 1
	})
	a, b := r.dt.Messages(tokA), frontend.Messages(tokB)
	if len(a) != 1 || !strings.Contains(a[0].Text, "hello is not defined") || fmt.Sprint(a[0].Pinged) != "[13800000000]" {
		t.Errorf("robot-1 got %+v", a)
	}
	// front-end alerts go to robot-2, without mentions: the level is error, not fatal.
	if len(b) != 1 || !strings.Contains(b[0].Text, "heck is not defined") || len(b[0].Pinged) != 0 || b[0].AtMobile != nil {
		t.Errorf("robot-2 got %+v", b)
	}
}

// TestCountersExistFromTheStart: increase() over a series that appears at
// its first event misses that event, so every counter worth alerting on is
// there, at 0, for every robot before anything happens.
func TestCountersExistFromTheStart(t *testing.T) {
	r := start(t, t.TempDir(), envRobots(), defaultRoute())
	_, metrics := get(t, r.url+"/metrics")
	for _, want := range []string{
		`sentry_dingtalk_relay_dead_letters_total{reason="expired",robot="robot-1"} 0`,
		`sentry_dingtalk_relay_dead_letters_total{reason="content",robot="robot-2"} 0`,
		`sentry_dingtalk_relay_rate_limited_total{robot="robot-2"} 0`,
		`sentry_dingtalk_relay_digest_alerts_total{robot="robot-1"} 0`,
		`sentry_dingtalk_relay_sends_total{outcome="config",robot="robot-1",type="dingtalk"} 0`,
		`sentry_dingtalk_relay_sends_total{outcome="rate_limited",robot="robot-2",type="dingtalk"} 0`,
		`sentry_dingtalk_relay_webhooks_received_total{action="triggered",outcome="store_error",resource="event_alert"} 0`,
		`sentry_dingtalk_relay_webhooks_received_total{action="triggered",outcome="no_route",resource="activity_alert"} 0`,
		`sentry_dingtalk_relay_webhooks_received_total{action="triggered",outcome="queued",resource="legacy"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
