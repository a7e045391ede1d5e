package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
)

// testRobots sends a test card to every receiver and prints one line per
// receiver: ok, or what the service answered and what to do about it.
func testRobots(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("test takes no arguments (got %q)", args[0])
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	if len(cfg.Robots) == 0 {
		return errors.New("no robots configured: set DINGTALK_TOKENS (and DINGTALK_SECRETS for robots that sign)")
	}
	rt, err := newSetup(cfg, slog.New(slog.DiscardHandler), setupOptions{})
	if err != nil {
		return err
	}
	failed := 0
	now := time.Now()
	for i, r := range rt.receivers {
		a := testAlert(cfg, r.Name, now)
		msg, err := r.Card(formatter.Item{Alert: a})
		if err == nil {
			err = r.Notify(ctx, msg, fmt.Sprintf("test-%d-%d", now.UnixNano(), i))
		}
		who := fmt.Sprintf("%-12s %s", r.Name, describeReceiver(r))
		if err == nil {
			fmt.Fprintf(stdout, "%s  ok\n", who)
			continue
		}
		failed++
		hint := ""
		if _, e := notify.VerdictOf(err); e != nil {
			hint = e.Hint
		}
		fmt.Fprintf(stdout, "%s  FAILED  %s\n%14s fix: %s\n", who, describe(err), "", hint)
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d robots failed\n", failed, len(rt.receivers))
		return errSilent
	}
	return nil
}

// testAlert is what the test card says.
func testAlert(cfg *config.Config, receiver string, now time.Time) formatter.Alert {
	l := formatter.LabelsFor(cfg.Language)
	return formatter.Alert{Resource: "relay", Action: "test", Level: "info", Title: "sentry-dingtalk-relay: " + l.TestTitle,
		Message: l.TestText + " (" + receiver + ")", Time: now}
}

// describeReceiver is how a receiver is shown in one line: its type and
// its masked token, key or address.
func describeReceiver(r dispatch.Receiver) string {
	switch x := r.Receiver.(type) {
	case *dingtalk.Receiver:
		return x.Robot.MaskedToken()
	case *wecom.Receiver:
		return "wecom " + notify.Mask(x.Identity())
	case *feishu.Receiver:
		return "feishu " + notify.Mask(x.Identity())
	case *stdwebhook.Receiver:
		return "webhook " + x.Endpoint()
	case *email.Receiver:
		return "email " + strings.Join(x.Recipients(), ", ")
	}
	return r.Type
}

// describe says what the receiver answered, or what went wrong on the way.
func describe(err error) string {
	if _, e := notify.VerdictOf(err); e != nil {
		switch {
		case e.Detail != "" && e.Code != "":
			return fmt.Sprintf("errcode %s: %s", e.Code, e.Detail)
		case e.Err != nil:
			return e.Err.Error()
		}
		return e.Code
	}
	return err.Error()
}
