package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
)

// testRobots sends a test card to every robot and prints one line per robot:
// ok, or DingTalk's errcode and message and what to do about it.
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
	base, err := renderer(cfg, "")
	if err != nil {
		return err
	}
	client := &dingtalk.Client{HTTP: dingtalk.NewHTTPClient()}
	failed := 0
	for _, r := range robots(cfg) {
		rend := base
		if r.Keyword != "" {
			rend.Keyword = r.Keyword
		}
		msg := rend.TestCard(time.Now(), r.Name)
		err := client.Send(ctx, r.Robot, msg.JSON())
		if err == nil {
			fmt.Fprintf(stdout, "%-12s %s  ok\n", r.Name, r.MaskedToken())
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%-12s %s  FAILED  %s\n%14s fix: %s\n", r.Name, r.MaskedToken(), describe(err), "", dingtalk.Hint(err, r.Robot))
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d robots failed\n", failed, len(cfg.Robots))
		return errSilent
	}
	return nil
}

// describe says what DingTalk answered, or what went wrong on the way.
func describe(err error) string {
	var e *dingtalk.Error
	if errors.As(err, &e) {
		switch {
		case e.Code != 0:
			return fmt.Sprintf("errcode %d: %s", e.Code, e.Message)
		case e.Err != nil:
			return e.Err.Error()
		}
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return err.Error()
}
