package watch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
)

// Defaults of CanaryConfig.
const (
	DefaultInterval = 6 * time.Hour
	DefaultTimeout  = 15 * time.Minute
)

// Failure reasons, the values of canary_failures_total's reason label.
const (
	ReasonSend    = "send"
	ReasonTimeout = "timeout"
)

// TitlePrefix starts the title of every canary event; the event id follows.
const TitlePrefix = "sentry-dingtalk-relay canary "

// canaryTag marks canary events, like the smoke command's relay=smoke, so
// they can be found and filtered in Sentry.
const canaryTagKey, canaryTagValue = "relay", "canary"

// recentRounds is how many past rounds' event ids are remembered, so a late
// webhook carrying only the event id is still recognised as the canary's.
const recentRounds = 64

// CanaryConfig configures a Canary.
type CanaryConfig struct {
	// DSN of the Sentry project whose Automation sends new issues to the
	// relay's integration.
	DSN string
	// Interval between round trips; 0 means DefaultInterval. It is also the
	// shortest time between two warnings of one outage.
	Interval time.Duration
	// Timeout is how long a round trip may take, sending included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Language of the cards: formatter.LangZH (default) or formatter.LangEN.
	Language string
	// Zone of the times the cards' messages show; nil means UTC.
	Zone *time.Location
	// Transport carries the event to Sentry's ingest; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand makes event ids; nil means crypto/rand.
	Rand io.Reader
	// Log receives the outcome of every round trip; nil discards it.
	Log *slog.Logger
	// Registerer takes the canary's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Canary proves that Sentry still turns events into webhooks: it sends a
// uniquely titled error event with sentry-go and waits for the webhook the
// project's Automation must send for the new issue it makes.
type Canary struct {
	cfg   CanaryConfig
	dsn   *sentry.Dsn
	ann   Announcer
	words *words
	log   *slog.Logger

	lastSuccess prometheus.Gauge
	roundTrip   prometheus.Histogram
	failures    *prometheus.CounterVec

	mu     sync.Mutex
	rounds map[string]chan time.Time // rounds waiting, by event id
	recent [recentRounds]string      // event ids of rounds, a ring
	next   int

	// state is held while a round's outcome is recorded and announced, so
	// that a card owed is announced once and outcomes apply in order.
	state sync.Mutex
	out   *outage
}

// outage is a run of failed round trips, from its first failure until its
// recovery is announced.
type outage struct {
	since time.Time // start of the first failed round
	// warned is the start of the round whose warning was announced last;
	// zero before the first.
	warned  time.Time
	pending *card
}

// card is an announcement owed, tried until the Announcer takes it.
type card struct {
	alert    formatter.Alert
	round    time.Time // start of the round that made it
	recovery bool
}

// NewCanary checks the configuration and registers the canary's metrics.
func NewCanary(cfg CanaryConfig, a Announcer) (*Canary, error) {
	if cfg.DSN == "" {
		return nil, errors.New("canary: no DSN")
	}
	dsn, err := sentry.NewDsn(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("canary DSN: %w", scrubErr(err, cfg.DSN))
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	c := &Canary{
		cfg: cfg, dsn: dsn, ann: a, words: wordsFor(cfg.Language), log: cfg.Log,
		rounds: make(map[string]chan time.Time),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "canary_last_success_timestamp_seconds",
			Help: "When the last canary round trip succeeded, in Unix time; 0 before the first.",
		}),
		roundTrip: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "canary_round_trip_seconds",
			Help:    "Time from sending the canary event to Sentry to receiving its webhook.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900},
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "canary_failures_total",
			Help: "Failed canary round trips, by reason: send (Sentry did not take the event) or timeout (no webhook came back).",
		}, []string{"reason"}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.failures.WithLabelValues(ReasonSend)
	c.failures.WithLabelValues(ReasonTimeout)
	if reg := cfg.Registerer; reg != nil {
		for _, m := range []prometheus.Collector{c.lastSuccess, c.roundTrip, c.failures} {
			if err := reg.Register(m); err != nil {
				return nil, fmt.Errorf("canary metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Run does a round trip at once, then one every Interval until ctx ends,
// and tries again an announcement the Announcer refused.
func (c *Canary) Run(ctx context.Context) {
	next := time.NewTimer(0)
	defer next.Stop()
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
			// The round's start is read before the timer is set again, so
			// the next round starts at least Interval after it: the rule
			// that repeats warnings compares round starts.
			start := c.cfg.Now()
			next.Reset(c.cfg.Interval)
			c.round(ctx, start)
		case <-retry.C:
			c.state.Lock()
			c.settle(ctx)
			c.state.Unlock()
		}
		if c.owes() {
			retry.Reset(retryDelay(c.cfg.Interval))
		} else {
			retry.Stop()
		}
	}
}

// RoundTrip sends a canary event now and waits for its webhook. It returns
// how long the round trip took, or why it failed; like a scheduled round, a
// failure may announce a warning and a success a recovery.
func (c *Canary) RoundTrip(ctx context.Context) (time.Duration, error) {
	return c.round(ctx, c.cfg.Now())
}

func (c *Canary) round(ctx context.Context, start time.Time) (time.Duration, error) {
	id, err := c.newID()
	if err != nil {
		return 0, fmt.Errorf("canary event id: %w", err)
	}
	seen := make(chan time.Time, 1)
	c.mu.Lock()
	// Registered before sending: the webhook may arrive before the send returns.
	c.rounds[id] = seen
	c.recent[c.next] = id
	c.next = (c.next + 1) % recentRounds
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.rounds, id)
		c.mu.Unlock()
	}()

	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	log := c.log.With("event_id", id)
	if serr := c.send(rctx, id); serr != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		err := fmt.Errorf("sending canary event %s to %s (project %s): %w", id, c.dsn.GetHost(), c.dsn.GetProjectID(), serr)
		log.Warn("canary round trip failed", "reason", ReasonSend, "err", err)
		c.failed(ctx, start, ReasonSend, id, serr)
		return 0, err
	}
	select {
	case at := <-seen:
		took := at.Sub(start)
		log.Info("canary round trip ok", "seconds", took.Seconds())
		c.succeeded(ctx, start, at, id)
		return took, nil
	case <-rctx.Done():
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		err := fmt.Errorf("no webhook for canary event %s within %s: does an Automation of project %s send new issues to this integration?",
			id, c.cfg.Timeout, c.dsn.GetProjectID())
		log.Warn("canary round trip failed", "reason", ReasonTimeout, "err", err)
		c.failed(ctx, start, ReasonTimeout, id, nil)
		return 0, err
	}
}

