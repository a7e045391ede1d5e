package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sentrygo "github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
)

// syncBuffer is a log destination several goroutines may write.
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

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// newTestCanary makes a canary that sends through in's in-memory transport
// (for synctest bubbles), in English.
func newTestCanary(t *testing.T, in *ingest, ann Announcer, interval, timeout time.Duration) (*Canary, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	log, buf := testLogger()
	c, err := NewCanary(CanaryConfig{
		DSN: testDSN("http://sentry.test"), Interval: interval, Timeout: timeout,
		Language: formatter.LangEN, Transport: in.transport(), Log: log, Registerer: reg,
	}, ann)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, buf
}

// verdicts records what Observe said of the webhooks a test's ingest sent.
type verdicts struct {
	mu  sync.Mutex
	got []bool
}

func (v *verdicts) add(b bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.got = append(v.got, b)
}

func (v *verdicts) all() []bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.got)
}

// fireAfter makes the ingest send each event's webhook after delay, as
// Sentry's workers and Automation would, and records what Observe said.
func fireAfter(t *testing.T, in *ingest, c *Canary, resource string, delay time.Duration, v *verdicts) {
	in.set(0, func(ev sentEvent) {
		a := webhook(t, resource, ev)
		go func() {
			time.Sleep(delay)
			v.add(c.Observe(a))
		}()
	})
}

func TestRoundTripAgainstIngest(t *testing.T) {
	for _, resource := range []string{"event_alert", "issue"} {
		t.Run(resource, func(t *testing.T) {
			in := &ingest{}
			var c *Canary
			var v verdicts
			in.set(0, func(ev sentEvent) {
				// The webhook arrives while the SDK still waits for the
				// ingest's answer: the round must already be listening.
				v.add(c.Observe(webhook(t, resource, ev)))
			})
			srv := httptest.NewServer(in)
			defer srv.Close()
			ann := &announcer{}
			reg := prometheus.NewRegistry()
			var err error
			c, err = NewCanary(CanaryConfig{DSN: testDSN(srv.URL), Timeout: 10 * time.Second, Registerer: reg}, ann)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			took, err := c.RoundTrip(t.Context())
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if took < 0 || took > time.Since(before) {
				t.Errorf("took %v", took)
			}
			if got := v.all(); !slices.Equal(got, []bool{true}) {
				t.Errorf("Observe said %v, want the webhook consumed", got)
			}
			if cards := ann.got(); len(cards) != 0 {
				t.Errorf("announced %v after a working round trip", cards)
			}
			sent := in.sent()
			if len(sent) != 1 {
				t.Fatalf("ingest took %d events", len(sent))
			}
			ev := sent[0]
			if ev.Message != TitlePrefix+ev.EventID || ev.Level != "error" || ev.Tags["relay"] != "canary" ||
				!slices.Contains(ev.Fingerprint, ev.EventID) {
				t.Errorf("event %+v", ev)
			}
			if got := testutil.ToFloat64(c.lastSuccess); got < float64(before.Unix()) {
				t.Errorf("last success %v", got)
			}
			if n := testutil.CollectAndCount(c.roundTrip); n != 1 {
				t.Errorf("%d round trip series", n)
			}
			for _, reason := range []string{ReasonSend, ReasonTimeout} {
				if got := testutil.ToFloat64(c.failures.WithLabelValues(reason)); got != 0 {
					t.Errorf("failures{%s} = %v", reason, got)
				}
			}
			// A second round makes a new issue: its own title and fingerprint.
			if _, err := c.RoundTrip(t.Context()); err != nil {
				t.Fatal(err)
			}
			if sent := in.sent(); len(sent) != 2 || sent[1].EventID == ev.EventID || sent[1].Message == ev.Message {
				t.Errorf("second round's event is not unique: %+v", sent)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	closed := httptest.NewServer(&ingest{})
	closed.Close()
	for _, tc := range []struct {
		name   string
		status int
		dsn    func(url string) string
		want   string
	}{
		{"ingest 500", 500, testDSN, "Sentry answered HTTP 500"},
		{"ingest 429", 429, testDSN, "Sentry answered HTTP 429"},
		{"wrong key", 0, func(url string) string {
			return strings.Replace(testDSN(url), testPublicKey, "0000000000000000000000000000dead", 1)
		}, "Sentry answered HTTP 401"},
		{"refused", 0, func(string) string { return testDSN(closed.URL) }, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &ingest{}
			in.set(tc.status, nil)
			srv := httptest.NewServer(in)
			defer srv.Close()
			ann := &announcer{}
			log, logs := testLogger()
			c, err := NewCanary(CanaryConfig{
				DSN: tc.dsn(srv.URL), Timeout: 10 * time.Second, Language: formatter.LangEN, Log: log,
				Registerer: prometheus.NewRegistry(),
			}, ann)
			if err != nil {
				t.Fatal(err)
			}
			_, err1 := c.RoundTrip(t.Context())
			_, err2 := c.RoundTrip(t.Context())
			for _, err := range []error{err1, err2} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
			}
			if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonSend)); got != 2 {
				t.Errorf("failures{send} = %v", got)
			}
			if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonTimeout)); got != 0 {
				t.Errorf("failures{timeout} = %v", got)
			}
			if got := testutil.ToFloat64(c.lastSuccess); got != 0 {
				t.Errorf("last success %v", got)
			}
			cards := ann.got()
			if len(cards) != 1 {
				t.Fatalf("%d cards, want one warning for two failures within the interval", len(cards))
			}
			a := cards[0].alert
			if a.Resource != "relay" || a.Action != "canary_failed" || a.Level != "warning" ||
				a.Title != "Sentry canary failed: the event could not be sent" ||
				!strings.Contains(a.Message, tc.want) || !strings.Contains(a.Message, "wrong DSN") {
				t.Errorf("warning %+v", a)
			}
			for what, text := range map[string]string{"error": err1.Error(), "log": logs.String(), "card": a.Title + a.Message} {
				for _, key := range []string{testSecretKey, testPublicKey} {
					if strings.Contains(text, key) {
						t.Errorf("%s shows a DSN key: %s", what, text)
					}
				}
			}
		})
	}
}

