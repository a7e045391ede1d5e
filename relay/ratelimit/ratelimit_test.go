package ratelimit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
)

// fixed is a Window used at one rate, as the dispatcher uses it for one
// receiver.
type fixed struct {
	*Window
	rate Rate
}

func at(limit int) fixed { return fixed{NewWindow(Period, nil), Rate{PerMinute: limit}} }

func (f fixed) Take(ctx context.Context, robot string) (time.Duration, error) {
	return f.Window.Take(ctx, robot, f.rate)
}

// send waits for the limiter like the dispatcher does and returns the send
// times.
func sendAll(t *testing.T, w fixed, robot string, n int) []time.Time {
	var times []time.Time
	for len(times) < n {
		wait, err := w.Take(context.Background(), robot)
		if err != nil {
			t.Fatal(err)
		}
		if wait > 0 {
			time.Sleep(wait)
			continue
		}
		times = append(times, time.Now())
	}
	return times
}

func TestNeverMoreThanLimitPerMinute(t *testing.T) {
	for _, limit := range []int{1, 5, 18, 20} {
		synctest.Test(t, func(t *testing.T) {
			w := at(limit)
			times := sendAll(t, w, "a", 200)
			if got := notifytest.MaxInWindow(times, Period); got > limit {
				t.Errorf("limit %d: %d sends in one minute", limit, got)
			}
			// The budget is used: 200 sends take about 200/limit minutes.
			elapsed := times[len(times)-1].Sub(times[0])
			if min := time.Duration(200/limit-1) * time.Minute; elapsed < min-time.Minute || elapsed > min+time.Minute {
				t.Errorf("limit %d: 200 sends took %v, want about %v", limit, elapsed, min)
			}
		})
	}
}

func TestPacingAfterBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := at(18)
		times := sendAll(t, w, "a", 18)
		start := times[0]
		burst := 0
		for _, at := range times {
			if at.Equal(start) {
				burst++
			}
		}
		if burst != 4 {
			t.Errorf("%d sends at once, want a burst of 4", burst)
		}
		// Then one every 60s/18 = 3.33 s, not a minute of silence.
		for i := burst + 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap > 4*time.Second {
				t.Errorf("gap of %v between send %d and %d", gap, i, i+1)
			}
		}
	})
}

func TestRobotsAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := at(2)
		sendAll(t, w, "a", 2)
		if wait, _ := w.Take(context.Background(), "a"); wait == 0 {
			t.Error("robot a over its budget")
		}
		if wait, _ := w.Take(context.Background(), "b"); wait != 0 {
			t.Errorf("robot b waits %v for robot a's budget", wait)
		}
	})
}

func TestPark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := at(18)
		until := time.Now().Add(10 * time.Minute)
		w.Park(context.Background(), "a", until)
		wait, _ := w.Take(context.Background(), "a")
		if wait != 10*time.Minute {
			t.Errorf("parked robot waits %v, want 10m", wait)
		}
		if wait, _ := w.Take(context.Background(), "b"); wait != 0 {
			t.Errorf("robot b waits %v for robot a's park", wait)
		}
		// A shorter park does not cut a longer one short.
		w.Park(context.Background(), "a", time.Now().Add(time.Minute))
		if wait, _ := w.Take(context.Background(), "a"); wait != 10*time.Minute {
			t.Errorf("a shorter park replaced a longer one: wait %v", wait)
		}
		time.Sleep(10 * time.Minute)
		if wait, _ := w.Take(context.Background(), "a"); wait != 0 {
			t.Errorf("after the park: wait %v", wait)
		}
	})
}

func TestWaitingRecordsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := at(1)
		w.Take(context.Background(), "a")
		for range 100 {
			w.Take(context.Background(), "a")
		}
		time.Sleep(Period)
		if wait, _ := w.Take(context.Background(), "a"); wait != 0 {
			t.Errorf("refused takes counted as sends: wait %v", wait)
		}
	})
}

func TestDoneCountsFromCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := at(1)
		w.Take(context.Background(), "a")
		time.Sleep(5 * time.Second) // a slow send
		w.Done(context.Background(), "a")
		time.Sleep(Period - time.Second)
		if wait, _ := w.Take(context.Background(), "a"); wait != time.Second {
			t.Errorf("wait %v: the window must count the send from when it finished", wait)
		}
	})
}

func TestPerSecondCapsTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := fixed{NewWindow(Period, nil), Rate{PerMinute: 90, PerSecond: 5}}
		times := sendAll(t, w, "feishu", 90)
		if got := notifytest.MaxInWindow(times, time.Second); got > 5 {
			t.Errorf("%d sends in one second, want at most 5", got)
		}
		if got := notifytest.MaxInWindow(times, Period); got > 90 {
			t.Errorf("%d sends in one minute, want at most 90", got)
		}
	})
}

func TestEachRobotHasItsOwnRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(Period, nil)
		slow, fast := fixed{w, Rate{PerMinute: 2}}, fixed{w, Rate{PerMinute: 60}}
		sendAll(t, slow, "slow", 2)
		if wait, _ := slow.Take(context.Background(), "slow"); wait == 0 {
			t.Error("the slow robot went over its 2 a minute")
		}
		if got := notifytest.MaxInWindow(sendAll(t, fast, "fast", 120), Period); got > 60 || got < 30 {
			t.Errorf("the fast robot sent %d in a minute, want up to its own 60", got)
		}
	})
}
