package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue/redistest"
)

// TestRedisReplicas: two relay processes on one Redis share the budget and
// the queue. A storm split between them is delivered with no 130101 and
// at most the budget per minute per robot; one relay killed mid-storm
// leaves the rest to the other; a Redis killed and restarted loses nothing
// (alerts accepted meanwhile are spooled).
func TestRedisReplicas(t *testing.T) {
	rs := redistest.Start(t)
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1, Secret: sec1}, dingtalktest.Robot{Token: tok2})
	ts := dt.Start(t)
	env := []string{
		"RELAY_REDIS_URL=" + rs.URL(0), "DINGTALK_API_URL=" + ts.URL + "/robot/send",
		"DINGTALK_TOKENS=" + tok1 + "\n" + tok2, "DINGTALK_SECRETS=" + sec1 + "\n-",
	}
	a := startRelay(t, t.TempDir(), env...)
	b := startRelay(t, t.TempDir(), env...)

	const n = 300
	// DingTalk fails during the first half: the relays read entries and
	// keep them unacknowledged while they retry.
	dt.FaultShare(notifytest.FaultBadGateway, 1)
	for i := range n {
		target := a
		if i%2 == 1 || i >= n/2 {
			target = b
		}
		if i == n/2 {
			// Mid-storm, holding leases and unacknowledged entries: b must
			// take over both once the lease lapses and the entries idle.
			a.kill()
			dt.FaultShare(0, 0)
		}
		if status, answer := target.post(t, "/sentry/webhook", legacyAlert(i), ""); status != 202 {
			t.Fatalf("alert %d: %d %v", i, status, answer)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitDelivered(t, dt, 0, n, 2*time.Minute, b)

	// Redis dies: b keeps accepting (spooled) and says so; nothing is lost
	// once Redis is back.
	rs.Kill()
	for i := n; i < n+20; i++ {
		if status, answer := b.post(t, "/sentry/webhook", legacyAlert(i), ""); status != 202 {
			t.Fatalf("alert %d with Redis down: %d %v", i, status, answer)
		}
	}
	time.Sleep(1100 * time.Millisecond) // readiness is checked at most once a second
	resp, err := http.Get("http://" + b.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "degraded") {
		t.Errorf("readyz with Redis down: %d %q", resp.StatusCode, body)
	}
	rs.Restart()
	waitDelivered(t, dt, n, n+20, time.Minute, b)

	if c := dt.Replies(130101); c != 0 {
		t.Errorf("%d answers were 130101", c)
	}
	for _, tok := range []string{tok1, tok2} {
		if max := dt.MaxInWindow(tok, time.Minute); max > 18 {
			t.Errorf("robot …%s: %d messages in one minute across both relays", tok[60:], max)
		}
	}
}

// waitDelivered waits until alerts [from, to) reached both robots.
func waitDelivered(t *testing.T, dt *dingtalktest.Server, from, to int, limit time.Duration, p *process) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		missing := 0
		for _, tok := range []string{tok1, tok2} {
			msgs := dt.Messages(tok)
			for i := from; i < to; i++ {
				marker := fmt.Sprintf("crash-%05d:", i)
				got := 0
				for _, m := range msgs {
					got += dingtalktest.CountIn(m.Text, marker)
				}
				if got == 0 {
					missing++
				}
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries of alerts %d..%d missing after %v: %s\n%s", missing, from, to-1, limit, dt, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
