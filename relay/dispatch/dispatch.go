// Package dispatch delivers queued alerts to receivers (DingTalk robots and
// the other kinds): one worker per receiver takes what waits when the
// receiver's send budget allows, sends it as one card or one digest, and
// decides from the receiver's verdict whether the alerts are done, retried
// later, held while the receiver is parked, or given up on as dead letters.
// It never parses Sentry payloads.
package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
)

// Store is the queue the dispatcher drains.
type Store interface {
	Pending(ctx context.Context, robot string, max int) ([]queue.Delivery, error)
	Ack(ctx context.Context, robot string, ids []string) error
	Bury(ctx context.Context, robot string, ids []string, reason string) error
	Depth(ctx context.Context, robot string) int
	// Enqueue queues an alert for other receivers: a fallback.
	Enqueue(ctx context.Context, sub queue.Submission) (dup bool, err error)
}

// Limiter keeps receivers within their send rate.
type Limiter interface {
	// Take records a send if one is allowed now at rate, else says how
	// long to wait.
	Take(ctx context.Context, robot string, rate ratelimit.Rate) (time.Duration, error)
	// Done moves the send Take recorded last to now, when it has finished:
	// DingTalk counts a message when it arrives, which can be later than
	// it was taken.
	Done(ctx context.Context, robot string) error
	// Park stops sends to robot until the given time.
	Park(ctx context.Context, robot string, until time.Time) error
}

// Lock lets one relay of several drain a robot at a time, so alerts waiting
// anywhere end up in one digest.
type Lock interface {
	// Hold takes or renews this relay's hold on robot and reports whether
	// it has it.
	Hold(ctx context.Context, robot string) (bool, error)
}

// Receiver is a receiver the dispatcher delivers to.
type Receiver struct {
	// Name names the receiver in logs and metrics; Type is its kind
	// (dingtalk, wecom, feishu, webhook, email).
	Name, Type string
	// Key is the receiver's queue name.
	Key string
	// Rate is the receiver's send budget.
	Rate ratelimit.Rate
	// Fallback are the queue keys of the receivers that also get the
	// receiver's alerts when it cannot deliver them.
	Fallback []string
	// Receiver renders and sends.
	notify.Receiver
}

// Config are the dispatcher's settings and dependencies.
type Config struct {
	Store   Store
	Limiter Limiter
	// Lock, when set, is taken before a robot is drained (several relays
	// on one Redis); nil means this relay is the only one.
	Lock    Lock
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// MaxAge is how long a delivery may wait before it becomes a dead letter.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand returns a number in [0,1) for backoff jitter; nil means math/rand.
	Rand func() float64
	// Poll is how often a worker looks at its queue without being woken;
	// 0 means only when woken (the store is local and wakes it).
	Poll time.Duration
	// FallbackAfter is how long a receiver may be refused before its
	// fallback takes its alerts; 0 means DefaultFallbackAfter.
	FallbackAfter time.Duration
	// Zone is the time zone of the times in fallback notes; nil means UTC.
	Zone *time.Location
}

// Delivery timing.
const (
	// ParkFor is how long a throttled receiver rests when it does not say.
	ParkFor = 10 * time.Minute
	// ConfigRetry is how often a robot with a configuration error is tried.
	ConfigRetry = 3 * time.Minute
	backoffBase = time.Second
	backoffCap  = 5 * time.Minute
	// maxBatch bounds how many waiting deliveries one pass reads (and so
	// the memory a pass takes); a digest carries what fits in one message
	// of them, the oldest first.
	maxBatch = 1000
	// storeRetry is the pause after the store failed.
	storeRetry = 5 * time.Second
)

// Dispatcher runs one worker per receiver.
type Dispatcher struct {
	cfg     Config
	workers map[string]*worker
	// composing lets one worker at a time read and render a batch: in a
	// storm every robot composes at once, and together they would take
	// the CPU and memory webhooks need.
	composing chan struct{}
}

// New returns a dispatcher for the receivers.
func New(cfg Config, receivers []Receiver) *Dispatcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.FallbackAfter == 0 {
		cfg.FallbackAfter = DefaultFallbackAfter
	}
	d := &Dispatcher{cfg: cfg, workers: map[string]*worker{}, composing: make(chan struct{}, 1)}
	for _, r := range receivers {
		d.workers[r.Key] = &worker{
			Config: &d.cfg, robot: r, wake: make(chan struct{}, 1), composing: d.composing,
			log: cfg.Log.With("robot", r.Name, "type", r.Type),
		}
	}
	return d
}

