package relay

import (
	"context"

	"log/slog"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
)

// dryRun stands in for DingTalk when no robot is configured: it logs each
// message it would send, so the relay can be tried without any setup.
type dryRun struct {
	log *slog.Logger
}

func (d *dryRun) Notify(ctx context.Context, _ dingtalk.Robot, msg formatter.Message) (bool, error) {
	d.log.Info("dry run (no DINGTALK_TOKENS): this card would be sent",
		"title", msg.Title(), "bytes", len(msg.JSON()), "message", string(msg.JSON()))
	return false, nil
}
