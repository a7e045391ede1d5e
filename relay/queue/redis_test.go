package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func newRedis(t *testing.T, m *miniredis.Miniredis, consumer string) (*Redis, *notified) {
	t.Helper()
	n := &notified{robots: map[string]int{}}
	r, err := OpenRedis("redis://"+m.Addr()+"/0", RedisOptions{
		DedupeWindow: 30 * time.Minute, SpoolDir: t.TempDir(), Consumer: consumer, Notify: n.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, n
}

type notified struct {
	mu     sync.Mutex
	robots map[string]int
}

func (n *notified) add(robot string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.robots[robot]++
}

func (n *notified) count(robot string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.robots[robot]
}

func TestRedisQueue(t *testing.T) {
	m := miniredis.RunT(t)
	r, n := newRedis(t, m, "c1")
	for i := range 3 {
		if dup, err := r.Enqueue(ctx, submission(i, "a", "b")); err != nil || dup {
			t.Fatalf("enqueue %d: %v %v", i, dup, err)
		}
	}
	if n.count("a") != 3 {
		t.Errorf("notified %d times", n.count("a"))
	}
	if r.Depth(context.Background(), "a") != 3 || r.Depth(context.Background(), "b") != 3 {
		t.Fatalf("depths %d %d", r.Depth(context.Background(), "a"), r.Depth(context.Background(), "b"))
	}
	pa, err := r.Pending(ctx, "a", 10)
	if err != nil || fmt.Sprint(titles(pa)) != "[alert 0 alert 1 alert 2]" {
		t.Fatalf("pending %v %v", titles(pa), err)
	}
	if pa[0].Mentions.Mobiles[0] != "13800000000" || pa[0].Accepted.Unix() != 1_700_000_000 || pa[0].Robot != "a" {
		t.Errorf("delivery %+v", pa[0])
	}
	// Read again: the same entries (this replica's own, unacknowledged).
	again, _ := r.Pending(ctx, "a", 10)
	if len(again) != 3 {
		t.Errorf("re-read %d entries", len(again))
	}
	if err := r.Ack(ctx, "a", []string{pa[0].ID, pa[1].ID}); err != nil {
		t.Fatal(err)
	}
	if pa, _ = r.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 2]" || r.Depth(context.Background(), "a") != 1 {
		t.Errorf("after ack: %v depth %d", titles(pa), r.Depth(context.Background(), "a"))
	}
	if pb, _ := r.Pending(ctx, "b", 2); len(pb) != 2 {
		t.Errorf("max not applied: %d", len(pb))
	}
	// Queue keys never expire (Sentry's Redis evicts volatile keys).
	if ttl := m.TTL(streamKey("a")); ttl != 0 {
		t.Errorf("stream has a TTL of %v", ttl)
	}
}

func TestRedisDedupe(t *testing.T) {
	m := miniredis.RunT(t)
	r, _ := newRedis(t, m, "c1")
	if dup, _ := r.Enqueue(ctx, submission(1, "a")); dup {
		t.Fatal("first delivery duplicate")
	}
	if dup, _ := r.Enqueue(ctx, submission(1, "a")); !dup {
		t.Fatal("repeat not detected")
	}
	m.FastForward(31 * time.Minute)
	if dup, _ := r.Enqueue(ctx, submission(1, "a")); dup {
		t.Fatal("repeat after the window detected")
	}
	if r.Depth(context.Background(), "a") != 2 {
		t.Errorf("depth %d", r.Depth(context.Background(), "a"))
	}
}