// Wake tells the worker of robot key that new deliveries wait.
func (d *Dispatcher) Wake(key string) {
	if w, ok := d.workers[key]; ok {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx is cancelled, then lets sends in progress finish
// (each is bounded by the HTTP client's timeout) and returns.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
}

// batch is the message a worker is trying to deliver.
type batch struct {
	deliveries []queue.Delivery
	msg        notify.Message
	digest     bool
	minimal    bool
}

func (b *batch) ids() []string {
	ids := make([]string, len(b.deliveries))
	for i, d := range b.deliveries {
		ids[i] = d.ID
	}
	return ids
}

func (b *batch) oldest() time.Time {
	t := b.deliveries[0].Accepted
	for _, d := range b.deliveries {
		if d.Accepted.Before(t) {
			t = d.Accepted
		}
	}
	return t
}

type worker struct {
	*Config
	robot     Receiver
	wake      chan struct{}
	composing chan struct{}
	log       *slog.Logger

	inflight  *batch    // kept across transient failures: same body, same msgUuid
	notBefore time.Time // backoff or configuration-error pause
	attempts  int
	waiting   bool   // already counted as rate limited
	lastErr   string // last failure logged, to log each kind once

	refused     failure // the configuration failures of this streak
	throttled   failure // the last rate-limit ban
	fallingBack bool    // alerts went to the fallback in this streak
	forwarded   map[string]bool
}

// idle means "until woken" (or the next poll).
const idle = -1

func (w *worker) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		delay := w.step(ctx)
		if delay == idle {
			delay = w.Poll
			if delay == 0 {
				delay = time.Hour
			}
		}
		timer.Reset(delay)
	}
}

// step does the next thing the robot needs and returns when to step again.
func (w *worker) step(ctx context.Context) time.Duration {
	now := w.Now()
	note, due, next := w.fallbackDue(now)
	if due {
		w.forward(ctx, now, note, nil)
	}
	if now.Before(w.notBefore) {
		wait := w.notBefore.Sub(now)
		if next > 0 {
			wait = min(wait, next)
		}
		return wait
	}
	if w.inflight != nil && now.Sub(w.inflight.oldest()) > w.MaxAge {
		// Recompose: the expired deliveries become dead letters.
		w.inflight = nil
	}
	if w.Lock != nil {
		held, err := w.Lock.Hold(ctx, w.robot.Key)
		if err != nil {
			w.log.Warn("cannot take the robot's lease", "err", err)
		}
		if !held {
			// Another relay drains this robot; a message this one was
			// retrying is recomposed by whoever holds it.
			w.inflight = nil
			return idle
		}
	}
	if w.inflight == nil && w.Store.Depth(ctx, w.robot.Key) == 0 {
		return idle
	}
	wait, err := w.Limiter.Take(ctx, w.robot.Key, w.robot.Rate)
	if err != nil {
		w.log.Error("rate limiter failed", "err", err)
		return storeRetry
	}
	if wait > 0 {
		if !w.waiting && w.Metrics != nil {
			w.Metrics.RateLimited.WithLabelValues(w.robot.Name).Inc()
		}
		w.waiting = true
		return wait
	}
	w.waiting = false
	if w.inflight == nil {
		b, err := w.compose(ctx, now)
		if err != nil {
			if ctx.Err() != nil {
				return idle
			}
			w.log.Error("reading the queue failed", "err", err)
			return storeRetry
		}
		if b == nil {
			return idle
		}
		w.inflight = b
	}
	return w.send(ctx)
}

