package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/admin"
)

// canary runs one round trip of the canary by hand, through the running
// relay's admin socket: only that relay sees the webhook Sentry sends back.
func canary(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("canary takes no arguments (got %q): it uses the relay's RELAY_CANARY_* settings", args[0])
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	if cfg.CanaryDSN == "" {
		return errors.New("RELAY_CANARY_DSN is not set: the canary sends its event to that project's DSN")
	}
	c, err := admin.Dial(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("no relay answers on the admin socket in RELAY_DATA_DIR %s (%v): the canary needs the running relay, which receives Sentry's webhook", cfg.DataDir, err)
	}
	fmt.Fprintf(stdout, "sending a canary event and waiting up to %s for Sentry's webhook…\n", cfg.CanaryTimeout)
	ctx, cancel := context.WithTimeout(ctx, cfg.CanaryTimeout+time.Minute)
	defer cancel()
	var res relay.CanaryResult
	if err := c.Call(ctx, http.MethodPost, "/canary", nil, &res); err != nil {
		return err
	}
	if !res.OK {
		fmt.Fprintf(stdout, "FAILED: %s\n", res.Error)
		return errSilent
	}
	fmt.Fprintf(stdout, "ok: Sentry sent the canary's webhook back after %s\n", time.Duration(res.RoundTrip*float64(time.Second)).Round(time.Millisecond))
	return nil
}