// TestRedisClaimsFromADeadReplica: entries a replica read but never
// acknowledged go to another after ClaimIdle.
func TestRedisClaimsFromADeadReplica(t *testing.T) {
	m := miniredis.RunT(t)
	t0 := time.Now()
	m.SetTime(t0)
	r1, _ := newRedis(t, m, "c1")
	r2, _ := newRedis(t, m, "c2")
	r1.Enqueue(ctx, submission(1, "a"))
	r1.Enqueue(ctx, submission(2, "a"))
	if got, _ := r1.Pending(ctx, "a", 10); len(got) != 2 {
		t.Fatalf("c1 read %d", len(got))
	}
	// c1 dies here. Until ClaimIdle passes, c2 does not take its entries.
	if got, _ := r2.Pending(ctx, "a", 10); len(got) != 0 {
		t.Fatalf("c2 took %d entries c1 may still be sending", len(got))
	}
	m.SetTime(t0.Add(ClaimIdle + time.Second))
	got, err := r2.Pending(ctx, "a", 10)
	if err != nil || fmt.Sprint(titles(got)) != "[alert 1 alert 2]" {
		t.Fatalf("c2 claimed %v (%v)", titles(got), err)
	}
	if err := r2.Ack(ctx, "a", []string{got[0].ID, got[1].ID}); err != nil {
		t.Fatal(err)
	}
	if r2.Depth(context.Background(), "a") != 0 {
		t.Errorf("depth %d", r2.Depth(context.Background(), "a"))
	}
}

