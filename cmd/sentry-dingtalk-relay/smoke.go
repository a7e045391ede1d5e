package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
)

// smoke sends a uniquely titled error event to Sentry with the SDK's own
// transport, so a user can watch it travel Sentry -> alert rule -> relay ->
// DingTalk. It prints what to look for and the same test as a curl command.
func smoke(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dsn := fs.String("dsn", "", "DSN of the Sentry project whose alert notifies the relay (required)")
	env := fs.String("environment", "smoke", "environment of the event")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for Sentry")
	if err := fs.Parse(args); err != nil {
		return errSilent
	}
	if *dsn == "" {
		return errors.New("smoke needs --dsn: the DSN of the project whose alert sends to the relay (Project Settings > Client Keys)")
	}
	parsed, err := sentry.NewDsn(*dsn)
	if err != nil {
		return fmt.Errorf("--dsn: %w", err)
	}
	id := newSmokeID()
	title := "sentry-dingtalk-relay smoke test " + id
	rec := &recordingTransport{next: http.DefaultTransport}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn: *dsn, Environment: *env, Release: "sentry-dingtalk-relay@" + version,
		Transport: sentry.NewHTTPSyncTransport(), HTTPTransport: rec,
	})
	if err != nil {
		return fmt.Errorf("--dsn: %w", err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	hub.Scope().SetTag("relay", "smoke")
	ev := sentry.NewEvent()
	ev.Level = sentry.LevelError
	ev.Message = title
	ev.Fingerprint = []string{"sentry-dingtalk-relay-smoke", id}
	eventID := hub.CaptureEvent(ev)
	client.Flush(*timeout)
	status, body, sendErr := rec.result()
	switch {
	case sendErr != nil:
		return fmt.Errorf("sending to Sentry failed: %w", sendErr)
	case status == 0:
		return errors.New("the event was not sent: is the DSN's project rate-limited or the event filtered?")
	case status != http.StatusOK:
		return fmt.Errorf("the Sentry server answered HTTP %d: %s", status, strings.TrimSpace(body))
	}
	fmt.Fprintf(stdout, "event sent to %s (project %s)\n", parsed.GetHost(), parsed.GetProjectID())
	if eventID != nil {
		fmt.Fprintf(stdout, "event id: %s\n", *eventID)
	}
	fmt.Fprintf(stdout, "look for this title in DingTalk: %s\n", title)
	fmt.Fprintf(stdout, "(the project needs an alert (Automation) \"A new issue is created\" whose action is the relay's integration: \"Send to DingTalk with these...\" once its schema is installed, \"Send a notification via <integration>\" otherwise; or a legacy webhook)\n\n")
	fmt.Fprintf(stdout, "the same test with curl (a new unique message, so it makes a new issue):\n%s\n", curlCommand(parsed))
	return nil
}

func newSmokeID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// curlCommand sends an event to the store endpoint, the oldest and simplest
// ingestion API.
func curlCommand(d *sentry.Dsn) string {
	base := d.GetScheme() + "://" + d.GetHost()
	if p := d.GetPort(); p != 0 && !(p == 443 && d.GetScheme() == "https") && !(p == 80 && d.GetScheme() == "http") {
		base += fmt.Sprintf(":%d", p)
	}
	base += strings.TrimRight(d.GetPath(), "/")
	id := newSmokeID()
	return fmt.Sprintf(`EID=$(cat /proc/sys/kernel/random/uuid | tr -d -)
curl -sS '%s/api/%s/store/' \
  -H 'Content-Type: application/json' \
  -H 'X-Sentry-Auth: Sentry sentry_version=7, sentry_client=sentry-dingtalk-relay-smoke/1.0, sentry_key=%s' \
  -d '{"event_id":"'$EID'","timestamp":'$(date +%%s)',"platform":"other","level":"error","message":"sentry-dingtalk-relay smoke test %s '$EID'","environment":"smoke","tags":{"relay":"smoke"}}'`,
		base, d.GetProjectID(), d.GetPublicKey(), id)
}

// recordingTransport remembers Sentry's answer, which the SDK only logs.
type recordingTransport struct {
	next   http.RoundTripper
	mu     sync.Mutex
	status int
	body   string
	err    error
}

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.err = err
		return nil, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	t.status, t.body = resp.StatusCode, string(b)
	return resp, nil
}

func (t *recordingTransport) result() (int, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.body, t.err
}