// dropCanary makes a global event processor drop canary events, as an
// application's own processor could.
var dropCanary atomic.Bool

func init() {
	sentrygo.AddGlobalEventProcessor(func(ev *sentrygo.Event, _ *sentrygo.EventHint) *sentrygo.Event {
		if dropCanary.Load() && strings.HasPrefix(ev.Message, TitlePrefix) {
			return nil
		}
		return ev
	})
}

func TestSDKDropsTheEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dropCanary.Store(true)
		defer dropCanary.Store(false)
		in := &ingest{}
		ann := &announcer{}
		c, _, _ := newTestCanary(t, in, ann, time.Hour, time.Minute)
		_, err := c.RoundTrip(t.Context())
		if err == nil || !strings.Contains(err.Error(), "the SDK did not send the event") {
			t.Errorf("error %v", err)
		}
		if n := len(in.sent()); n != 0 {
			t.Errorf("ingest got %d events", n)
		}
		if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonSend)); got != 1 {
			t.Errorf("failures{send} = %v", got)
		}
		if cards := ann.got(); len(cards) != 1 || cards[0].alert.Action != "canary_failed" {
			t.Errorf("cards %+v", cards)
		}
	})
}

// TestIngestHangs: a send gives up with the SDK's own timeout, well before
// a long round trip timeout, and at once when the relay stops.
func TestIngestHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		c, err := NewCanary(CanaryConfig{DSN: testDSN("http://sentry.test"), Timeout: 15 * time.Minute, Transport: hang}, &announcer{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.RoundTrip(t.Context())
		if err == nil || !strings.Contains(err.Error(), "no answer from Sentry in time") {
			t.Errorf("error %v", err)
		}
		if took := time.Since(start); took != 30*time.Second {
			t.Errorf("gave up after %v, want the SDK's 30s", took)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := c.RoundTrip(ctx); err != context.DeadlineExceeded {
			t.Errorf("stopped relay: %v", err)
		}
		if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonSend)); got != 1 {
			t.Errorf("failures{send} = %v: a stop is not a failure", got)
		}
	})
}