// Observe tells whether a parsed, authentic alert is one of the canary's
// own; the webhook handler then consumes it. The webhook of the round in
// progress completes it; a late one of an earlier round is consumed all the
// same but proves nothing about the newer round.
func (c *Canary) Observe(a formatter.Alert) bool {
	titleID, marked := canaryMark(a)
	eventID := normalizeEventID(a.EventID)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range []string{eventID, titleID} {
		if seen, ok := c.rounds[id]; ok && id != "" {
			select {
			case seen <- c.cfg.Now():
			default:
			}
			return true
		}
	}
	if marked {
		return true
	}
	if eventID == "" {
		return false
	}
	for _, id := range c.recent {
		if id == eventID {
			return true
		}
	}
	return false
}

// canaryMark finds the canary's title (issue webhooks carry the title, not
// the event id) or tag in an alert, and the event id the title names.
func canaryMark(a formatter.Alert) (id string, marked bool) {
	for _, s := range []string{a.Title, a.Message} {
		rest, ok := strings.CutPrefix(strings.TrimSpace(s), TitlePrefix)
		if !ok {
			continue
		}
		marked = true
		if n := hexPrefix(rest); n == 32 {
			return strings.ToLower(rest[:n]), true
		}
	}
	return "", marked || a.Tag(canaryTagKey) == canaryTagValue
}

func hexPrefix(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return i
		}
	}
	return len(s)
}

// normalizeEventID writes an event id as Sentry's payloads do: 32 lowercase
// hex digits, whether it arrived with dashes (UUID form) or in capitals.
func normalizeEventID(id string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(id), "-", ""))
}

func (c *Canary) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// send hands the event to the SDK's own transport and tells whether Sentry
// took it: the SDK only logs Sentry's answer, so a recorder keeps it. Each
// round has its own client, so a rate limit Sentry set for one round cannot
// silently drop the next.
func (c *Canary) send(ctx context.Context, id string) error {
	rec := &recorder{ctx: ctx, next: c.cfg.Transport}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn: c.cfg.DSN, Transport: sentry.NewHTTPSyncTransport(), HTTPTransport: rec,
		DisableClientReports: true,
	})
	if err != nil {
		return scrubErr(err, c.cfg.DSN)
	}
	defer client.Close()
	ev := sentry.NewEvent()
	// The SDK keeps an event id it is given, so the id is known before the
	// webhook can arrive.
	ev.EventID = sentry.EventID(id)
	ev.Level = sentry.LevelError
	ev.Message = TitlePrefix + id
	ev.Fingerprint = []string{"sentry-dingtalk-relay-canary", id}
	ev.Tags = map[string]string{canaryTagKey: canaryTagValue}
	client.CaptureEvent(ev, nil, nil)
	status, body, err := rec.result()
	switch {
	case err != nil:
		return scrubErr(err, c.cfg.DSN)
	case status == 0:
		// An event processor dropped it, or the SDK's transport skipped it.
		return errors.New("the SDK did not send the event")
	case status != http.StatusOK:
		return scrubErr(fmt.Errorf("Sentry answered HTTP %d: %s", status, formatter.Shorten(strings.TrimSpace(body), 200)), c.cfg.DSN)
	}
	return nil
}

