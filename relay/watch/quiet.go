package watch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
)

// QuietConfig configures a Quiet watch.
type QuietConfig struct {
	// After is how long without any authentic webhook is worth a warning;
	// 0 turns the warning off and keeps the metric.
	After time.Duration
	// Language of the cards: formatter.LangZH (default) or formatter.LangEN.
	Language string
	// Zone of the times the cards' messages show; nil means UTC.
	Zone *time.Location
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives announcement failures; nil discards them.
	Log *slog.Logger
	// Registerer takes last_webhook_timestamp_seconds; nil leaves it
	// unregistered.
	Registerer prometheus.Registerer
}

// Quiet warns when Sentry sent no authentic webhook for a while: a dead
// man's switch that needs no Sentry project of its own, but cannot tell a
// broken Sentry from a calm one.
type Quiet struct {
	cfg   QuietConfig
	ann   Announcer
	words *words
	log   *slog.Logger
	gauge prometheus.Gauge
	wake  chan struct{}
	start time.Time

	mu    sync.Mutex
	last  time.Time // latest webhook; zero before the first
	quiet bool      // a warning is out, so a webhook must wake Run
}

// NewQuiet makes a Quiet watch whose silence counts from now, and registers
// its metric.
func NewQuiet(cfg QuietConfig, a Announcer) *Quiet {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	q := &Quiet{
		cfg: cfg, ann: a, words: wordsFor(cfg.Language), log: cfg.Log,
		wake: make(chan struct{}, 1), start: cfg.Now(),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "last_webhook_timestamp_seconds",
			Help: "When the last authentic Sentry webhook arrived, in Unix time; 0 before the first since start.",
		}),
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(q.gauge)
	}
	return q
}

// Seen records an authentic Sentry webhook received at t, ignored ones
// included: any of them proves Sentry still sends.
func (q *Quiet) Seen(t time.Time) {
	q.mu.Lock()
	if t.After(q.last) {
		q.last = t
		q.gauge.Set(float64(t.UnixNano()) / 1e9)
	}
	quiet := q.quiet
	q.mu.Unlock()
	if quiet {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// latest returns the time of the last webhook, or the start when none came.
func (q *Quiet) latest() (t time.Time, none bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last.IsZero() {
		return q.start, true
	}
	return q.last, false
}

func (q *Quiet) setQuiet(v bool) {
	q.mu.Lock()
	q.quiet = v
	q.mu.Unlock()
}

// Run watches until ctx ends: one warning when the silence reaches After,
// one recovery when webhooks resume. It returns at once when After is 0.
func (q *Quiet) Run(ctx context.Context) {
	if q.cfg.After <= 0 {
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	// silentSince is the last webhook (or the start) before the silence a
	// warning announced; zero when no warning is out.
	var silentSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-q.wake:
		}
		now := q.cfg.Now()
		last, none := q.latest()
		wait := time.Duration(-1)
		switch {
		case silentSince.IsZero():
			if d := last.Add(q.cfg.After).Sub(now); d > 0 {
				wait = d
				break
			}
			if !q.announce(ctx, q.warning(now, last, none)) {
				wait = retryDelay(q.cfg.After)
				break
			}
			silentSince = last
			q.setQuiet(true)
			// A webhook may have come in while the warning went out, before
			// Seen knew to wake this loop.
			wait = 0
		case !last.After(silentSince):
			// Still quiet: nothing to do until a webhook wakes the loop.
		case now.Sub(last) >= q.cfg.After:
			// Quiet again before the recovery got out: the warning stands.
			silentSince = last
		default:
			if !q.announce(ctx, q.recovery(last, silentSince)) {
				wait = retryDelay(q.cfg.After)
				break
			}
			silentSince = time.Time{}
			q.setQuiet(false)
			wait = last.Add(q.cfg.After).Sub(now)
		}
		timer.Stop()
		if wait >= 0 {
			timer.Reset(wait)
		}
	}
}

func (q *Quiet) announce(ctx context.Context, a formatter.Alert) bool {
	if err := q.ann.Announce(ctx, a); err != nil {
		q.log.Error("announcing the quiet watch's card failed; trying again later", "action", a.Action, "err", err)
		return false
	}
	return true
}

func (q *Quiet) warning(now, last time.Time, none bool) formatter.Alert {
	w := q.words
	a := formatter.Alert{
		Resource: Resource, Action: ActionQuiet, Level: levelWarning, Time: now,
		Title: w.quietTitle(w.duration(now.Sub(last))),
	}
	if none {
		a.Message = w.quietSinceStart(formatTime(last, q.cfg.Zone))
	} else {
		a.Message = w.quietSince(formatTime(last, q.cfg.Zone))
	}
	return a
}

func (q *Quiet) recovery(at, silentSince time.Time) formatter.Alert {
	w := q.words
	return formatter.Alert{
		Resource: Resource, Action: ActionQuietRecovered, Level: levelResolved, Time: at,
		Title:   w.quietRecovered,
		Message: w.quietRecoveredMsg(formatTime(at, q.cfg.Zone), w.duration(at.Sub(silentSince))),
	}
}