func TestScrubErr(t *testing.T) {
	dsn := testDSN("https://sentry.test")
	for _, tc := range []struct{ in, want string }{
		{"dial tcp 10.0.0.1:443: connect: connection refused", "dial tcp 10.0.0.1:443: connect: connection refused"},
		{"proxy refused " + dsn, "proxy refused (the DSN)"},
		{"auth sentry_key=" + testPublicKey + ", sentry_secret=" + testSecretKey, "auth sentry_key=****6789, sentry_secret=****ef99"},
	} {
		if got := scrubErr(errors.New(tc.in), dsn).Error(); got != tc.want {
			t.Errorf("scrubErr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNewCanaryConfig(t *testing.T) {
	if _, err := NewCanary(CanaryConfig{}, &announcer{}); err == nil {
		t.Error("no DSN accepted")
	}
	for _, bad := range []string{
		"ftp://" + testPublicKey + ":" + testSecretKey + "@sentry.test/42",
		// url.Parse quotes the whole DSN in its error.
		"http://" + testPublicKey + ":" + testSecretKey + "@sentry test/42",
		"http://" + testPublicKey + ":" + testSecretKey + "@sentry.test/",
	} {
		_, err := NewCanary(CanaryConfig{DSN: bad}, &announcer{})
		if err == nil || strings.Contains(err.Error(), testSecretKey) || strings.Contains(err.Error(), testPublicKey) {
			t.Errorf("bad DSN: %v", err)
		}
	}
	c, err := NewCanary(CanaryConfig{DSN: testDSN("https://sentry.test")}, &announcer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Interval != 6*time.Hour || c.cfg.Timeout != 15*time.Minute {
		t.Errorf("defaults %v %v", c.cfg.Interval, c.cfg.Timeout)
	}
	reg := prometheus.NewRegistry()
	if _, err := NewCanary(CanaryConfig{DSN: testDSN("https://sentry.test"), Registerer: reg}, &announcer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCanary(CanaryConfig{DSN: testDSN("https://sentry.test"), Registerer: reg}, &announcer{}); err == nil {
		t.Error("a second canary registered the same metrics")
	}
}

func TestCanaryMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewCanary(CanaryConfig{DSN: testDSN("https://sentry.test"), Registerer: reg}, &announcer{}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sentry_dingtalk_relay_canary_failures_total Failed canary round trips, by reason: send (Sentry did not take the event) or timeout (no webhook came back).
# TYPE sentry_dingtalk_relay_canary_failures_total counter
sentry_dingtalk_relay_canary_failures_total{reason="send"} 0
sentry_dingtalk_relay_canary_failures_total{reason="timeout"} 0
# HELP sentry_dingtalk_relay_canary_last_success_timestamp_seconds When the last canary round trip succeeded, in Unix time; 0 before the first.
# TYPE sentry_dingtalk_relay_canary_last_success_timestamp_seconds gauge
sentry_dingtalk_relay_canary_last_success_timestamp_seconds 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"sentry_dingtalk_relay_canary_failures_total", "sentry_dingtalk_relay_canary_last_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "sentry_dingtalk_relay_canary_round_trip_seconds"); err != nil || n != 1 {
		t.Errorf("round trip histogram: %d %v", n, err)
	}
}

// TestCanaryOnVirtualTime follows an outage: Sentry swallows the canary's
// events for two rounds, then answers again.
func TestCanaryOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		in := &ingest{}
		ann := &announcer{}
		c, _, logs := newTestCanary(t, in, ann, 10*time.Second, 3*time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { c.Run(ctx) })
		at := func(s float64) {
			time.Sleep(time.Until(t0.Add(time.Duration(s * float64(time.Second)))))
			synctest.Wait()
		}

		at(5)
		if got := actions(ann.got(), t0); !slices.Equal(got, []string{"canary_failed@3"}) {
			t.Fatalf("after the first round: %v", got)
		}
		// A round trip by hand fails too, within the interval: no second card.
		if _, err := c.RoundTrip(ctx); err == nil || !strings.Contains(err.Error(), "no webhook for canary event") {
			t.Errorf("round trip by hand: %v", err)
		}
		at(13.5)
		if got := actions(ann.got(), t0); !slices.Equal(got, []string{"canary_failed@3", "canary_failed@13"}) {
			t.Fatalf("after the second round: %v", got)
		}
		since := "Failing since " + t0.UTC().Format(timeFormat)
		for _, card := range ann.got() {
			a := card.alert
			if a.Title != "Sentry canary failed: no webhook within 3s" || !strings.Contains(a.Message, since) ||
				!strings.Contains(a.Message, "26.7+") || !strings.Contains(a.Message, "request log") || a.Level != "warning" {
				t.Errorf("warning %+v", a)
			}
		}

		var v verdicts
		fireAfter(t, in, c, "event_alert", time.Second, &v)
		at(35)
		cards := ann.got()
		if got := actions(cards, t0); !slices.Equal(got, []string{"canary_failed@3", "canary_failed@13", "canary_recovered@21"}) {
			t.Fatalf("after recovery: %v", got)
		}
		rec := cards[2].alert
		if rec.Title != "Sentry canary works again (broken for 21s)" || rec.Level != "resolved" ||
			!strings.Contains(rec.Message, "came back in 1s") || !strings.Contains(rec.Message, "failed since "+t0.UTC().Format(timeFormat)) {
			t.Errorf("recovery %+v", rec)
		}
		if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonTimeout)); got != 3 {
			t.Errorf("failures{timeout} = %v, want 3", got)
		}
		if got, want := testutil.ToFloat64(c.lastSuccess), float64(t0.Add(31*time.Second).Unix()); got != want {
			t.Errorf("last success %v, want %v", got, want)
		}
		if got := histogram(t, c.roundTrip); got != "count 2 sum 2" {
			t.Errorf("round trips: %s", got)
		}
		if n := len(in.sent()); n != 5 {
			t.Errorf("%d events sent, want 5", n)
		}
		if got := v.all(); !slices.Equal(got, []bool{true, true}) {
			t.Errorf("Observe said %v", got)
		}
		if !strings.Contains(logs.String(), "reason=timeout") {
			t.Errorf("failures not logged:\n%s", logs)
		}
		cancel()
		wg.Wait()
	})
}

