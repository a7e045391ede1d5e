package watch

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// quietEnv runs a Quiet watch in a synctest bubble; at(s) lets virtual time
// run to s seconds after the start.
type quietEnv struct {
	t0     time.Time
	q      *Quiet
	ann    *announcer
	logs   *syncBuffer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newQuietEnv(t *testing.T, after time.Duration, ann *announcer) *quietEnv {
	log, logs := testLogger()
	e := &quietEnv{t0: time.Now(), ann: ann, logs: logs}
	e.q = NewQuiet(QuietConfig{After: after, Language: formatter.LangEN, Log: log, Registerer: prometheus.NewRegistry()}, ann)
	ctx, cancel := context.WithCancel(t.Context())
	e.cancel = cancel
	e.wg.Go(func() { e.q.Run(ctx) })
	return e
}

func (e *quietEnv) at(s float64) {
	time.Sleep(time.Until(e.t0.Add(time.Duration(s * float64(time.Second)))))
	synctest.Wait()
}

// seen reports a webhook received now, s seconds after the start.
func (e *quietEnv) seen(s float64) {
	e.at(s)
	e.q.Seen(time.Now())
	synctest.Wait()
}

func (e *quietEnv) stop() {
	e.cancel()
	e.wg.Wait()
}

func TestQuietOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQuietEnv(t, 10*time.Second, &announcer{})
		e.seen(2)
		e.at(11.5)
		if got := actions(e.ann.got(), e.t0); len(got) != 0 {
			t.Fatalf("warned before the silence lasted: %v", got)
		}
		e.at(12.5)
		if got := actions(e.ann.got(), e.t0); !slices.Equal(got, []string{"quiet@12"}) {
			t.Fatalf("cards %v", got)
		}
		w := e.ann.got()[0].alert
		last := e.t0.Add(2 * time.Second).UTC().Format(timeFormat)
		if w.Resource != "relay" || w.Level != "warning" || w.Title != "No Sentry webhook for 10s" ||
			!strings.Contains(w.Message, "The last Sentry webhook arrived at "+last) || !strings.Contains(w.Message, "26.7+") {
			t.Errorf("warning %+v", w)
		}
		e.at(150)
		if n := len(e.ann.got()); n != 1 {
			t.Fatalf("%d cards: the warning repeated while quiet", n)
		}
		e.seen(200)
		cards := e.ann.got()
		if got := actions(cards, e.t0); !slices.Equal(got, []string{"quiet@12", "quiet_recovered@200"}) {
			t.Fatalf("cards %v", got)
		}
		r := cards[1].alert
		if r.Level != "resolved" || r.Title != "Sentry webhooks are arriving again" ||
			r.Message != "A Sentry webhook arrived at "+e.t0.Add(200*time.Second).UTC().Format(timeFormat)+" after 3m18s without any." {
			t.Errorf("recovery %+v", r)
		}
		// Webhooks keep coming: no card; then a new silence, a new warning.
		e.seen(205)
		e.q.Seen(e.t0.Add(204 * time.Second)) // a late report does not move the clock back
		e.at(214.5)
		if n := len(e.ann.got()); n != 2 {
			t.Fatalf("%d cards while webhooks arrive", n)
		}
		e.at(216)
		if got := actions(e.ann.got(), e.t0); !slices.Equal(got, []string{"quiet@12", "quiet_recovered@200", "quiet@215"}) {
			t.Fatalf("cards %v", got)
		}
		if got, want := testutil.ToFloat64(e.q.gauge), float64(e.t0.Add(205*time.Second).Unix()); got != want {
			t.Errorf("last_webhook_timestamp_seconds %v, want %v", got, want)
		}
		e.stop()
	})
}

func TestQuietSinceStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newQuietEnv(t, 3*time.Second, &announcer{})
		e.at(4)
		cards := e.ann.got()
		if got := actions(cards, e.t0); !slices.Equal(got, []string{"quiet@3"}) {
			t.Fatalf("cards %v", got)
		}
		if want := "since the relay started at " + e.t0.UTC().Format(timeFormat); !strings.Contains(cards[0].alert.Message, want) {
			t.Errorf("message %q lacks %q", cards[0].alert.Message, want)
		}
		if got := testutil.ToFloat64(e.q.gauge); got != 0 {
			t.Errorf("last_webhook_timestamp_seconds %v before any webhook", got)
		}
		e.stop()
	})
}

func TestQuietAnnounceFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ann := &announcer{}
		ann.failNext(1)
		e := newQuietEnv(t, 5*time.Minute, ann)
		e.at(400)
		if got := actions(ann.got(), e.t0); !slices.Equal(got, []string{"quiet@360"}) {
			t.Fatalf("cards %v, want the warning a minute after the refused one", got)
		}
		if !strings.Contains(e.logs.String(), "level=ERROR") {
			t.Errorf("announce failure not logged at error:\n%s", e.logs)
		}
		ann.failNext(1)
		e.seen(600)
		e.at(700)
		if got := actions(ann.got(), e.t0); !slices.Equal(got, []string{"quiet@360", "quiet_recovered@660"}) {
			t.Fatalf("cards %v", got)
		}
		e.stop()
	})
}

// TestQuietAgainBeforeRecovery: when the recovery cannot get out before the
// silence is back, the warning stands and the recovery waits for the next
// webhook.
func TestQuietAgainBeforeRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ann := &announcer{}
		e := newQuietEnv(t, 90*time.Second, ann)
		e.at(91)
		ann.failNext(2)
		e.seen(100)
		e.at(290)
		if got := actions(ann.got(), e.t0); !slices.Equal(got, []string{"quiet@90"}) {
			t.Fatalf("cards %v", got)
		}
		e.seen(300)
		cards := ann.got()
		if got := actions(cards, e.t0); !slices.Equal(got, []string{"quiet@90", "quiet_recovered@300"}) {
			t.Fatalf("cards %v", got)
		}
		if !strings.Contains(cards[1].alert.Message, "after 3m20s") {
			t.Errorf("recovery %q", cards[1].alert.Message)
		}
		e.stop()
	})
}

// TestWebhookWhileWarning: a webhook that arrives while the warning is
// being announced still brings the recovery.
func TestWebhookWhileWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ann := &announcer{}
		e := newQuietEnv(t, 10*time.Second, ann)
		var once sync.Once
		ann.mu.Lock()
		ann.during = func() { once.Do(func() { e.q.Seen(time.Now()) }) }
		ann.mu.Unlock()
		e.at(11)
		if got := actions(ann.got(), e.t0); !slices.Equal(got, []string{"quiet@10", "quiet_recovered@10"}) {
			t.Fatalf("cards %v", got)
		}
		e.stop()
	})
}

func TestQuietOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		ann := &announcer{}
		q := NewQuiet(QuietConfig{Registerer: reg}, ann)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			q.Run(ctx)
			close(done)
		}()
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Error("Run does not return when the watch is off")
		}
		cancel()
		<-done
		if cards := ann.got(); len(cards) != 0 {
			t.Errorf("announced %v with the watch off", cards)
		}
		q.Seen(time.Unix(1700000000, 500_000_000))
		want := `
# HELP sentry_dingtalk_relay_last_webhook_timestamp_seconds When the last authentic Sentry webhook arrived, in Unix time; 0 before the first since start.
# TYPE sentry_dingtalk_relay_last_webhook_timestamp_seconds gauge
sentry_dingtalk_relay_last_webhook_timestamp_seconds 1.7000000005e+09
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Error(err)
		}
	})
}
