// Package relay runs the sentry-dingtalk-relay service: the HTTP server
// Sentry posts to, readiness, the admin socket, and the dispatcher that
// delivers to the receivers. It is handed its receivers, routes and store,
// built once from the configuration (package main does that).
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/admin"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/watch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/webhook"
)

// Options configure a Relay.
type Options struct {
	// Addr is the listen address of the HTTP server.
	Addr string
	// DataDir holds the admin socket (and the store, which Storage opened).
	DataDir string
	// MaxBodyBytes is the largest webhook body accepted.
	MaxBodyBytes int64
	// ClientSecrets verify Integration Platform signatures when set: one
	// per Sentry integration.
	ClientSecrets []string
	// WebhookToken is required as ?token= on legacy webhooks when set.
	WebhookToken string
	// SentryURL builds links payloads lack.
	SentryURL string
	// MaxAge is how long an alert may wait before it is a dead letter.
	MaxAge time.Duration
	// FallbackAfter is how long a receiver may be refused before its
	// fallback takes its alerts.
	FallbackAfter time.Duration
	// Zone is the time zone of times the relay writes (fallback notes).
	Zone *time.Location
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Receivers are the receivers (a dry-run one when none is configured).
	Receivers []dispatch.Receiver
	// Routes choose receivers by name.
	Routes []route.Route
	// Storage is the store and what goes with it.
	Storage Storage
	// Log is the logger; nil discards.
	Log *slog.Logger
	// Middleware wraps the HTTP handler (error reporting).
	Middleware []func(http.Handler) http.Handler
	// Version is reported by the build_info metric.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Canary, when its DSN is set, proves every Interval that Sentry still
	// turns events into webhooks (its Registerer and Log are the relay's).
	Canary watch.CanaryConfig
	// Quiet, when After is set, warns when no authentic webhook arrived
	// for that long.
	Quiet watch.QuietConfig
	// Actions, when set, serves the action pages of cards' links under
	// /action/.
	Actions http.Handler
	// Registry takes the relay's metrics; nil means a new one. Parts built
	// before the relay (the action pages) register theirs in it too.
	Registry *prometheus.Registry
}

// Store is the queue a relay runs on: bbolt on local disk, or Redis shared
// by several relays.
type Store interface {
	webhook.Queue
	dispatch.Store
	admin.Store
	// Check reports whether alerts can be stored.
	Check(ctx context.Context) error
	// Sweep forgets expired dedupe keys.
	Sweep(ctx context.Context) (int, error)
	Close() error
}

// Storage is a store with the limiter and the lock that go with it: in
// memory beside bbolt, shared in Redis beside the Redis store.
type Storage struct {
	Store   Store
	Limiter dispatch.Limiter
	// Lock is set when several relays share the store.
	Lock dispatch.Lock
	// Poll is how often a worker looks at a queue other relays fill; 0
	// when the store wakes the workers itself.
	Poll time.Duration
}

// orphanBurier is a store that turns what waits for receivers no longer
// configured into dead letters (the local one: with Redis, a relay still
// running the old configuration during a rollout may be delivering them).
type orphanBurier interface {
	BuryOthers(ctx context.Context, keep func(key string) bool, reason string) (map[string]int, error)
}

// Relay is a running relay.
type Relay struct {
	opts       Options
	log        *slog.Logger
	store      Store
	dispatcher *dispatch.Dispatcher
	router     *route.Router
	registry   *prometheus.Registry
	metrics    *metrics.Metrics
	handler    http.Handler
	receivers  []dispatch.Receiver
	names      map[string]string // queue key -> name
	health     *storeHealth
	canary     *watch.Canary
	quiet      *watch.Quiet
	draining   atomic.Bool

	readyMu     sync.Mutex
	readyAt     time.Time
	readyErr    error
	readyMaxAge time.Duration
}

