package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu/feishutest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom/wecomtest"
)

// byHost sends each request to the double of its host.
type byHost map[string]http.RoundTripper

func (b byHost) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt, ok := b[r.URL.Host]; ok {
		return rt.RoundTrip(r)
	}
	return nil, fmt.Errorf("no double for %s", r.URL.Host)
}

const (
	wecomKey    = "1f2e3d4c-5b6a-4978-8877-665544332211"
	feishuToken = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

// TestChannelsEndToEnd runs the relay as `serve` builds it, from a routes
// file with a DingTalk robot, a WeCom robot and a Feishu bot, on virtual
// time: one alert reaches all three; a storm of 300 alerts to the WeCom
// robot stays under its 20 a minute and loses none; the DingTalk robot
// refused for longer than RELAY_FALLBACK_AFTER sends its alerts to its
// fallback once, and delivers them itself, once, when it recovers.
func TestChannelsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte(`robots:
  ops:
    token: `+tok2+`
    fallback: [wc]
  wc:
    type: wecom
    key: `+wecomKey+`
    api_url: http://wecom.test/cgi-bin/webhook/send
  fb:
    type: feishu
    url: http://feishu.test/open-apis/bot/v2/hook/`+feishuToken+`
routes:
  - name: storm
    match: {projects: [storm]}
    robots: [wc]
  - name: payments
    match: {projects: [payments]}
    robots: [ops]
  - name: all
    robots: [ops, wc, fb]
`), 0o600)
	synctest.Test(t, func(t *testing.T) {
		dt := dingtalktest.New(dingtalktest.Robot{Token: tok2})
		wc := wecomtest.New(wecomKey)
		fb := feishutest.New(feishutest.Bot{Token: feishuToken})
		cfg, err := config.Load([]string{"RELAY_ROUTES_FILE=" + routes, "RELAY_DATA_DIR=" + filepath.Join(dir, "data"),
			"DINGTALK_API_URL=http://dingtalk.test/robot/send", "RELAY_FALLBACK_AFTER=5s", "RELAY_LANGUAGE=en"})
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.DiscardHandler)
		rt, err := newSetup(cfg, log, setupOptions{Transport: byHost{"dingtalk.test": dt.Transport(), "wecom.test": wc.Transport(), "feishu.test": fb.Transport()}})
		if err != nil {
			t.Fatal(err)
		}
		var r *relay.Relay
		storage, err := openStore(cfg, log, func(key string) { r.Wake(key) }, createStore)
		if err != nil {
			t.Fatal(err)
		}
		r, err = relay.New(relay.Options{MaxBodyBytes: 1 << 20, MaxAge: cfg.MaxAge, FallbackAfter: cfg.FallbackAfter,
			Receivers: rt.receivers, Routes: rt.routes, Storage: storage, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Deliver(ctx); close(done) }()
		defer func() { stop(); <-done; storage.Store.Close() }()
		post := func(id, project string) {
			t.Helper()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/sentry/webhook", strings.NewReader(string(issueAlert(id, project))))
			req.Header.Set("Sentry-Hook-Resource", "issue")
			r.Handler().ServeHTTP(rec, req)
			if rec.Code != 202 {
				t.Fatalf("webhook %s: %d %s", id, rec.Code, rec.Body)
			}
		}

		post("1", "web")
		time.Sleep(time.Second)
		synctest.Wait()
		if len(dt.Messages("")) != 1 || len(wc.Messages()) != 1 || len(fb.Messages()) != 1 {
			t.Fatalf("one alert to three receivers: dingtalk %d, wecom %d, feishu %d", len(dt.Messages("")), len(wc.Messages()), len(fb.Messages()))
		}

		// The storm comes over five minutes, as storms do: the relay sends
		// whenever the robot's budget allows.
		for i := range 300 {
			post(strconv.Itoa(1000+i), "storm")
			time.Sleep(time.Second)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if got := wc.MaxInWindow(wecomKey, time.Minute); got > 20 || wc.Replies(45009) != 0 {
			t.Errorf("the WeCom robot got %d messages in a minute and throttled %d times: its limit is 20", got, wc.Replies(45009))
		}
		carried := map[string]int{}
		for _, m := range wc.Messages() {
			for _, id := range issueLine.FindAllStringSubmatch(m.Content, -1) {
				n := 1
				if id[2] != "" {
					n, _ = strconv.Atoi(id[2])
				}
				carried[id[1]] += n
			}
		}
		for i := range 300 {
			if id := strconv.Itoa(1000 + i); carried[id] != 1 {
				t.Fatalf("storm alert %s reached the WeCom robot %d times, want once", id, carried[id])
			}
		}

		var refusals []dingtalktest.Reply
		for range 3 {
			refusals = append(refusals, dingtalktest.Reply{ErrCode: 310000, ErrMsg: "sign not match"})
		}
		dt.Script(tok2, refusals...)
		before := len(wc.Messages())
		post("77", "payments")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		var fallback []string
		for _, m := range wc.Messages()[before:] {
			fallback = append(fallback, m.Content)
		}
		if len(fallback) != 1 || !strings.Contains(fallback[0], "issue 77") || !strings.Contains(fallback[0], "errcode 310000 sign not match since") {
			t.Fatalf("the fallback got %q, want issue 77 once, with the reason", fallback)
		}
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		if n := dt.Count("issue 77"); n != 1 {
			t.Errorf("the recovered robot delivered issue 77 %d times, want once", n)
		}
		if n := len(wc.Messages()) - before; n != 1 {
			t.Errorf("the fallback got %d messages, want 1", n)
		}
	})
}

// issueLine finds "issue N" in a card or a digest line, with its ×N.
var issueLine = regexp.MustCompile(`issue (\d+)(?:[^\n×]*×(\d+))?`)
