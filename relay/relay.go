// Package relay runs the sentry-dingtalk-relay service: the HTTP server
// Sentry posts to, the durable queue, and the dispatcher that delivers to
// DingTalk.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/webhook"
)

// Robot is a configured DingTalk robot.
type Robot struct {
	dingtalk.Robot
	// Keyword is the robot's custom keyword ("" for none).
	Keyword string
	// Type is the message type: formatter.TypeMarkdown or TypeActionCard.
	Type string
}

// Options configure a Relay.
type Options struct {
	// Addr is the listen address of the HTTP server.
	Addr string
	// DataDir holds the queue and the admin socket.
	DataDir string
	// MaxBodyBytes is the largest webhook body accepted.
	MaxBodyBytes int64
	// ClientSecret verifies Integration Platform signatures when set.
	ClientSecret string
	// WebhookToken is required as ?token= on legacy webhooks when set.
	WebhookToken string
	// SentryURL builds links payloads lack.
	SentryURL string
	// RatePerMinute is each robot's send budget per sliding minute.
	RatePerMinute int
	// MaxAge is how long an alert may wait before it is a dead letter.
	MaxAge time.Duration
	// DedupeWindow is how long a Sentry delivery is remembered.
	DedupeWindow time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Robots are the robots; none means dry run (cards are logged).
	Robots []Robot
	// Routes choose robots by name; they must name existing robots.
	// Without robots, one route to the dry-run robot is used.
	Routes []route.Route
	// Renderer holds the card settings shared by all robots (language,
	// zone, template); each robot adds its keyword and type.
	Renderer formatter.Renderer
	// HTTPClient sends to DingTalk; nil means dingtalk.NewHTTPClient().
	HTTPClient *http.Client
	// Log is the logger; nil discards.
	Log *slog.Logger
	// Middleware wraps the HTTP handler (error reporting).
	Middleware []func(http.Handler) http.Handler
	// RedisURL, when set, puts the queue, the rate limit, the dedupe
	// memory and the robots' leases in Redis, shared by several relays;
	// DataDir then only holds a spool for Redis outages.
	RedisURL string
	// Version is reported by the build_info metric.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the queue a relay runs on: bbolt on local disk, or Redis shared
// by several relays.
type Store interface {
	webhook.Queue
	dispatch.Store
	DeadLetterStore
	// Check reports whether alerts can be stored.
	Check(ctx context.Context) error
	// Sweep forgets expired dedupe keys.
	Sweep(ctx context.Context) (int, error)
	Close() error
}

// DryRunRobot names the robot that only logs cards.
const DryRunRobot = "dry-run"

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
	robots     []dispatch.Robot
	draining   atomic.Bool

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	readyOnce time.Duration
}

// New opens the queue in DataDir and builds the relay.
func New(opts Options) (*Relay, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = dingtalk.NewHTTPClient()
	}
	r := &Relay{opts: opts, log: opts.Log, registry: prometheus.NewRegistry(), readyOnce: time.Second}
	r.metrics = metrics.New(r.registry)
	r.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "build_info", Help: "Version of the relay; always 1.",
	}, []string{"version"})
	buildInfo.WithLabelValues(opts.Version).Set(1)
	r.registry.MustRegister(buildInfo)

	robots, routes, err := r.robotsAndRoutes()
	if err != nil {
		return nil, err
	}
	r.robots = robots
	r.router = route.New(routes)

	// The store tells the dispatcher when deliveries can be read; the
	// dispatcher exists before the first webhook can arrive.
	wake := func(robot string) { r.dispatcher.Wake(robot) }
	names := map[string]string{}
	for _, rb := range robots {
		names[rb.Key] = rb.Name
	}
	dcfg := dispatch.Config{Metrics: r.metrics, Log: opts.Log, MaxAge: opts.MaxAge, Now: opts.Now}
	if opts.RedisURL != "" {
		store, err := queue.OpenRedis(opts.RedisURL, queue.RedisOptions{
			DedupeWindow: opts.DedupeWindow, SpoolDir: filepath.Join(opts.DataDir, "spool"), Migrate: opts.DataDir,
			Notify: wake, Log: opts.Log,
		})
		if err != nil {
			return nil, err
		}
		r.store = store
		dcfg.Store, dcfg.Lock = store, store
		dcfg.Limiter = ratelimit.NewRedis(store.Client(), opts.RatePerMinute, ratelimit.Period, store.Consumer())
		// Other relays queue alerts for the robots this one drains.
		dcfg.Poll = time.Second
	} else {
		store, err := queue.OpenBolt(opts.DataDir, queue.BoltOptions{DedupeWindow: opts.DedupeWindow, Now: opts.Now, Notify: wake, Log: opts.Log})
		if err != nil {
			return nil, err
		}
		r.store = store
		if err := r.buryOrphans(store, names); err != nil {
			store.Close()
			return nil, err
		}
		dcfg.Store = store
		dcfg.Limiter = ratelimit.NewWindow(opts.RatePerMinute, ratelimit.Period, opts.Now)
	}
	r.registry.MustRegister(metrics.NewQueueDepth(names, r.store.Depth))
	r.dispatcher = dispatch.New(dcfg, robots)
	r.handler = r.routes()
	return r, nil
}