// New builds the relay on opts.Storage; Run starts it. Until Run, Close
// releases the store.
func New(opts Options) (*Relay, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Receivers) == 0 {
		return nil, errors.New("relay: no receivers (the dry run is one)")
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	r := &Relay{opts: opts, log: opts.Log, store: opts.Storage.Store, registry: opts.Registry,
		receivers: opts.Receivers, names: map[string]string{}, readyMaxAge: time.Second}
	r.health = &storeHealth{Queue: r.store, now: opts.Now, window: storeFailureWindow}
	r.metrics = metrics.New(r.registry)
	r.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "build_info", Help: "Version of the relay; always 1.",
	}, []string{"version"})
	buildInfo.WithLabelValues(opts.Version).Set(1)
	r.registry.MustRegister(buildInfo)

	keys := map[string]string{}
	var named []metrics.Receiver
	for _, rc := range opts.Receivers {
		keys[rc.Name] = rc.Key
		r.names[rc.Key] = rc.Name
		named = append(named, metrics.Receiver{Name: rc.Name, Type: rc.Type})
	}
	routes, err := route.Resolve(opts.Routes, keys)
	if err != nil {
		return nil, err
	}
	r.router = route.New(routes)
	r.metrics.Init(named, sentry.CardActions())

	if o, ok := r.store.(orphanBurier); ok {
		keep := func(key string) bool { _, ok := r.names[key]; return ok }
		buried, err := o.BuryOthers(context.Background(), keep, "robot no longer configured")
		if err != nil {
			return nil, err
		}
		for key, n := range buried {
			r.metrics.DeadLetters.WithLabelValues(key, "orphaned").Add(float64(n))
			r.log.Warn("alerts were queued for a robot that is no longer configured; they are dead letters now (see `deadletters list`, `deadletters replay --all --robot NAME`)",
				"robot_key", key, "alerts", n)
		}
	}
	r.registry.MustRegister(metrics.NewQueueDepth(r.names, func(key string) int { return r.store.Depth(context.Background(), key) }))
	qc := opts.Quiet
	qc.Registerer, qc.Log, qc.Now = r.registry, opts.Log, opts.Now
	r.quiet = watch.NewQuiet(qc, r)
	if opts.Canary.DSN != "" {
		cc := opts.Canary
		cc.Registerer, cc.Log, cc.Now = r.registry, opts.Log, opts.Now
		if r.canary, err = watch.NewCanary(cc, r); err != nil {
			return nil, err
		}
	}
	r.dispatcher = dispatch.New(dispatch.Config{
		Store: r.store, Limiter: opts.Storage.Limiter, Lock: opts.Storage.Lock, Poll: opts.Storage.Poll,
		Metrics: r.metrics, Log: opts.Log, MaxAge: opts.MaxAge, Now: opts.Now,
		FallbackAfter: opts.FallbackAfter, Zone: opts.Zone,
	}, opts.Receivers)
	r.handler = r.routes()
	return r, nil
}

// Wake tells the dispatcher that deliveries for the receiver key wait: the
// store calls it once they can be read.
func (r *Relay) Wake(key string) {
	if r.dispatcher != nil {
		r.dispatcher.Wake(key)
	}
}

// Handler returns the relay's HTTP handler.
func (r *Relay) Handler() http.Handler { return r.handler }

func (r *Relay) routes() http.Handler {
	mux := chi.NewRouter()
	// The recoverer is outermost: error reporting inside it sees a panic,
	// reports it and panics again for the recoverer to answer 500.
	mux.Use(recoverer(r.log))
	for _, m := range r.opts.Middleware {
		mux.Use(m)
	}
	hook := &webhook.Handler{
		ClientSecrets: r.opts.ClientSecrets, Token: r.opts.WebhookToken, MaxBody: r.opts.MaxBodyBytes,
		SentryURL: r.opts.SentryURL, Queue: r.health, Router: r.router,
		Metrics: r.metrics, Log: r.log, Now: r.opts.Now,
		Watchers: []webhook.Watcher{watchers{quiet: r.quiet, canary: r.canary}},
	}
	action := &webhook.RuleAction{ClientSecrets: r.opts.ClientSecrets, Router: r.router, Log: r.log}
	mux.Post("/sentry/webhook", hook.ServeHTTP)
	mux.Post("/sentry/webhook/{route}", hook.ServeHTTP)
	mux.Post("/sentry/alert-rule-action", action.Save)
	mux.Get("/sentry/options/routes", action.Options)
	mux.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Get("/readyz", r.ready)
	if r.opts.Actions != nil {
		mux.Handle("/action/*", r.opts.Actions)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{Registry: r.registry}))
	return mux
}

