package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
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
	opts, err := relayOptions(cfg, log)
	if err != nil {
		return err
	}
	opts.Middleware = middleware
	warnings(cfg, log)
	r, err := relay.New(opts)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// warnings tells at start-up what a user may not have meant.
func warnings(cfg *config.Config, log *slog.Logger) {
	if len(cfg.Robots) == 0 {
		log.Warn("no robots configured (DINGTALK_TOKENS is empty): dry run, every card is written to this log instead of DingTalk")
	}
	switch {
	case cfg.ClientSecret == "" && cfg.WebhookToken == "":
		log.Warn("neither SENTRY_CLIENT_SECRET nor RELAY_WEBHOOK_TOKEN is set: every webhook is accepted without authentication")
	case cfg.ClientSecret != "" && cfg.WebhookToken == "":
		log.Warn("RELAY_WEBHOOK_TOKEN is not set: legacy WebHooks plugin requests (no Sentry-Hook-Resource header) are accepted without authentication")
	case cfg.ClientSecret == "":
		log.Warn("SENTRY_CLIENT_SECRET is not set: Integration Platform webhooks are accepted without a signature check")
	}
	for _, r := range cfg.Robots {
		if r.Secret == "" && r.Keyword == "" && cfg.Keyword == "" {
			log.Info("robot has neither a SEC secret nor a keyword configured; DingTalk requires one of them or an IP whitelist", "robot", r.Name, "token", dingtalk.Mask(r.Token))
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

// relayOptions turns the configuration into the relay's options.
func relayOptions(cfg *config.Config, log *slog.Logger) (relay.Options, error) {
	rend, err := renderer(cfg, cfg.TemplateFile)
	if err != nil {
		return relay.Options{}, err
	}
	return relay.Options{
		Addr: cfg.Addr, DataDir: cfg.DataDir, MaxBodyBytes: cfg.MaxBodyBytes,
		ClientSecret: cfg.ClientSecret, WebhookToken: cfg.WebhookToken, SentryURL: cfg.SentryURL,
		RatePerMinute: cfg.RatePerMinute, MaxAge: cfg.MaxAge, DedupeWindow: cfg.DedupeWindow,
		ShutdownTimeout: cfg.ShutdownTimeout, RedisURL: cfg.RedisURL,
		Robots: robots(cfg), Routes: routes(cfg), Renderer: rend,
		Log: log, Version: version,
	}, nil
}

// renderer builds the card settings shared by every robot, with the card
// template of file when it is not "".
func renderer(cfg *config.Config, file string) (formatter.Renderer, error) {
	r := formatter.Renderer{Language: cfg.Language, Keyword: cfg.Keyword, Zone: cfg.Zone}
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

func robots(cfg *config.Config) []relay.Robot {
	out := make([]relay.Robot, len(cfg.Robots))
	for i, r := range cfg.Robots {
		out[i] = relay.Robot{
			Robot:   dingtalk.Robot{Name: r.Name, Token: r.Token, URL: r.URL, Secret: r.Secret, Line: r.Line},
			Keyword: r.Keyword, Type: r.Type,
		}
	}
	return out
}

func routes(cfg *config.Config) []route.Route {
	out := make([]route.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rt := route.Route{
			Name: r.Name, Robots: r.Robots, Type: r.Type, Continue: r.Continue,
			Mentions: route.Mentions{Mobiles: r.Mentions.Mobiles, UserIDs: r.Mentions.UserIDs, All: r.Mentions.All, Levels: r.Mentions.Levels},
		}
		if m := r.Match; m != nil {
			rt.Match = &route.Match{Projects: m.Projects, Environments: m.Environments, Levels: m.Levels, Resources: m.Resources}
		}
		out[i] = rt
	}
	return out
}