// recorder remembers Sentry's answer and makes the request end with the round.
type recorder struct {
	ctx  context.Context
	next http.RoundTripper

	mu     sync.Mutex
	status int
	body   string
	err    error
}

func (t *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	defer context.AfterFunc(r.Context(), cancel)()
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer from Sentry in time: %w", err)
		}
		t.err = err
		return nil, err
	}
	// Read before the request's context ends with this call.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		t.err = fmt.Errorf("reading Sentry's answer: %w", err)
		return nil, t.err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	t.status, t.body = resp.StatusCode, string(b)
	return resp, nil
}

func (t *recorder) result() (int, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.body, t.err
}

// failed records a failed round and owes a warning when none was announced
// for this outage yet, or the last was for a round at least Interval older.
// sendErr is why the event could not be sent, for ReasonSend.
func (c *Canary) failed(ctx context.Context, start time.Time, reason, id string, sendErr error) {
	c.failures.WithLabelValues(reason).Inc()
	c.state.Lock()
	defer c.state.Unlock()
	if c.out == nil {
		c.out = &outage{since: start}
	}
	o := c.out
	switch {
	case o.warned.IsZero() || start.Sub(o.warned) >= c.cfg.Interval:
		o.pending = &card{alert: c.warning(reason, id, o.since, sendErr), round: start}
	case o.pending != nil && o.pending.recovery:
		// It failed again before its recovery got out: the outage goes on.
		o.pending = nil
	}
	c.settle(ctx)
}

func (c *Canary) succeeded(ctx context.Context, start, at time.Time, id string) {
	c.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	c.roundTrip.Observe(at.Sub(start).Seconds())
	c.state.Lock()
	defer c.state.Unlock()
	switch {
	case c.out == nil:
	case c.out.warned.IsZero():
		// Nobody was told of the outage, so there is nothing to take back.
		c.out = nil
	default:
		c.out.pending = &card{alert: c.recovery(id, c.out.since, start, at), round: start, recovery: true}
		c.settle(ctx)
	}
}

// settle announces the card owed, if any; c.state must be held.
func (c *Canary) settle(ctx context.Context) {
	if c.out == nil || c.out.pending == nil {
		return
	}
	p := c.out.pending
	if err := c.ann.Announce(ctx, p.alert); err != nil {
		c.log.Error("announcing the canary's card failed; trying again later", "action", p.alert.Action, "err", err)
		return
	}
	if p.recovery {
		c.out = nil
		return
	}
	c.out.warned, c.out.pending = p.round, nil
}

func (c *Canary) owes() bool {
	c.state.Lock()
	defer c.state.Unlock()
	return c.out != nil && c.out.pending != nil
}

func (c *Canary) warning(reason, id string, since time.Time, sendErr error) formatter.Alert {
	w := c.words
	a := formatter.Alert{Resource: Resource, Action: ActionCanaryFailed, Level: levelWarning, Time: c.cfg.Now()}
	sinceText := formatTime(since, c.cfg.Zone)
	if reason == ReasonSend {
		a.Title = w.canarySendTitle
		a.Message = w.canarySend(shortEventID(id), sinceText, formatter.Shorten(sendErr.Error(), 100))
	} else {
		a.Title = w.canaryTimeoutTitle(w.duration(c.cfg.Timeout))
		a.Message = w.canaryTimeout(shortEventID(id), sinceText, w.duration(c.cfg.Timeout))
	}
	return a
}

func (c *Canary) recovery(id string, since, start, at time.Time) formatter.Alert {
	w := c.words
	return formatter.Alert{
		Resource: Resource, Action: ActionCanaryRecovered, Level: levelResolved, Time: at,
		Title:   w.canaryRecovered(w.duration(at.Sub(since))),
		Message: w.canaryRecoveredMsg(shortEventID(id), formatTime(since, c.cfg.Zone), w.duration(at.Sub(start))),
	}
}

// scrubErr masks the DSN and its keys, should an error quote them.
func scrubErr(err error, dsn string) error {
	msg := err.Error()
	clean := strings.ReplaceAll(msg, dsn, "(the DSN)")
	if d, perr := sentry.NewDsn(dsn); perr == nil {
		for _, k := range []string{d.GetSecretKey(), d.GetPublicKey()} {
			if k != "" {
				clean = strings.ReplaceAll(clean, k, mask(k))
			}
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// mask shows the last 4 characters of a key at most.
func mask(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return "****" + k[len(k)-4:]
}
