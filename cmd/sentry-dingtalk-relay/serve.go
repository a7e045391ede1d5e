package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/watch"
)

func serve(ctx context.Context, args, environ []string, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments (got %q): configuration comes from the environment", args[0])
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	var middleware []func(http.Handler) http.Handler
	if cfg.SentryDSN != "" {
		rep, err := newReporter(cfg.SentryDSN, log)
		if err != nil {
			return err
		}
		defer rep.flush()
		log = rep.logger
		middleware = append(middleware, rep.middleware)
	}
	var pretty io.Writer
	if cfg.LogFormat == "text" {
		pretty = stderr
	}
	rt, err := newSetup(cfg, log, setupOptions{DryRunOut: pretty})
	if err != nil {
		return err
	}
	warnings(rt)
	var r *relay.Relay
	storage, err := openStore(cfg, log, func(key string) { r.Wake(key) }, createStore)
	if err != nil {
		return err
	}
	var actions http.Handler
	if rt.actions != nil {
		actions = rt.actions.Handler()
	}
	r, err = relay.New(relay.Options{
		Actions: actions,
		Addr:    cfg.Addr, DataDir: cfg.DataDir, MaxBodyBytes: cfg.MaxBodyBytes,
		ClientSecrets: cfg.ClientSecrets, WebhookToken: cfg.WebhookToken, SentryURL: cfg.SentryURL,
		MaxAge: cfg.MaxAge, ShutdownTimeout: cfg.ShutdownTimeout, FallbackAfter: cfg.FallbackAfter, Zone: cfg.Zone,
		Receivers: rt.receivers, Routes: rt.routes, Storage: storage,
		Log: log, Middleware: middleware, Version: version,
		Registry: rt.registry,
		Canary:   watch.CanaryConfig{DSN: cfg.CanaryDSN, Interval: cfg.CanaryInterval, Timeout: cfg.CanaryTimeout, Language: cfg.Language, Zone: cfg.Zone},
		Quiet:    watch.QuietConfig{After: cfg.QuietAlert, Language: cfg.Language, Zone: cfg.Zone},
	})
	if err != nil {
		storage.Store.Close()
		return err
	}
	return r.Run(ctx)
}

// warnings tells at start-up what a user may not have meant.
func warnings(rt *setup) {
	cfg, log := rt.cfg, rt.log
	if rt.dryRun() {
		log.Warn("no robots configured (DINGTALK_TOKENS and the routes file name none): dry run, every card is written to this log instead of being sent")
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	switch {
	case len(cfg.ClientSecrets) == 0 && cfg.WebhookToken == "":
		log.Warn("neither SENTRY_CLIENT_SECRET nor RELAY_WEBHOOK_TOKEN is set: every webhook is accepted without authentication")
	case len(cfg.ClientSecrets) > 0 && cfg.WebhookToken == "":
		log.Warn("RELAY_WEBHOOK_TOKEN is not set: legacy WebHooks plugin requests (no Sentry-Hook-Resource header) are accepted without authentication")
	case len(cfg.ClientSecrets) == 0:
		log.Warn("SENTRY_CLIENT_SECRET is not set: Integration Platform webhooks are accepted without a signature check")
	}
	for _, r := range cfg.Robots {
		if d := r.DingTalk; d != nil && d.Secret == "" && d.Keyword == "" {
			log.Info("robot has neither a SEC secret nor a keyword configured; DingTalk requires one of them or an IP whitelist", "robot", r.Name, "token", dingtalk.Mask(d.Token))
		}
	}
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