// compose reads what waits, buries what is too old, and renders the next
// message: the full card of a lone alert, else a digest of as much as fits.
func (w *worker) compose(ctx context.Context, now time.Time) (*batch, error) {
	select {
	case w.composing <- struct{}{}:
		defer func() { <-w.composing }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ds, err := w.Store.Pending(ctx, w.robot.Key, maxBatch)
	if err != nil {
		return nil, err
	}
	live := ds[:0]
	var expired []string
	var old []queue.Delivery
	for _, d := range ds {
		if now.Sub(d.Accepted) > w.MaxAge {
			expired = append(expired, d.ID)
			if len(w.robot.Fallback) > 0 {
				old = append(old, d)
			}
		} else {
			live = append(live, d)
		}
	}
	if len(expired) > 0 {
		reason := "not delivered within " + w.MaxAge.String()
		if w.lastErr != "" {
			reason += "; last error: " + w.lastErr
		}
		if len(old) > 0 {
			w.forward(ctx, now, w.robot.Name+": "+reason, old)
		}
		w.bury(ctx, expired, "expired", reason)
	}
	switch len(live) {
	case 0:
		return nil, nil
	case 1:
		msg, err := w.robot.Card(item(live[0]))
		if err != nil {
			w.log.Error("the card could not be rendered; sending the minimal card", "err", err, "alert", live[0].AlertID)
			return &batch{deliveries: live, msg: w.robot.Minimal(item(live[0])), minimal: true}, nil
		}
		return &batch{deliveries: live, msg: msg}, nil
	}
	items := make([]formatter.Item, len(live))
	for i, d := range live {
		items[i] = item(d)
	}
	msg, covered := w.robot.Digest(items, false)
	b := &batch{msg: msg, digest: true, deliveries: make([]queue.Delivery, 0, len(covered))}
	for _, i := range covered {
		b.deliveries = append(b.deliveries, live[i])
	}
	return b, nil
}

// item is a delivery as the receivers render it.
func item(d queue.Delivery) formatter.Item {
	return formatter.Item{Alert: d.Alert, Mentions: d.Mentions, Type: d.Type, Note: d.Note}
}

// minimal re-renders a batch without anything the receiver's content
// checks could refuse.
func (w *worker) minimal(b *batch) *batch {
	m := &batch{deliveries: b.deliveries, digest: b.digest, minimal: true}
	if len(b.deliveries) == 1 {
		m.msg = w.robot.Minimal(item(b.deliveries[0]))
		return m
	}
	items := make([]formatter.Item, len(b.deliveries))
	for i, d := range b.deliveries {
		items[i] = item(d)
	}
	// Plain lines are shorter than linked ones, so everything still fits.
	m.msg, _ = w.robot.Digest(items, true)
	return m
}

func (w *worker) send(ctx context.Context) time.Duration {
	b := w.inflight
	// A send in progress finishes even during shutdown: the HTTP client's
	// timeout bounds it, and abandoning it would only cause a re-send.
	err := w.robot.Notify(context.WithoutCancel(ctx), b.msg, msgUUID(w.robot.Key, b))
	if derr := w.Limiter.Done(ctx, w.robot.Key); derr != nil {
		w.log.Error("rate limiter failed", "err", derr)
	}
	now := w.Now()
	w.count(err)
	if err == nil {
		if ackErr := w.Store.Ack(ctx, w.robot.Key, b.ids()); ackErr != nil {
			// Delivered but still queued: it will be sent again, and the
			// msgUuid makes DingTalk drop the copy.
			w.log.Error("removing delivered alerts from the queue failed", "err", ackErr)
		}
		if w.Metrics != nil {
			for _, d := range b.deliveries {
				w.Metrics.DeliveryLatency.Observe(now.Sub(d.Accepted).Seconds())
			}
			if b.digest {
				w.Metrics.DigestAlerts.WithLabelValues(w.robot.Name).Add(float64(len(b.deliveries)))
			}
		}
		if w.lastErr != "" {
			w.log.Info("robot delivers again", "alerts", len(b.deliveries))
		}
		w.recovered()
		w.log.Debug("delivered", "alerts", len(b.deliveries), "digest", b.digest, "minimal", b.minimal)
		w.inflight, w.attempts, w.lastErr = nil, 0, ""
		return 0
	}

	verdict, nerr := notify.VerdictOf(err)
	hint := ""
	if nerr != nil {
		hint = nerr.Hint
	}
	w.noteFailure(now, verdict, nerr)
	switch verdict {
	case notify.Throttled:
		rest := ParkFor
		if nerr.Wait > 0 {
			rest = nerr.Wait
		}
		until := now.Add(rest)
		if perr := w.Limiter.Park(ctx, w.robot.Key, until); perr != nil {
			w.log.Error("parking the receiver failed", "err", perr)
		}
		w.logOnce(slog.LevelWarn, "the receiver throttles; parked, waiting alerts go out as a digest after", err, hint, "parked_for", rest.String())
		// Refused, not delivered: recompose later with everything waiting.
		w.inflight = nil
		w.notBefore = until
		if note, due, _ := w.fallbackDue(now); due {
			w.forward(ctx, now, note, nil)
		}
		return rest
	case notify.Refused:
		w.logOnce(slog.LevelError, "the receiver refused the request; alerts are kept and retried every few minutes", err, hint)
		w.inflight = nil
		w.notBefore = now.Add(ConfigRetry)
		if _, _, next := w.fallbackDue(now); next > 0 {
			return min(ConfigRetry, next)
		}
		return ConfigRetry
	case notify.Content:
		if !b.minimal {
			w.log.Warn("the receiver refused the message content; sending a minimal card", "err", err)
			w.inflight = w.minimal(b)
			return 0
		}
		w.log.Error("the receiver refused the minimal card too; the alerts become dead letters", "err", err, "alerts", len(b.deliveries))
		w.bury(ctx, b.ids(), "content", "the receiver refused the content: "+err.Error())
		w.inflight = nil
		return 0
	case notify.Rejected:
		w.log.Error("the receiver will not take these alerts; they become dead letters", "err", err, "fix", hint, "alerts", len(b.deliveries))
		w.bury(ctx, b.ids(), "rejected", "the receiver rejected the alerts: "+err.Error())
		w.inflight = nil
		return 0
	}
	w.attempts++
	delay := w.backoff(w.attempts)
	w.logOnce(slog.LevelWarn, "sending failed; retrying with backoff", err, hint, "attempt", w.attempts, "retry_in", delay.Round(time.Millisecond).String())
	w.notBefore = now.Add(delay)
	return delay
}

// backoff is exponential with full jitter: uniform between 1 s and
// min(5 min, 1 s·2^attempt).
func (w *worker) backoff(attempt int) time.Duration {
	ceil := backoffCap
	if attempt < 20 {
		ceil = min(backoffCap, backoffBase<<attempt)
	}
	return backoffBase + time.Duration(w.Rand()*float64(ceil-backoffBase))
}

func (w *worker) bury(ctx context.Context, ids []string, kind, reason string) {
	if err := w.Store.Bury(ctx, w.robot.Key, ids, reason); err != nil {
		w.log.Error("moving alerts to dead letters failed", "err", err)
		return
	}
	w.log.Warn("alerts became dead letters", "count", len(ids), "reason", reason)
	if w.Metrics != nil {
		w.Metrics.DeadLetters.WithLabelValues(w.robot.Name, kind).Add(float64(len(ids)))
	}
}

// logOnce logs a failure at level the first time it happens in a row, and
// at debug level while it repeats.
func (w *worker) logOnce(level slog.Level, msg string, err error, hint string, args ...any) {
	text := err.Error()
	if text == w.lastErr {
		level = slog.LevelDebug
	}
	w.lastErr = text
	w.log.Log(context.Background(), level, msg, append([]any{"err", err, "fix", hint}, args...)...)
}

func (w *worker) count(err error) {
	if w.Metrics == nil {
		return
	}
	outcome, code := "ok", "0"
	if err != nil {
		verdict, nerr := notify.VerdictOf(err)
		outcome, code = verdict.String(), "network"
		if nerr != nil && nerr.Code != "" {
			code = nerr.Code
		}
	}
	w.Metrics.Sends.WithLabelValues(w.robot.Name, w.robot.Type, outcome).Inc()
	if err != nil {
		w.Metrics.SendFailures.WithLabelValues(w.robot.Name, w.robot.Type, code).Inc()
	}
}

// msgUUID derives the message's idempotency key from the receiver and the
// alerts it carries, so a receiver that can drops a re-sent copy of a
// message that arrived although its answer was lost (DingTalk's msgUuid).
func msgUUID(robotKey string, b *batch) string {
	h := sha256.New()
	h.Write([]byte(robotKey))
	for _, d := range b.deliveries {
		h.Write([]byte{0})
		h.Write([]byte(d.AlertID))
	}
	if b.minimal {
		h.Write([]byte("minimal"))
	}
	s := hex.EncodeToString(h.Sum(nil)[:16])
	return strings.Join([]string{s[:8], s[8:12], s[12:16], s[16:20], s[20:]}, "-")
}
