package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/webhook"
)

// storeFailureWindow is how long a failure to store an alert keeps the
// relay unready when no store succeeds after it.
const storeFailureWindow = 10 * time.Second

// storeHealth watches what happens to the alerts webhooks store: readiness
// must fail when alerts cannot be stored (a full disk refuses an alert
// while a probe into space the store already owns still passes), and
// recover once one is stored again.
type storeHealth struct {
	webhook.Queue
	now    func() time.Time
	window time.Duration

	mu          sync.Mutex
	failedAt    time.Time
	failure     error
	succeededAt time.Time
}

func (h *storeHealth) Enqueue(ctx context.Context, sub queue.Submission) (bool, error) {
	dup, err := h.Queue.Enqueue(ctx, sub)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.succeededAt = h.now()
	case errors.Is(err, context.Canceled), errors.Is(err, queue.ErrTooLarge), errors.Is(err, queue.ErrClosed):
		// The client went away, the alert was refused for its size, or the
		// relay is stopping: the store is fine.
	default:
		h.failedAt, h.failure = h.now(), err
	}
	return dup, err
}

// failing returns the last failure when it is recent and nothing was
// stored since.
func (h *storeHealth) failing() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failure == nil || h.succeededAt.After(h.failedAt) || h.now().Sub(h.failedAt) > h.window {
		return nil
	}
	return fmt.Errorf("the last alert could not be stored (%s ago): %w", h.now().Sub(h.failedAt).Round(time.Second), h.failure)
}
