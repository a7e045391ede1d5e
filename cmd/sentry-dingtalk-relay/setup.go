package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/action"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
)

// setup is what every subcommand runs on, built once from the
// configuration: the receiver table (a dry-run receiver when none is
// configured) and the routes over it. The store is opened by openStore,
// the one place that chooses it.
type setup struct {
	cfg       *config.Config
	log       *slog.Logger
	base      formatter.Renderer
	receivers []dispatch.Receiver
	routes    []route.Route
	// registry takes the metrics of everything built here and the relay's.
	registry *prometheus.Registry
	// actions serves the action pages, when cards carry action links.
	actions *action.Service
	// transport, when set, carries every receiver's requests.
	transport http.RoundTripper
}

// httpClient is the client of a receiver: its package's own (nil) unless
// a transport was given.
func (rt *setup) httpClient() *http.Client {
	if rt.transport == nil {
		return nil
	}
	return &http.Client{Transport: rt.transport, Timeout: 10 * time.Second}
}

// setupOptions are what a subcommand changes of the setup.
type setupOptions struct {
	// Template replaces RELAY_TEMPLATE_FILE when it is not "".
	Template string
	// DryRunOut, when set, also gets the dry run's cards as they read.
	DryRunOut io.Writer
	// Transport, when set, carries every receiver's requests (tests).
	Transport http.RoundTripper
}

// newSetup builds the receiver table.
func newSetup(cfg *config.Config, log *slog.Logger, o setupOptions) (*setup, error) {
	templateFile := o.Template
	if templateFile == "" {
		templateFile = cfg.TemplateFile
	}
	base, err := renderer(cfg, templateFile)
	if err != nil {
		return nil, err
	}
	rt := &setup{cfg: cfg, log: log, base: base, routes: cfg.Routes, registry: prometheus.NewRegistry(), transport: o.Transport}
	if cfg.Actions() {
		rt.actions, err = action.New(action.Config{
			PublicURL: cfg.PublicURL, Key: []byte(cfg.ActionKey), TTL: cfg.ActionTTL, SentryURL: cfg.SentryURL,
			AuthToken: cfg.AuthToken, Language: cfg.Language, Log: log, Registerer: rt.registry,
		})
		if err != nil {
			return nil, err
		}
		base.Actions = action.Cards{Service: rt.actions}
	}
	client := &dingtalk.Client{HTTP: cmp.Or(rt.httpClient(), notify.NewHTTPClient())}
	for _, r := range cfg.Robots {
		rc, err := rt.build(r, base, client)
		if err != nil {
			return nil, fmt.Errorf("%s: robot %q: %w", cfg.RoutesFile, r.Name, err)
		}
		rt.receivers = append(rt.receivers, rc)
	}
	keys := map[string]string{}
	for _, r := range rt.receivers {
		keys[r.Name] = r.Key
	}
	for i, r := range cfg.Robots {
		for _, f := range r.Fallback {
			rt.receivers[i].Fallback = append(rt.receivers[i].Fallback, keys[f])
		}
	}
	if len(rt.receivers) == 0 {
		dry := base
		dry.Keyword = cfg.Keyword
		rt.receivers = []dispatch.Receiver{relay.DryRun(log, dry, o.DryRunOut)}
		rt.routes = slices.Clone(cfg.Routes)
		for i := range rt.routes {
			if len(rt.routes[i].Robots) == 0 {
				rt.routes[i].Robots = []string{relay.DryRunName}
			}
		}
	}
	return rt, nil
}

// build builds the receiver of one configured robot: its package's
// receiver, its queue key (derived from its secret identity, so queued
// alerts follow it when it is renamed) and its rate.
func (rt *setup) build(r config.Receiver, base formatter.Renderer, client *dingtalk.Client) (dispatch.Receiver, error) {
	cfg := rt.cfg
	out := dispatch.Receiver{Name: r.Name, Type: r.Type}
	switch r.Type {
	case config.TypeDingTalk:
		out.Key, out.Rate = queue.RobotKey(r.DingTalk.Token), ratelimit.Rate{PerMinute: cfg.RatePerMinute}
		out.Receiver = dingtalk.NewReceiver(*r.DingTalk, base, client)
	case config.TypeWeCom:
		w, err := wecom.New(*r.WeCom, wecom.Options{Name: r.Name, Language: cfg.Language, Zone: cfg.Zone, HTTP: rt.httpClient()})
		if err != nil {
			return out, err
		}
		out.Key, out.Rate, out.Receiver = queue.RobotKey(w.Identity()), ratelimit.Rate{PerMinute: wecom.DefaultRatePerMinute}, w
	case config.TypeFeishu:
		f, err := feishu.New(*r.Feishu, feishu.Options{Name: r.Name, Language: cfg.Language, Zone: cfg.Zone, HTTP: rt.httpClient()})
		if err != nil {
			return out, err
		}
		out.Key, out.Rate = queue.RobotKey(f.Identity()), ratelimit.Rate{PerMinute: feishu.DefaultRatePerMinute, PerSecond: feishu.PacePerSecond}
		out.Receiver = f
	case config.TypeWebhook:
		h, err := stdwebhook.New(*r.Webhook, stdwebhook.Options{Name: r.Name, Language: cfg.Language, Zone: cfg.Zone, HTTP: rt.httpClient()})
		if err != nil {
			return out, err
		}
		out.Key, out.Rate, out.Receiver = queue.RobotKey(h.Identity()), ratelimit.Rate{PerMinute: h.RatePerMinute()}, h
	case config.TypeEmail:
		m, err := email.New(*r.Email, cfg.SMTP, email.Options{Name: r.Name, Language: cfg.Language, Zone: cfg.Zone})
		if err != nil {
			return out, err
		}
		out.Key, out.Rate, out.Receiver = queue.RobotKey(m.Identity()), ratelimit.Rate{PerMinute: email.DefaultRatePerMinute}, m
	default:
		return out, fmt.Errorf("type %q is not built in", r.Type)
	}
	return out, nil
}