// ready answers 200 when alerts can be stored and the relay is not shutting
// down, else 503 with the reason. The store's own check is cached for a
// second so a flood of probes cannot become a flood of fsyncs.
func (r *Relay) ready(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	if err := r.health.failing(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "cannot store alerts: %v\n", err)
		return
	}
	r.readyMu.Lock()
	if now := r.opts.Now(); now.Sub(r.readyAt) >= r.readyMaxAge {
		r.readyErr = r.store.Check(req.Context())
		r.readyAt = now
	}
	err := r.readyErr
	r.readyMu.Unlock()
	switch {
	case errors.Is(err, queue.ErrDegraded):
		// Webhooks are still accepted (spooled): stay in the Service.
		fmt.Fprintf(w, "degraded: %v\n", err)
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "queue not writable: %v\n", err)
	default:
		w.Write([]byte("ok\n"))
	}
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting webhooks, lets sends in progress finish, and closes the queue.
func (r *Relay) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.opts.Addr)
	if err != nil {
		r.store.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("RELAY_ADDR %s is in use by another process (another relay?): stop it or choose another port", r.opts.Addr)
		}
		return fmt.Errorf("RELAY_ADDR %s: cannot listen: %w", r.opts.Addr, err)
	}
	return r.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	svc := &admin.Service{Store: r.store, Names: r.names}
	wake := func(keys []string) {
		for _, k := range keys {
			r.Wake(k)
		}
	}
	extra := map[string]http.Handler{}
	if r.canary != nil {
		extra["POST /canary"] = r.canaryHandler()
	}
	adm, err := admin.Listen(r.opts.DataDir, svc, wake, r.log, extra)
	if err != nil {
		r.log.Warn("admin socket unavailable; deadletters commands need the relay stopped", "err", err)
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if adm != nil {
		go adm.Serve()
	}
	// After the server listens: the canary's first round trip starts at
	// once, and its webhook must find the relay answering.
	dctx, stopDispatch := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Deliver(dctx); close(done) }()
	r.log.Info("relay listening", "addr", ln.Addr().String(), "receivers", r.receiverNames(), "data_dir", r.opts.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	}

	r.draining.Store(true)
	timeout := r.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	r.log.Info("shutting down: /readyz answers 503, no new webhooks; waiting for webhooks being answered and sends in progress",
		"timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		r.log.Warn("webhooks still in progress at shutdown", "err", err)
	}
	if adm != nil {
		adm.Shutdown(sctx)
	}
	stopDispatch()
	select {
	case <-done:
	case <-sctx.Done():
		r.log.Warn("sends still in progress at shutdown; they will be retried after restart")
	}
	r.log.Info("closing the queue: what was accepted is kept for the next start")
	if err := r.store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	r.log.Info("relay stopped")
	return runErr
}

func (r *Relay) receiverNames() []string {
	out := make([]string, len(r.receivers))
	for i, rc := range r.receivers {
		out[i] = rc.Name
	}
	return out
}

// Deliver runs the dispatcher, the dedupe sweep, the quiet watch and the
// canary until ctx ends, and returns once their work in progress is done.
// Serve runs it beside the HTTP server; alone it is the relay without HTTP,
// for a test on virtual time that posts to Handler.
func (r *Relay) Deliver(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.dispatcher.Run(ctx) })
	wg.Go(func() { r.sweep(ctx) })
	wg.Go(func() { r.quiet.Run(ctx) })
	if r.canary != nil {
		wg.Go(func() { r.canary.Run(ctx) })
	}
	wg.Wait()
}

// sweep forgets expired dedupe keys now and then.
func (r *Relay) sweep(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := r.store.Sweep(ctx); err != nil {
				r.log.Error("sweeping dedupe keys failed", "err", err)
			} else if n > 0 {
				r.log.Debug("dedupe keys expired", "count", n)
			}
		}
	}
}

// Close releases the relay's queue when it was built but never run.
func (r *Relay) Close() error {
	return r.store.Close()
}

// recoverer answers 500 for a panicking handler instead of dropping the
// connection. chi's middleware.Recoverer answers with a stack trace in
// plain text; Sentry's request log shows this JSON instead.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("handler panicked", "panic", fmt.Sprint(v), "path", req.URL.Path)
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
					w.WriteHeader(http.StatusInternalServerError)
					w.Write([]byte(`{"error":"internal error"}` + "\n"))
				}
			}()
			next.ServeHTTP(w, req)
		})
	}
}
