package main

import (
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

// TestCanaryRoundTrip runs the relay with a canary against a fake Sentry
// whose "alert rule" posts the event back as an event_alert webhook: the
// round trip succeeds and shows nothing. When Sentry swallows the event, a
// warning card goes to the default route's robot; when it fires again, one
// recovery card.
func TestCanaryRoundTrip(t *testing.T) {
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	dtServer := dt.Start(t)
	var relayAddr atomic.Value
	var firing atomic.Bool
	firing.Store(true)
	fs := &fakeSentry{}
	fs.onEvent = func(ev map[string]any) {
		if !firing.Load() {
			return
		}
		body, _ := json.Marshal(map[string]any{"action": "triggered", "data": map[string]any{
			"triggered_rule": "canary", "event": map[string]any{"event_id": ev["event_id"], "title": ev["message"], "level": "error"}}})
		p := &process{addr: relayAddr.Load().(string)}
		p.post(t, "/sentry/webhook", body, "event_alert")
	}
	ingest := httptest.NewServer(fs)
	defer ingest.Close()
	dsn := strings.Replace(ingest.URL, "http://", "http://canarykey1234@", 1) + "/7"
	dir := t.TempDir()
	env := []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_API_URL=" + dtServer.URL + "/robot/send", "RELAY_LANGUAGE=en",
		"RELAY_CANARY_DSN=" + dsn, "RELAY_CANARY_INTERVAL=3s", "RELAY_CANARY_TIMEOUT=2s", "RELAY_DATA_DIR=" + dir}
	addr := freeAddr(t)
	relayAddr.Store(addr)
	p := startRelayAt(t, dir, addr, env...)
	waitUntil(t, 10*time.Second, "a successful round trip", func() bool {
		_, m := p.get(t, "/metrics")
		return strings.Contains(m, "canary_round_trip_seconds_count 1") || strings.Contains(m, "canary_round_trip_seconds_count 2")
	})
	cmd := exec.Command(binary, "canary")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ok: Sentry sent the canary's webhook back") {
		t.Errorf("canary command: %v %s", err, out)
	}
	if n := len(dt.Messages("")); n != 0 {
		t.Fatalf("the canary's own webhook became %d cards", n)
	}

	firing.Store(false)
	waitUntil(t, 15*time.Second, "the warning card", func() bool { return dt.Count("Sentry canary failed") >= 1 })
	cmd = exec.Command(binary, "canary")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "FAILED") {
		t.Errorf("canary command while Sentry swallows the event: %v %s", err, out)
	}
	firing.Store(true)
	waitUntil(t, 15*time.Second, "the recovery card", func() bool { return dt.Count("Sentry canary works again") == 1 })
	warnings := dt.Count("Sentry canary failed")
	// Two more intervals of a working canary: nothing more is said.
	time.Sleep(7 * time.Second)
	if dt.Count("Sentry canary failed") != warnings || dt.Count("Sentry canary works again") != 1 {
		t.Errorf("after the recovery: %d warnings (was %d), %d recoveries", dt.Count("Sentry canary failed"), warnings, dt.Count("Sentry canary works again"))
	}
	if _, m := p.get(t, "/metrics"); !strings.Contains(m, `canary_failures_total{reason="timeout"}`) {
		t.Error("canary failures not counted")
	}
}

// TestQuietWatch: no webhook for RELAY_QUIET_ALERT, one warning; webhooks
// again, one recovery.
func TestQuietWatch(t *testing.T) {
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	ts := dt.Start(t)
	p := startRelay(t, t.TempDir(), "DINGTALK_TOKENS="+tok1, "DINGTALK_API_URL="+ts.URL+"/robot/send", "RELAY_LANGUAGE=en", "RELAY_QUIET_ALERT=2s")
	waitUntil(t, 10*time.Second, "the quiet warning", func() bool { return dt.Count("No Sentry webhook for") == 1 })
	p.post(t, "/sentry/webhook", issueAlert("1", "web"), "issue")
	waitUntil(t, 10*time.Second, "the recovery", func() bool { return dt.Count("Sentry webhooks are arriving again") == 1 })
}