func TestRedisBuryAndReplay(t *testing.T) {
	m := miniredis.RunT(t)
	r, _ := newRedis(t, m, "c1")
	s := submission(1, "a")
	r.Enqueue(ctx, s)
	pa, _ := r.Pending(ctx, "a", 10)
	if err := r.Bury(ctx, "a", []string{pa[0].ID}, "expired"); err != nil {
		t.Fatal(err)
	}
	if r.Depth(context.Background(), "a") != 0 {
		t.Fatalf("depth %d", r.Depth(context.Background(), "a"))
	}
	dls, err := r.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || dls[0].Reason != "expired" || dls[0].Delivery.Robot != "a" || dls[0].Delivery.Alert.Title != "alert 1" {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
	if _, err := r.Replay(ctx, []string{"nope"}, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	got, err := r.Replay(ctx, []string{s.AlertID}, "b")
	if err != nil || len(got) != 1 {
		t.Fatalf("replay %v %v", got, err)
	}
	if pb, _ := r.Pending(ctx, "b", 10); len(pb) != 1 || pb[0].Alert.Title != "alert 1" {
		t.Errorf("replayed to b: %v", titles(pb))
	}
	if dls, _ := r.DeadLetters(ctx); len(dls) != 0 {
		t.Errorf("%d dead letters left", len(dls))
	}
}

func TestRedisLease(t *testing.T) {
	m := miniredis.RunT(t)
	r1, _ := newRedis(t, m, "c1")
	r2, _ := newRedis(t, m, "c2")
	if ok, err := r1.Hold(ctx, "a"); !ok || err != nil {
		t.Fatalf("c1 hold: %v %v", ok, err)
	}
	if ok, _ := r2.Hold(ctx, "a"); ok {
		t.Fatal("two replicas hold robot a")
	}
	if ok, _ := r2.Hold(ctx, "b"); !ok {
		t.Fatal("c2 cannot hold robot b")
	}
	// c1 renews while it lives...
	m.FastForward(LeaseTTL - time.Second)
	if ok, _ := r1.Hold(ctx, "a"); !ok {
		t.Fatal("renewal failed")
	}
	m.FastForward(LeaseTTL - time.Second)
	if ok, _ := r2.Hold(ctx, "a"); ok {
		t.Fatal("a renewed lease was taken")
	}
	// ...and its lease lapses when it stops.
	m.FastForward(2 * time.Second)
	if ok, _ := r2.Hold(ctx, "a"); !ok {
		t.Fatal("c2 cannot take a lapsed lease")
	}
	if ok, _ := r1.Hold(ctx, "a"); ok {
		t.Fatal("c1 took its lease back from c2")
	}
	// A replica that shuts down hands its leases over at once.
	r2.Close()
	if ok, _ := r1.Hold(ctx, "a"); !ok {
		t.Fatal("the lease of a closed replica was not released")
	}
}

// TestRedisOutageSpools: with Redis down, alerts are spooled locally (the
// webhook still gets 202), readiness says degraded, and the spool moves to
// Redis once it is back.
func TestRedisOutageSpools(t *testing.T) {
	m := miniredis.RunT(t)
	r, _ := newRedis(t, m, "c1")
	r.timeout = 200 * time.Millisecond
	r.Enqueue(ctx, submission(1, "a"))
	m.Close()
	if dup, err := r.Enqueue(ctx, submission(2, "a")); err != nil || dup {
		t.Fatalf("enqueue with Redis down: %v %v", dup, err)
	}
	if err := r.Check(ctx); !errors.Is(err, ErrDegraded) {
		t.Errorf("Check = %v, want degraded", err)
	}
	r.spool.Sync(ctx)
	if r.Depth(context.Background(), "a") < 1 {
		t.Errorf("spooled alert not counted: depth %d", r.Depth(context.Background(), "a"))
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	// The spool is acknowledged only after its entries are in Redis, so
	// both are waited for: Pending can show an alert whose spool entry
	// is not yet removed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pa, _ := r.Pending(ctx, "a", 10)
		if fmt.Sprint(titles(pa)) == "[alert 1 alert 2]" && r.spool.Depth(ctx, "a") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis came back: %v, spool depth %d (the spool must be emptied)", titles(pa), r.spool.Depth(ctx, "a"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.Check(ctx); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
}

func TestRedisBadURL(t *testing.T) {
	_, err := OpenRedis("redis://:s3cret@[::1", RedisOptions{SpoolDir: t.TempDir()})
	if err == nil {
		t.Fatal("bad URL accepted")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestCompareIDs(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1-0", "2-0", -1}, {"10-0", "9-0", 1}, {"5-10", "5-9", 1}, {"5-1", "5-1", 0}} {
		if got := compareIDs(c.a, c.b); (got < 0) != (c.want < 0) || (got == 0) != (c.want == 0) {
			t.Errorf("compareIDs(%s, %s) = %d", c.a, c.b, got)
		}
	}
}

func TestRedisTakesOverABoltQueue(t *testing.T) {
	dir := t.TempDir()
	old := open(t, dir, nil)
	enqueue(t, old, submission(1, "a"))
	old.Close()
	m := miniredis.RunT(t)
	r, err := OpenRedis("redis://"+m.Addr(), RedisOptions{SpoolDir: t.TempDir(), Migrate: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pa, _ := r.Pending(ctx, "a", 10); len(pa) == 1 && pa[0].Alert.Title == "alert 1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the bbolt queue's alert did not move to Redis")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRedisUndecodableEntryIsBuried(t *testing.T) {
	m := miniredis.RunT(t)
	r, _ := newRedis(t, m, "c1")
	r.Enqueue(ctx, submission(1, "a"))
	if _, err := m.XAdd(streamKey("a"), "*", []string{"d", "{not json"}); err != nil {
		t.Fatal(err)
	}
	pa, err := r.Pending(ctx, "a", 10)
	if err != nil || len(pa) != 1 {
		t.Fatalf("pending %v %v", titles(pa), err)
	}
	if r.Depth(context.Background(), "a") != 1 {
		t.Errorf("the bad entry is still queued: depth %d", r.Depth(context.Background(), "a"))
	}
	raw, _ := m.Stream(keyDead)
	if len(raw) != 1 {
		t.Errorf("%d dead letters, want the bad entry", len(raw))
	}
	dls, err := r.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || !dls[0].Unreadable || !strings.Contains(dls[0].Reason, `"{not json"`) {
		t.Fatalf("dead letters %+v %v: the bad entry must be listed, quoted", dls, err)
	}
	if replayed, err := r.Replay(ctx, nil, ""); err != nil || len(replayed) != 0 {
		t.Errorf("replay of every dead letter: %v %v; want the unreadable one passed over", replayed, err)
	}
	if _, err := r.Replay(ctx, []string{dls[0].ID}, ""); !errors.Is(err, ErrUnreadable) {
		t.Errorf("replaying it by id: %v, want ErrUnreadable", err)
	}
}
