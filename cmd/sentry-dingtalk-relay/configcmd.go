package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

// showConfig prints the effective configuration: the receivers (tokens
// masked), the routes and what each reaches, and the warnings start-up
// would log. Invalid configuration is an error (exit 1), so a user
// migrating from a plugin can check the pairing of tokens and secrets
// before going live.
func showConfig(args, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("config takes no arguments (got %q)", args[0])
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	rt, err := newSetup(cfg, slog.New(slog.DiscardHandler), setupOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "robots:")
	if rt.dryRun() {
		fmt.Fprintln(stdout, "  (none: dry run, every card is written to the log)")
	}
	for i, r := range cfg.Robots {
		line := describeReceiver(rt.receivers[i])
		if r.DingTalk != nil {
			line = robotLine(cfg, r)
		}
		if len(r.Fallback) > 0 {
			line += ", fallback " + strings.Join(r.Fallback, ", ")
		}
		fmt.Fprintf(stdout, "  %-14s %s\n", r.Name, line)
	}
	fmt.Fprintln(stdout, "routes (in order; the first that matches takes the alert unless it says continue):")
	for _, rt := range rt.routes {
		fmt.Fprintf(stdout, "  %-14s %s -> %s%s\n", rt.Name, matchLine(rt), strings.Join(rt.Robots, ", "), mentionsLine(rt.Mentions))
	}
	var unused []string
	for _, r := range cfg.Robots {
		if !slices.ContainsFunc(rt.routes, func(x route.Route) bool { return slices.Contains(x.Robots, r.Name) }) {
			unused = append(unused, r.Name)
		}
	}
	if len(unused) > 0 {
		fmt.Fprintf(stdout, "robots no route uses: %s\n", strings.Join(unused, ", "))
	}
	auth := "none: every webhook is accepted"
	switch {
	case len(cfg.ClientSecrets) > 0 && cfg.WebhookToken != "":
		auth = fmt.Sprintf("Sentry signatures (%d client secrets) and the legacy ?token=", len(cfg.ClientSecrets))
	case len(cfg.ClientSecrets) > 0:
		auth = fmt.Sprintf("Sentry signatures (%d client secrets); legacy requests unauthenticated", len(cfg.ClientSecrets))
	case cfg.WebhookToken != "":
		auth = "the legacy ?token= only; Integration Platform requests unauthenticated"
	}
	fmt.Fprintf(stdout, "authentication: %s\n", auth)
	fmt.Fprintf(stdout, "store: %s\n", storeLine(cfg))
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return nil
}

func robotLine(cfg *config.Config, r config.Receiver) string {
	d := r.DingTalk
	parts := []string{"dingtalk " + d.MaskedToken()}
	if d.Secret != "" {
		parts = append(parts, "signed")
	} else {
		parts = append(parts, "not signed")
	}
	if d.Keyword != "" {
		parts = append(parts, "keyword "+d.Keyword)
	}
	if d.MsgType != "" {
		parts = append(parts, d.MsgType)
	}
	if d.URL != "" && d.URL != cfg.APIURL {
		parts = append(parts, "endpoint "+d.URL)
	}
	return strings.Join(parts, ", ")
}

func matchLine(rt route.Route) string {
	if rt.CatchAll() {
		return "every alert"
	}
	m := rt.Match
	var parts []string
	for _, f := range []struct {
		name  string
		globs []string
	}{{"project", m.Projects}, {"environment", m.Environments}, {"level", m.Levels}, {"resource", m.Resources}} {
		if len(f.globs) > 0 {
			parts = append(parts, f.name+" "+strings.Join(f.globs, "|"))
		}
	}
	return strings.Join(parts, ", ")
}

func mentionsLine(m route.Mentions) string {
	var who []string
	who = append(who, m.Mobiles...)
	who = append(who, m.UserIDs...)
	if m.All {
		who = append(who, "all")
	}
	if len(who) == 0 {
		return ""
	}
	s := ", mentioning " + strings.Join(who, ", ")
	if len(m.Levels) > 0 {
		s += " (levels " + strings.Join(m.Levels, ", ") + ")"
	}
	return s
}

func storeLine(cfg *config.Config) string {
	if cfg.RedisURL != "" {
		return "Redis (RELAY_REDIS_URL), spool in " + cfg.DataDir
	}
	return "bbolt in " + cfg.DataDir
}