func histogram(t *testing.T, h prometheus.Histogram) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := mfs[0].GetMetric()[0].GetHistogram()
	return fmt.Sprintf("count %d sum %g", m.GetSampleCount(), m.GetSampleSum())
}

// TestLateWebhook: a webhook of a round that timed out arrives while the
// next round waits; it is consumed but does not complete the newer round.
func TestLateWebhook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &ingest{}
		c, _, _ := newTestCanary(t, in, &announcer{}, time.Hour, 3*time.Second)
		var v verdicts
		fireAfter(t, in, c, "event_alert", 5*time.Second, &v)
		if _, err := c.RoundTrip(t.Context()); err == nil {
			t.Fatal("round 1 succeeded though its webhook comes after the timeout")
		}
		late := in.sent()[0]
		time.Sleep(time.Second)
		in.set(0, nil) // round 2's event is swallowed
		_, err := c.RoundTrip(t.Context())
		if err == nil {
			t.Fatal("round 2 took round 1's webhook as its own")
		}
		synctest.Wait()
		if got := v.all(); !slices.Equal(got, []bool{true}) {
			t.Errorf("late webhook consumed: %v", got)
		}
		// Webhooks that carry only the event id, or only the title, of a
		// past round are consumed too.
		if !c.Observe(formatter.Alert{Resource: "error", Title: "ReferenceError", EventID: late.EventID}) {
			t.Error("a past round's event id is not recognised")
		}
		if !c.Observe(formatter.Alert{Resource: "issue", Action: "resolved", Title: late.Message}) {
			t.Error("a past round's issue is not recognised")
		}
		if got := testutil.ToFloat64(c.failures.WithLabelValues(ReasonTimeout)); got != 2 {
			t.Errorf("failures{timeout} = %v", got)
		}
	})
}

