package relay

import (
	"context"
	"log/slog"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
)

// DryRunName names the receiver that only logs cards.
const DryRunName = "dry-run"

// DryRun is the receiver used when none is configured: it renders DingTalk
// cards and writes each one to the log instead of sending it, so the relay
// can be tried without any setup.
func DryRun(log *slog.Logger, base formatter.Renderer) dispatch.Receiver {
	r := dingtalk.NewReceiver(dingtalk.Robot{Name: DryRunName}, base, nil)
	return dispatch.Receiver{
		Name: DryRunName, Type: "dry-run", Key: DryRunName, Rate: ratelimit.Rate{PerMinute: 60},
		Receiver: &dryRun{Receiver: r, log: log},
	}
}

type dryRun struct {
	*dingtalk.Receiver
	log *slog.Logger
}

// Notify logs the card's title and text as they read in DingTalk (the
// text handler of LOG_FORMAT=text prints them quoted, the JSON handler as
// strings), not the escaped JSON body.
func (d *dryRun) Notify(ctx context.Context, msg notify.Message, _ string) error {
	m, _ := msg.(formatter.Message)
	d.log.Info("dry run (no robots in DINGTALK_TOKENS or the routes file): this card would be sent",
		"title", m.Title(), "text", m.Text(), "bytes", len(m.JSON()))
	return nil
}
