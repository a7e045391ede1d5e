// Package watch notices when Sentry stops sending webhooks, which a relay
// cannot see from the webhooks themselves: on self-hosted 26.7+ alert rules
// made before the upgrade stop firing without any error.
//
// The Canary sends a synthetic error event to a Sentry project on a schedule
// and waits for the webhook it must cause; the Quiet watch warns when no
// webhook at all arrived for a while. Both announce a warning card once (the
// canary repeats it at most once per interval) and a recovery card when
// things work again.
package watch

import (
	"context"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Announcer delivers a relay-made alert (warning or recovery) to the default
// route's robots; the caller implements it by queueing the alert durably like
// any other.
type Announcer interface {
	Announce(ctx context.Context, a formatter.Alert) error
}

// Resource is the Resource of every alert this package makes.
const Resource = "relay"

// Actions of the alerts this package makes.
const (
	ActionCanaryFailed    = "canary_failed"
	ActionCanaryRecovered = "canary_recovered"
	ActionQuiet           = "quiet"
	ActionQuietRecovered  = "quiet_recovered"
)

// Levels of warnings and recoveries; "resolved" makes a card look resolved.
const (
	levelWarning  = "warning"
	levelResolved = "resolved"
)

// announceRetry is how soon an announcement the queue refused is tried
// again (sooner when the watch's own period is shorter): the queue is
// usually unwritable for moments, and a warning must not wait for the next
// round.
const announceRetry = time.Minute

func retryDelay(period time.Duration) time.Duration {
	return min(announceRetry, period)
}