// robotsAndRoutes builds the dispatcher's robots and resolves route robot
// names to queue keys.
func (r *Relay) robotsAndRoutes() ([]dispatch.Robot, []route.Route, error) {
	client := &dingtalk.Client{HTTP: r.opts.HTTPClient, Now: r.opts.Now}
	robots := r.opts.Robots
	routes := r.opts.Routes
	var dry *dryRun
	if len(robots) == 0 {
		robots = []Robot{{Robot: dingtalk.Robot{Name: DryRunRobot, Token: DryRunRobot}}}
		dry = &dryRun{log: r.log}
		m := route.Mentions{}
		if len(routes) > 0 {
			m = routes[0].Mentions
		}
		routes = []route.Route{{Name: "default", Robots: []string{DryRunRobot}, Mentions: m}}
	}
	keys := map[string]string{}
	var out []dispatch.Robot
	for _, rb := range robots {
		rend := r.opts.Renderer
		if rb.Keyword != "" {
			rend.Keyword = rb.Keyword
		}
		if rb.Type != "" {
			rend.Type = rb.Type
		}
		key := queue.RobotKey(rb.Token)
		if dry != nil {
			key = DryRunRobot
		}
		keys[rb.Name] = key
		var n dispatch.Notifier = client
		if dry != nil {
			n = dry
		}
		out = append(out, dispatch.Robot{Robot: rb.Robot, Key: key, Renderer: &rend, Notifier: n})
	}
	resolved := make([]route.Route, len(routes))
	for i, rt := range routes {
		rt.Robots = nil
		for _, name := range routes[i].Robots {
			key, ok := keys[name]
			if !ok {
				return nil, nil, fmt.Errorf("route %q: unknown robot %q", rt.Name, name)
			}
			rt.Robots = append(rt.Robots, key)
		}
		resolved[i] = rt
	}
	return out, resolved, nil
}

// buryOrphans turns deliveries queued for robots no longer configured into
// dead letters, where they can be listed and replayed to another robot.
// (Only on the local store: with Redis, a relay still running the old
// configuration during a rollout may be delivering them.)
func (r *Relay) buryOrphans(store *queue.Bolt, names map[string]string) error {
	for _, key := range store.Robots() {
		if _, ok := names[key]; ok {
			continue
		}
		ds, err := store.Pending(context.Background(), key, 1<<30)
		if err != nil {
			return err
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		if err := store.Bury(context.Background(), key, ids, "robot no longer configured"); err != nil {
			return err
		}
		r.log.Warn("alerts were queued for a robot that is no longer configured; they are dead letters now (see `deadletters list`, `deadletters replay --all --robot NAME`)",
			"robot_key", key, "alerts", len(ds))
	}
	return nil
}

// Handler returns the relay's HTTP handler.
func (r *Relay) Handler() http.Handler { return r.handler }

// Registry returns the relay's metrics registry.
func (r *Relay) Registry() *prometheus.Registry { return r.registry }

func (r *Relay) routes() http.Handler {
	mux := chi.NewRouter()
	// The recoverer is outermost: error reporting inside it sees a panic,
	// reports it and panics again for the recoverer to answer 500.
	mux.Use(recoverer(r.log))
	for _, m := range r.opts.Middleware {
		mux.Use(m)
	}
	hook := &webhook.Handler{
		ClientSecret: r.opts.ClientSecret, Token: r.opts.WebhookToken, MaxBody: r.opts.MaxBodyBytes,
		SentryURL: r.opts.SentryURL, Queue: r.store, Router: r.router,
		Metrics: r.metrics, Log: r.log, Now: r.opts.Now,
	}
	action := &webhook.RuleAction{ClientSecret: r.opts.ClientSecret, Router: r.router, Log: r.log}
	mux.Post("/sentry/webhook", hook.ServeHTTP)
	mux.Post("/sentry/webhook/{route}", hook.ServeHTTP)
	mux.Post("/sentry/alert-rule-action", action.Save)
	mux.Get("/sentry/options/routes", action.Options)
	mux.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Get("/readyz", r.ready)
	mux.Handle("/metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{Registry: r.registry}))
	return mux
}

// ready answers 200 when the queue can take writes and the relay is not
// shutting down, else 503 with the reason. The store check is cached for a
// second so a flood of probes cannot become a flood of fsyncs.
func (r *Relay) ready(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	r.readyMu.Lock()
	if now := r.opts.Now(); now.Sub(r.readyAt) >= r.readyOnce {
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
		return fmt.Errorf("listen on %s: %w", r.opts.Addr, err)
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
	admin, err := r.listenAdmin()
	if err != nil {
		r.log.Warn("admin socket unavailable; deadletters commands need the relay stopped", "err", err)
	}

	dctx, stopDispatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.dispatcher.Run(dctx) })
	wg.Go(func() { r.sweep(dctx) })

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if admin != nil {
		go func() { admin.srv.Serve(admin.ln) }()
	}
	r.log.Info("relay listening", "addr", ln.Addr().String(), "robots", len(r.robots), "data_dir", r.opts.DataDir)

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
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		r.log.Warn("webhooks still in progress at shutdown", "err", err)
	}
	if admin != nil {
		admin.srv.Shutdown(sctx)
		os.Remove(admin.path)
	}
	stopDispatch()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		r.log.Warn("sends still in progress at shutdown; they will be retried after restart")
	}
	if err := r.store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	r.log.Info("relay stopped")
	return runErr
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

// AdminSocket is the path of the admin socket in a data directory.
func AdminSocket(dataDir string) string {
	return filepath.Join(dataDir, "admin.sock")
}

// recoverer answers 500 for a panicking handler instead of dropping the
// connection.
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
