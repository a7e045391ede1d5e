package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

// render prints the DingTalk message a saved Sentry payload produces, for
// every robot its route picks, without sending anything.
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
	file := cfg.TemplateFile
	if *tmpl != "" {
		file = *tmpl
	}
	base, err := renderer(cfg, file)
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
	rts := routes(cfg)
	var targets []queue.Target
	if len(cfg.Robots) == 0 {
		fmt.Fprintln(stderr, "# no robots configured: the card as the dry run logs it")
		targets = []queue.Target{{Mentions: rts[0].Mentions.For(wh.Alert)}}
	} else if targets, err = route.New(rts).Route(wh.Alert, ""); err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no route matches this alert: the relay would answer 200 ignored")
	}
	byName := map[string]config.Robot{}
	for _, r := range cfg.Robots {
		byName[r.Name] = r
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	for _, t := range targets {
		rend := base
		if r, ok := byName[t.Robot]; ok {
			fmt.Fprintf(stderr, "# robot %s\n", r.Name)
			if r.Keyword != "" {
				rend.Keyword = r.Keyword
			}
			if r.Type != "" {
				rend.Type = r.Type
			}
		}
		if t.Type != "" {
			rend.Type = t.Type
		}
		msg, err := rend.Card(wh.Alert, t.Mentions)
		if err != nil {
			return err
		}
		if err := enc.Encode(msg); err != nil {
			return err
		}
	}
	return nil
}
