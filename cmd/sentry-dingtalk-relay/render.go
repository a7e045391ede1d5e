package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

// render prints the message a saved Sentry payload produces, for every
// receiver its route picks, without sending anything.
func render(args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resource := fs.String("resource", "", "Sentry-Hook-Resource of the payload (guessed from the body when empty; legacy for the WebHooks plugin)")
	tmpl := fs.String("template", "", "card template to preview (default RELAY_TEMPLATE_FILE)")
	if err := fs.Parse(args); err != nil {
		return errSilent
	}
	if fs.NArg() != 1 {
		return errors.New("usage: render [--resource R] [--template FILE] PAYLOAD.json")
	}
	body, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	rt, err := newSetup(cfg, slog.New(slog.DiscardHandler), setupOptions{Template: *tmpl})
	if err != nil {
		return err
	}
	res := *resource
	if res == "" {
		res = sentry.GuessResource(body)
	}
	if res == sentry.ResourceLegacy {
		res = ""
	}
	wh, err := sentry.Parse(res, body, sentry.Options{SentryURL: cfg.SentryURL, Received: time.Now()})
	if reason, ok := sentry.IsIgnored(err); ok {
		return fmt.Errorf("this payload produces no card: %s", reason)
	}
	if err != nil {
		return err
	}
	keys := map[string]string{}
	for _, r := range rt.receivers {
		keys[r.Name] = r.Key
	}
	routes, err := route.Resolve(rt.routes, keys)
	if err != nil {
		return err
	}
	targets, err := route.New(routes).Route(wh.Alert, "")
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no route matches this alert: the relay would answer 200 ignored (outcome no_route)")
	}
	if rt.dryRun() {
		fmt.Fprintln(stderr, "# no robots configured: the card as the dry run logs it")
	}
	names := rt.names()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	for _, t := range targets {
		r, _ := rt.receiver(names[t.Robot])
		if !rt.dryRun() {
			fmt.Fprintf(stderr, "# robot %s\n", r.Name)
		}
		msg, err := r.Card(formatter.Item{Alert: wh.Alert, Mentions: t.Mentions, Type: t.Type})
		if err != nil {
			return err
		}
		if err := enc.Encode(msg); err != nil {
			return err
		}
	}
	return nil
}