// TestAnnounceFailureIsRetried: a warning the queue refused is tried again
// a minute later, not a whole interval later; so is a recovery.
func TestAnnounceFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		in := &ingest{}
		ann := &announcer{}
		ann.failNext(2)
		c, _, logs := newTestCanary(t, in, ann, 10*time.Minute, 3*time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { c.Run(ctx) })
		at := func(d time.Duration) {
			time.Sleep(time.Until(t0.Add(d)))
			synctest.Wait()
		}
		at(9 * time.Minute)
		if got := actions(ann.got(), t0); !slices.Equal(got, []string{"canary_failed@123"}) {
			t.Fatalf("cards %v, want the warning on its third try", got)
		}
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "disk full") {
			t.Errorf("announce failure not logged at error:\n%s", logs)
		}
		at(19 * time.Minute)
		if got := actions(ann.got(), t0); !slices.Equal(got, []string{"canary_failed@123", "canary_failed@603"}) {
			t.Fatalf("cards %v", got)
		}
		ann.failNext(1)
		fireAfter(t, in, c, "event_alert", 0, &verdicts{})
		at(25 * time.Minute)
		if got := actions(ann.got(), t0); !slices.Equal(got, []string{"canary_failed@123", "canary_failed@603", "canary_recovered@1260"}) {
			t.Fatalf("cards %v", got)
		}
		cancel()
		wg.Wait()
	})
}

// TestUnannouncedOutage: when no warning of an outage got out, its end is
// not announced either; the next outage is announced from its own start.
func TestUnannouncedOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		in := &ingest{}
		ann := &announcer{}
		ann.failNext(1000)
		c, _, _ := newTestCanary(t, in, ann, time.Hour, 3*time.Second)
		if _, err := c.RoundTrip(t.Context()); err == nil {
			t.Fatal("swallowed event succeeded")
		}
		fireAfter(t, in, c, "event_alert", 0, &verdicts{})
		time.Sleep(time.Minute)
		ann.failNext(0)
		if _, err := c.RoundTrip(t.Context()); err != nil {
			t.Fatal(err)
		}
		if cards := ann.got(); len(cards) != 0 {
			t.Fatalf("announced %v for an outage nobody was told of", actions(cards, t0))
		}
		in.set(0, nil)
		time.Sleep(time.Minute)
		if _, err := c.RoundTrip(t.Context()); err == nil {
			t.Fatal("swallowed event succeeded")
		}
		cards := ann.got()
		if len(cards) != 1 || !strings.Contains(cards[0].alert.Message, "since "+t0.Add(2*time.Minute+3*time.Second).UTC().Format(timeFormat)) {
			t.Errorf("cards %+v", cards)
		}
	})
}

