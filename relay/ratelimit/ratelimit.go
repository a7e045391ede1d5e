// Package ratelimit keeps each robot under DingTalk's limit of 20 messages
// a minute, past which DingTalk throttles the robot for 10 minutes.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Window allows at most Limit sends per robot in any sliding Period, and
// paces them: after a burst of Burst sends, the rest of the budget is spread
// evenly, so a storm gets an answer every few seconds rather than a burst
// followed by a minute of silence. It keeps its state in memory, for one
// relay process.
type Window struct {
	limit  int
	period time.Duration
	burst  int
	now    func() time.Time

	mu     sync.Mutex
	robots map[string]*robotState
}

type robotState struct {
	sent   []time.Time // sends within the last period, oldest first
	parked time.Time   // no sends before this
	pace   *rate.Limiter
}

// Period is DingTalk's window.
const Period = time.Minute

// NewWindow returns a limiter of limit sends per period per robot. now is
// the clock (nil means time.Now).
func NewWindow(limit int, period time.Duration, now func() time.Time) *Window {
	if now == nil {
		now = time.Now
	}
	limit = max(limit, 1)
	return &Window{
		limit: limit, period: period, burst: max(1, limit/4), now: now,
		robots: map[string]*robotState{},
	}
}

func (w *Window) state(robot string) *robotState {
	st, ok := w.robots[robot]
	if !ok {
		every := w.period / time.Duration(w.limit)
		st = &robotState{pace: rate.NewLimiter(rate.Every(every), w.burst)}
		w.robots[robot] = st
	}
	return st
}

// Take records a send to robot and returns 0 if one is allowed now;
// otherwise it records nothing and returns how long to wait.
func (w *Window) Take(ctx context.Context, robot string) (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	st := w.state(robot)
	if now.Before(st.parked) {
		return st.parked.Sub(now), nil
	}
	cut := 0
	for cut < len(st.sent) && now.Sub(st.sent[cut]) >= w.period {
		cut++
	}
	st.sent = st.sent[cut:]
	if len(st.sent) >= w.limit {
		return st.sent[0].Add(w.period).Sub(now), nil
	}
	r := st.pace.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	st.sent = append(st.sent, now)
	return 0, nil
}

// Done moves robot's latest send to now: the window then counts it from
// when it finished, the latest DingTalk can have counted it.
func (w *Window) Done(ctx context.Context, robot string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.robots[robot]; ok && len(st.sent) > 0 {
		st.sent[len(st.sent)-1] = w.now()
	}
	return nil
}

// Park stops sends to robot until the given time.
func (w *Window) Park(ctx context.Context, robot string, until time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.state(robot)
	if until.After(st.parked) {
		st.parked = until
	}
	return nil
}

// Parked returns until when robot is parked (zero when it is not).
func (w *Window) Parked(robot string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.robots[robot]; ok && w.now().Before(st.parked) {
		return st.parked
	}
	return time.Time{}
}
