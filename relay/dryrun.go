package relay

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"

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
// can be tried without any setup. The log record carries the card's title
// and text as fields; with pretty set (LOG_FORMAT=text) the text follows
// the record there as it reads, line by line.
func DryRun(log *slog.Logger, base formatter.Renderer, pretty io.Writer) dispatch.Receiver {
	r := dingtalk.NewReceiver(dingtalk.Robot{Name: DryRunName}, base, nil)
	return dispatch.Receiver{
		Name: DryRunName, Type: "dry-run", Key: DryRunName, Rate: ratelimit.Rate{PerMinute: 60},
		Receiver: &dryRun{Receiver: r, log: log, pretty: pretty},
	}
}

type dryRun struct {
	*dingtalk.Receiver
	log    *slog.Logger
	pretty io.Writer
	mu     sync.Mutex
}

func (d *dryRun) Notify(ctx context.Context, msg notify.Message, _ string) error {
	m, _ := msg.(formatter.Message)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pretty == nil {
		d.log.Info("dry run (no robots in DINGTALK_TOKENS or the routes file): this card would be sent",
			"title", m.Title(), "text", m.Text(), "bytes", len(m.JSON()))
		return nil
	}
	d.log.Info("dry run (no robots in DINGTALK_TOKENS or the routes file): this card would be sent",
		"title", m.Title(), "bytes", len(m.JSON()))
	var b strings.Builder
	for _, line := range strings.Split(m.Text(), "\n") {
		b.WriteString("    │ " + line + "\n")
	}
	_, err := io.WriteString(d.pretty, b.String())
	return err
}