func TestObserveIgnoresOrdinaryAlerts(t *testing.T) {
	in := &ingest{}
	var c *Canary
	in.set(0, func(ev sentEvent) { c.Observe(webhook(t, "event_alert", ev)) })
	srv := httptest.NewServer(in)
	defer srv.Close()
	var err error
	c, err = NewCanary(CanaryConfig{DSN: testDSN(srv.URL), Timeout: 10 * time.Second}, &announcer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RoundTrip(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := in.sent()[0].EventID
	// The relay reports its own errors to Sentry: the text of a failed
	// round must not pass for the canary.
	var failures []error
	synctest.Test(t, func(t *testing.T) {
		in := &ingest{}
		f, _, _ := newTestCanary(t, in, &announcer{}, time.Hour, time.Second)
		_, timeout := f.RoundTrip(t.Context())
		in.set(500, nil)
		_, send := f.RoundTrip(t.Context())
		failures = append(failures, timeout, send)
	})

	fixture := func(resource, file string) formatter.Alert {
		raw, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sentry.Parse(resource, raw, sentry.Options{Received: time.Now()})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return w.Alert
	}
	dashed := strings.ToUpper(id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:])
	for _, tc := range []struct {
		name  string
		alert formatter.Alert
		want  bool
	}{
		{"event_alert", fixture("event_alert", "event_alert.triggered.json"), false},
		{"issue.created", fixture("issue", "issue.created.json"), false},
		{"error.created", fixture("error", "error.created.json"), false},
		{"legacy", fixture("", "legacy_webhook.json"), false},
		{"metric_alert", fixture("metric_alert", "metric_alert.resolved.json"), false},
		{"uptime", fixture("event_alert", "event_alert.triggered.uptime.json"), false},
		{"self-reported timeout", formatter.Alert{Resource: "event_alert", Title: failures[0].Error(), Message: failures[0].Error()}, false},
		{"self-reported send failure", formatter.Alert{Resource: "event_alert", Title: failures[1].Error(), Message: failures[1].Error()}, false},
		{"quoted mid-text", formatter.Alert{Resource: "issue", Title: "re: " + TitlePrefix + id}, false},
		{"smoke test", formatter.Alert{Resource: "issue", Title: "sentry-dingtalk-relay smoke test 0a1b2c3d4e5f"}, false},
		{"other tag value", formatter.Alert{Resource: "event_alert", Title: "x", Tags: []formatter.Tag{{Key: "relay", Value: "smoke"}}}, false},
		{"empty", formatter.Alert{}, false},
		{"canary title, unknown id", formatter.Alert{Resource: "issue", Title: TitlePrefix + strings.Repeat("ab", 16)}, true},
		{"canary title, cut", formatter.Alert{Resource: "issue", Title: TitlePrefix + "ab12"}, true},
		{"canary message", formatter.Alert{Resource: "legacy", Message: " " + TitlePrefix + id}, true},
		{"canary tag", formatter.Alert{Resource: "event_alert", Title: "renamed", Tags: []formatter.Tag{{Key: "relay", Value: "canary"}}}, true},
		{"past event id, UUID form", formatter.Alert{Resource: "error", Title: "renamed", EventID: dashed}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Observe(tc.alert); got != tc.want {
				t.Errorf("Observe(%q) = %v, want %v", tc.alert.Title, got, tc.want)
			}
		})
	}
}

// FuzzObserve: whatever Sentry sends, Observe consumes only what carries
// the canary's title, tag or one of its event ids.
func FuzzObserve(f *testing.F) {
	f.Add("ReferenceError: x", "", "e4874d664c3540c1a32eab185f12c5ab", "browser", "Chrome")
	f.Add(TitlePrefix+"0123456789abcdef0123456789abcdef", "", "", "", "")
	f.Add("x", TitlePrefix, "", "relay", "canary")
	f.Add("\x00", "\xff", "----", "relay", "")
	c, err := NewCanary(CanaryConfig{DSN: testDSN("https://sentry.test")}, &announcer{})
	if err != nil {
		f.Fatal(err)
	}
	known := "0123456789abcdef0123456789abcdef"
	c.recent[0] = known
	f.Fuzz(func(t *testing.T, title, message, eventID, tagKey, tagValue string) {
		a := formatter.Alert{Resource: "event_alert", Title: title, Message: message, EventID: eventID,
			Tags: []formatter.Tag{{Key: tagKey, Value: tagValue}}}
		got := c.Observe(a)
		want := strings.HasPrefix(strings.TrimSpace(title), TitlePrefix) ||
			strings.HasPrefix(strings.TrimSpace(message), TitlePrefix) ||
			(tagKey == "relay" && tagValue == "canary") ||
			normalizeEventID(eventID) == known
		if got != want {
			t.Errorf("Observe(%+v) = %v, want %v", a, got, want)
		}
	})
}