// dryRun reports whether no receiver is configured.
func (rt *setup) dryRun() bool {
	return len(rt.cfg.Robots) == 0
}

// names maps the receivers' queue keys to their names.
func (rt *setup) names() map[string]string {
	out := make(map[string]string, len(rt.receivers))
	for _, r := range rt.receivers {
		out[r.Key] = r.Name
	}
	return out
}

// receiver returns the receiver named name.
func (rt *setup) receiver(name string) (dispatch.Receiver, bool) {
	i := slices.IndexFunc(rt.receivers, func(r dispatch.Receiver) bool { return r.Name == name })
	if i < 0 {
		return dispatch.Receiver{}, false
	}
	return rt.receivers[i], true
}

// renderer builds the card settings shared by every receiver, with the
// card template of file when it is not "".
func renderer(cfg *config.Config, file string) (formatter.Renderer, error) {
	r := formatter.Renderer{Language: cfg.Language, Zone: cfg.Zone}
	if file == "" {
		return r, nil
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return r, fmt.Errorf("RELAY_TEMPLATE_FILE: %w", err)
	}
	t, err := formatter.ParseTemplate(file, string(src), r.Zone)
	if err != nil {
		return r, fmt.Errorf("RELAY_TEMPLATE_FILE: %w", err)
	}
	r.Template = t
	return r, nil
}

// Whether openStore may create what it opens.
const (
	createStore   = false
	existingStore = true
)

// openStore opens the store the configuration names: Redis with
// RELAY_REDIS_URL, else bbolt in RELAY_DATA_DIR. wake is told when a
// receiver's deliveries can be read. With existing set (the admin
// commands) it opens only a store that is there, so a mistyped
// RELAY_DATA_DIR is an error, not an empty store.
func openStore(cfg *config.Config, log *slog.Logger, wake func(string), existing bool) (relay.Storage, error) {
	if existing {
		if err := storeExists(cfg); err != nil {
			return relay.Storage{}, err
		}
	} else if err := writableDataDir(cfg.DataDir); err != nil {
		return relay.Storage{}, err
	}
	if cfg.RedisURL != "" {
		store, err := queue.OpenRedis(cfg.RedisURL, queue.RedisOptions{
			DedupeWindow: cfg.DedupeWindow, SpoolDir: filepath.Join(cfg.DataDir, "spool"), Migrate: cfg.DataDir,
			Notify: wake, Log: log,
		})
		if err != nil {
			return relay.Storage{}, err
		}
		return relay.Storage{
			Store: store, Lock: store,
			Limiter: ratelimit.NewRedis(store.Client(), ratelimit.Period, store.Consumer(), nil),
			// Other relays queue alerts for the receivers this one drains.
			Poll: time.Second,
		}, nil
	}
	lockTimeout := time.Duration(0)
	if existing {
		lockTimeout = 500 * time.Millisecond
	}
	store, err := queue.OpenBolt(cfg.DataDir, queue.BoltOptions{DedupeWindow: cfg.DedupeWindow, Notify: wake, Log: log, LockTimeout: lockTimeout})
	if errors.Is(err, queue.ErrLocked) && existing {
		return relay.Storage{}, fmt.Errorf("a relay is running on RELAY_DATA_DIR %s but its admin socket %s does not answer", cfg.DataDir, filepath.Join(cfg.DataDir, "admin.sock"))
	}
	if err != nil {
		return relay.Storage{}, fmt.Errorf("RELAY_DATA_DIR %s: %w", cfg.DataDir, err)
	}
	return relay.Storage{Store: store, Limiter: ratelimit.NewWindow(ratelimit.Period, nil)}, nil
}

// storeExists checks that RELAY_DATA_DIR holds a relay's store.
func storeExists(cfg *config.Config) error {
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return fmt.Errorf("RELAY_DATA_DIR %s: %w: set RELAY_DATA_DIR to the relay's data directory (these commands never create one)", cfg.DataDir, err)
	}
	if cfg.RedisURL != "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, queue.FileName)); err != nil {
		return fmt.Errorf("RELAY_DATA_DIR %s holds no relay queue (%s): set RELAY_DATA_DIR to the relay's data directory", cfg.DataDir, queue.FileName)
	}
	return nil
}

// writableDataDir makes sure the relay can write RELAY_DATA_DIR, and says
// what to do when it cannot.
func writableDataDir(dir string) error {
	err := os.MkdirAll(dir, 0o750)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".writable-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return nil
		}
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("RELAY_DATA_DIR %s is not writable by this process (uid %d): %v; the container image runs as uid 65532, so a mounted directory must be writable by it (chown -R 65532:65532 on the host, or a volume)", dir, os.Getuid(), err)
	}
	return fmt.Errorf("RELAY_DATA_DIR %s: %w", dir, err)
}
