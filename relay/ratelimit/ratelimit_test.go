package ratelimit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// send waits for the limiter like the dispatcher does and returns the send
// times.
func sendAll(t *testing.T, w *Window, robot string, n int) []time.Time {
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

func maxInWindow(times []time.Time, window time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestNeverMoreThanLimitPerMinute(t *testing.T) {
	for _, limit := range []int{1, 5, 18, 20} {
		synctest.Test(t, func(t *testing.T) {
			w := NewWindow(limit, Period, nil)
			times := sendAll(t, w, "a", 200)
			if got := maxInWindow(times, Period); got > limit {
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
		w := NewWindow(18, Period, nil)
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
		w := NewWindow(2, Period, nil)
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
		w := NewWindow(18, Period, nil)
		until := time.Now().Add(10 * time.Minute)
		w.Park(context.Background(), "a", until)
		wait, _ := w.Take(context.Background(), "a")
		if wait != 10*time.Minute {
			t.Errorf("parked robot waits %v, want 10m", wait)
		}
		if !w.Parked("a").Equal(until) || !w.Parked("b").IsZero() {
			t.Errorf("Parked: a %v b %v", w.Parked("a"), w.Parked("b"))
		}
		// A shorter park does not cut a longer one short.
		w.Park(context.Background(), "a", time.Now().Add(time.Minute))
		if !w.Parked("a").Equal(until) {
			t.Error("a shorter park replaced a longer one")
		}
		time.Sleep(10 * time.Minute)
		if wait, _ := w.Take(context.Background(), "a"); wait != 0 {
			t.Errorf("after the park: wait %v", wait)
		}
	})
}

func TestWaitingRecordsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, Period, nil)
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
		w := NewWindow(1, Period, nil)
		w.Take(context.Background(), "a")
		time.Sleep(5 * time.Second) // a slow send
		w.Done(context.Background(), "a")
		time.Sleep(Period - time.Second)
		if wait, _ := w.Take(context.Background(), "a"); wait != time.Second {
			t.Errorf("wait %v: the window must count the send from when it finished", wait)
		}
	})
}
