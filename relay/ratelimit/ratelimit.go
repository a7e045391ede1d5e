// Package ratelimit keeps each receiver under its service's send limit
// (DingTalk: 20 messages a minute, past which it throttles the robot for 10
// minutes).
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a receiver's send budget.
type Rate struct {
	// PerMinute is the most sends in any sliding minute.
	PerMinute int
	// PerSecond, when set, is the most sends in any second (Feishu's 5).
	PerSecond int
}

// burst is how many sends may go at once before pacing spreads the rest
// of the minute's budget evenly.
func (r Rate) burst() int {
	b := max(1, r.PerMinute/4)
	if r.PerSecond > 0 {
		b = min(b, r.PerSecond)
	}
	return b
}

func (r Rate) limit() int { return max(r.PerMinute, 1) }

// Window allows at most Rate.PerMinute sends per receiver in any sliding
// Period, and paces them: after a burst, the rest of the budget is spread
// evenly, so a storm gets an answer every few seconds rather than a burst
// followed by a minute of silence. It keeps its state in memory, for one
// relay process.
type Window struct {
	period time.Duration
	now    func() time.Time

	mu     sync.Mutex
	robots map[string]*robotState
}

type robotState struct {
	rate   Rate
	sent   []time.Time // sends within the last period, oldest first
	parked time.Time   // no sends before this
	pace   *rate.Limiter
}

// Period is DingTalk's window.
const Period = time.Minute

// NewWindow returns a limiter whose budgets are per period (Period, a
// minute, outside tests). now is the clock (nil means time.Now).
func NewWindow(period time.Duration, now func() time.Time) *Window {
	if now == nil {
		now = time.Now
	}
	return &Window{period: period, now: now, robots: map[string]*robotState{}}
}

// state returns robot's state at rate r, new when the rate changed.
func (w *Window) state(robot string, r Rate) *robotState {
	st, ok := w.robots[robot]
	if !ok || st.rate != r {
		every := w.period / time.Duration(r.limit())
		next := &robotState{rate: r, pace: rate.NewLimiter(rate.Every(every), r.burst())}
		if ok {
			next.sent, next.parked = st.sent, st.parked
		}
		st = next
		w.robots[robot] = st
	}
	return st
}

// Take records a send to robot and returns 0 if one is allowed now at rate
// r; otherwise it records nothing and returns how long to wait.
func (w *Window) Take(ctx context.Context, robot string, r Rate) (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	st := w.state(robot, r)
	if now.Before(st.parked) {
		return st.parked.Sub(now), nil
	}
	cut := 0
	for cut < len(st.sent) && now.Sub(st.sent[cut]) >= w.period {
		cut++
	}
	st.sent = st.sent[cut:]
	if len(st.sent) >= r.limit() {
		return st.sent[0].Add(w.period).Sub(now), nil
	}
	if n := r.PerSecond; n > 0 && len(st.sent) >= n {
		if nth := st.sent[len(st.sent)-n]; now.Sub(nth) < time.Second {
			return nth.Add(time.Second).Sub(now), nil
		}
	}
	res := st.pace.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
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
	st, ok := w.robots[robot]
	if !ok {
		st = &robotState{}
		w.robots[robot] = st
	}
	if until.After(st.parked) {
		st.parked = until
	}
	return nil
}
