package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue/redistest"
)

// contract is what both stores keep, as the relay uses them.
type contract interface {
	Enqueue(ctx context.Context, sub Submission) (bool, error)
	Pending(ctx context.Context, robot string, max int) ([]Delivery, error)
	Ack(ctx context.Context, robot string, ids []string) error
	Bury(ctx context.Context, robot string, ids []string, reason string) error
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	Replay(ctx context.Context, ids []string, robot string) ([]DeadLetter, error)
	Depth(ctx context.Context, robot string) int
	Check(ctx context.Context) error
	Close() error
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// opener opens an empty store with the clock now.
type opener func(t *testing.T, now func() time.Time) contract

// readable waits until what s acknowledged can be read (the bbolt store
// moves it off the webhook's path).
func readable(t *testing.T, s contract) {
	t.Helper()
	if sy, ok := s.(interface{ Sync(context.Context) error }); ok {
		if err := sy.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func put(t *testing.T, s contract, sub Submission) bool {
	t.Helper()
	dup, err := s.Enqueue(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	readable(t, s)
	return dup
}

func ids(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// testStore runs the store contract over one kind of store.
func testStore(t *testing.T, open opener) {
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	fresh := func(t *testing.T) (contract, *testClock) {
		c := &testClock{t: start}
		return open(t, c.now), c
	}

	t.Run("pending in order, ack removes", func(t *testing.T) {
		s, _ := fresh(t)
		for i := range 3 {
			put(t, s, submission(i, "a", "b"))
		}
		pa, err := s.Pending(ctx, "a", 10)
		if err != nil || fmt.Sprint(titles(pa)) != "[alert 0 alert 1 alert 2]" {
			t.Fatalf("pending a: %v %v", titles(pa), err)
		}
		if d := s.Depth(ctx, "a"); d != 3 {
			t.Errorf("depth %d", d)
		}
		if err := s.Ack(ctx, "a", ids(pa[:2])); err != nil {
			t.Fatal(err)
		}
		if pa, _ = s.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 2]" || s.Depth(ctx, "a") != 1 {
			t.Errorf("after ack: %v depth %d", titles(pa), s.Depth(ctx, "a"))
		}
		if pb, _ := s.Pending(ctx, "b", 2); fmt.Sprint(titles(pb)) != "[alert 0 alert 1]" {
			t.Errorf("b (at most 2): %v; another robot's ack must not touch it", titles(pb))
		}
	})

	t.Run("a delivery keeps what it was queued with", func(t *testing.T) {
		s, _ := fresh(t)
		sub := submission(1, "a")
		sub.Alert = fullAlert(t)
		sub.Alert.IssueID, sub.Alert.RuleID = "18446744073709551615", "10000000042" // beyond 2^53
		sub.Targets = []Target{{Robot: "a", Mentions: formatter.Mentions{Mobiles: []string{"13800000000"}, All: true}, Type: "actionCard", Note: "fallback: robot b"}}
		put(t, s, sub)
		pa, err := s.Pending(ctx, "a", 1)
		if err != nil || len(pa) != 1 {
			t.Fatalf("pending %v %v", pa, err)
		}
		d := pa[0]
		if !alertsEqual(d.Alert, sub.Alert) || d.AlertID != sub.AlertID || !d.Accepted.Equal(sub.Accepted) ||
			d.Type != "actionCard" || d.Note != "fallback: robot b" || !slices.Equal(d.Mentions.Mobiles, []string{"13800000000"}) || !d.Mentions.All {
			t.Errorf("stored %+v\nqueued %+v", d, sub)
		}
	})

	t.Run("dedupe", func(t *testing.T) {
		s, _ := fresh(t)
		if put(t, s, submission(1, "a")) {
			t.Fatal("first submission taken for a duplicate")
		}
		if !put(t, s, submission(1, "a")) {
			t.Error("same dedupe key within the window not a duplicate")
		}
		if put(t, s, submission(2, "a")) {
			t.Error("another key taken for a duplicate")
		}
		if pa, _ := s.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 1 alert 2]" {
			t.Errorf("pending %v: the duplicate must not be stored", titles(pa))
		}
	})

	t.Run("bury, list, replay", func(t *testing.T) {
		s, clock := fresh(t)
		put(t, s, submission(1, "a"))
		put(t, s, submission(2, "a"))
		pa, _ := s.Pending(ctx, "a", 10)
		clock.advance(time.Hour)
		if err := s.Bury(ctx, "a", ids(pa), "expired"); err != nil {
			t.Fatal(err)
		}
		if s.Depth(ctx, "a") != 0 {
			t.Errorf("depth %d after bury", s.Depth(ctx, "a"))
		}
		dls, err := s.DeadLetters(ctx)
		if err != nil || len(dls) != 2 || titles([]Delivery{dls[0].Delivery, dls[1].Delivery})[1] != "alert 2" {
			t.Fatalf("dead letters %+v %v", dls, err)
		}
		for _, dl := range dls {
			if dl.Reason != "expired" || !dl.Buried.Equal(start.Add(time.Hour)) || dl.Unreadable || dl.Delivery.Robot != "a" {
				t.Errorf("dead letter %+v: want reason, robot and the store's clock", dl)
			}
		}
		if _, err := s.Replay(ctx, []string{"no-such-id"}, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("replay of an unknown id: %v", err)
		}
		clock.advance(time.Hour)
		// By alert id, to another robot.
		replayed, err := s.Replay(ctx, []string{dls[0].Delivery.AlertID}, "b")
		if err != nil || len(replayed) != 1 {
			t.Fatalf("replay one: %v %v", replayed, err)
		}
		readable(t, s)
		pb, _ := s.Pending(ctx, "b", 10)
		if fmt.Sprint(titles(pb)) != "[alert 1]" || !pb[0].Accepted.Equal(start.Add(2*time.Hour)) {
			t.Fatalf("replayed to b: %v; want alert 1 with a fresh age (%v)", pb, start.Add(2*time.Hour))
		}
		// The rest, to its own robot.
		if replayed, err := s.Replay(ctx, nil, ""); err != nil || len(replayed) != 1 {
			t.Fatalf("replay all: %v %v", replayed, err)
		}
		readable(t, s)
		if pa, _ := s.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 2]" {
			t.Errorf("replayed to a: %v", titles(pa))
		}
		if dls, _ := s.DeadLetters(ctx); len(dls) != 0 {
			t.Errorf("dead letters left after replaying all: %+v", dls)
		}
	})

	t.Run("check", func(t *testing.T) {
		s, _ := fresh(t)
		if err := s.Check(ctx); err != nil {
			t.Errorf("check of a working store: %v", err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		s, _ := fresh(t)
		s.Close()
		if _, err := s.Enqueue(ctx, submission(1, "a")); !errors.Is(err, ErrClosed) {
			t.Errorf("enqueue after close: %v, want ErrClosed", err)
		}
	})
}

// alertsEqual compares alerts as stored: times by instant.
func alertsEqual(a, b formatter.Alert) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T, now func() time.Time) contract {
		b, err := OpenBolt(t.TempDir(), BoltOptions{DedupeWindow: 30 * time.Minute, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	})
}

// TestRedisStore runs the contract on a real redis-server, one database
// per subtest.
func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	db := 0
	testStore(t, func(t *testing.T, now func() time.Time) contract {
		db++
		r, err := OpenRedis(srv.URL(db), RedisOptions{DedupeWindow: 30 * time.Minute, SpoolDir: t.TempDir(), Now: now, Consumer: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	})
}
