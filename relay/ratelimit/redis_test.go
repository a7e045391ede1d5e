package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// fixedRedis is a Redis limiter used at one rate.
type fixedRedis struct {
	*Redis
	rate Rate
}

func atRedis(c *redis.Client, limit int, consumer string) fixedRedis {
	return fixedRedis{NewRedis(c, Period, consumer, nil), Rate{PerMinute: limit}}
}

func (f fixedRedis) Take(ctx context.Context, robot string) (time.Duration, error) {
	return f.Redis.Take(ctx, robot, f.rate)
}

// sharedSends drives limiters that share one Redis, on Redis's clock: each
// asks in turn, and the clock moves to the earliest time one may send.
func sharedSends(t *testing.T, m *miniredis.Miniredis, ls []fixedRedis, n int) []time.Time {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	m.SetTime(now)
	var times []time.Time
	for i := 0; len(times) < n; i++ {
		l := ls[i%len(ls)]
		wait, err := l.Take(context.Background(), "robot")
		if err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			times = append(times, now)
			continue
		}
		now = now.Add(wait)
		m.SetTime(now)
		m.FastForward(wait)
	}
	return times
}

func TestRedisWindowSharedByReplicas(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	replicas := []fixedRedis{atRedis(c, 18, "a"), atRedis(c, 18, "b"), atRedis(c, 18, "c")}
	times := sharedSends(t, m, replicas, 100)
	if got := notifytest.MaxInWindow(times, Period); got > 18 {
		t.Errorf("%d sends in one minute across 3 replicas", got)
	}
	// Paced: a burst of 4, then the budget spread (no minute of silence).
	burst := 0
	for _, at := range times {
		if at.Equal(times[0]) {
			burst++
		}
	}
	if burst != 4 {
		t.Errorf("burst of %d", burst)
	}
	elapsed := times[len(times)-1].Sub(times[0])
	if elapsed < 4*time.Minute || elapsed > 6*time.Minute {
		t.Errorf("100 sends took %v, want about 100/18 minutes", elapsed)
	}
}

func TestRedisParkIsShared(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	a, b := atRedis(c, 18, "a"), atRedis(c, 18, "b")
	if err := a.Park(context.Background(), "robot", time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	wait, err := b.Take(context.Background(), "robot")
	if err != nil || wait < 9*time.Minute {
		t.Fatalf("other replica waits %v (%v), want the park", wait, err)
	}
	m.FastForward(10 * time.Minute)
	if wait, _ := b.Take(context.Background(), "robot"); wait != 0 {
		t.Errorf("after the park: wait %v", wait)
	}
}

func TestRedisDoneMovesTheSend(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	l := atRedis(c, 1, "a")
	t0 := time.Unix(1_700_000_000, 0)
	m.SetTime(t0)
	l.Take(context.Background(), "robot")
	m.SetTime(t0.Add(5 * time.Second))
	if err := l.Done(context.Background(), "robot"); err != nil {
		t.Fatal(err)
	}
	m.SetTime(t0.Add(Period + time.Second))
	if wait, _ := l.Take(context.Background(), "robot"); wait != 4*time.Second {
		t.Errorf("wait %v, want the window counted from the send's end", wait)
	}
	// The limiter's keys expire (only the queue must not).
	if ttl := m.TTL("{sdr}:rl:robot:w"); ttl <= 0 {
		t.Errorf("window key has no TTL")
	}
}

func TestRedisPerSecond(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	l := fixedRedis{NewRedis(c, Period, "a", nil), Rate{PerMinute: 90, PerSecond: 5}}
	times := sharedSends(t, m, []fixedRedis{l}, 60)
	if got := notifytest.MaxInWindow(times, time.Second); got > 5 {
		t.Errorf("%d sends in one second, want at most 5", got)
	}
}
