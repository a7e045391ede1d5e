package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

var ctx = context.Background()

func open(t testing.TB, dir string, now func() time.Time) *Bolt {
	t.Helper()
	b, err := OpenBolt(dir, BoltOptions{DedupeWindow: 30 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func submission(i int, robots ...string) Submission {
	sub := Submission{
		AlertID:   NewID(time.Now()),
		DedupeKey: fmt.Sprintf("event_alert:%d:rule", i),
		Alert:     formatter.Alert{Resource: "event_alert", Title: fmt.Sprintf("alert %d", i), IssueID: fmt.Sprint(i)},
		Accepted:  time.Unix(1_700_000_000+int64(i), 0).UTC(),
	}
	for _, r := range robots {
		sub.Targets = append(sub.Targets, Target{Robot: r, Mentions: formatter.Mentions{Mobiles: []string{"13800000000"}}})
	}
	return sub
}

// enqueue stores a submission and waits until it can be read.
func enqueue(t testing.TB, b *Bolt, sub Submission) bool {
	t.Helper()
	dup, err := b.Enqueue(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return dup
}

func titles(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Alert.Title)
	}
	return out
}

func TestEnqueuePendingAckAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	for i := range 3 {
		if dup := enqueue(t, b, submission(i, "a", "b")); dup {
			t.Fatalf("enqueue %d: dup", i)
		}
	}
	if b.Depth(context.Background(), "a") != 3 || b.Depth(context.Background(), "b") != 3 {
		t.Fatalf("depths %d %d", b.Depth(context.Background(), "a"), b.Depth(context.Background(), "b"))
	}
	pa, _ := b.Pending(ctx, "a", 10)
	if got := titles(pa); fmt.Sprint(got) != "[alert 0 alert 1 alert 2]" {
		t.Fatalf("pending a = %v, want FIFO", got)
	}
	if pa[0].Mentions.Mobiles[0] != "13800000000" || pa[0].Robot != "a" || pa[0].Accepted.Unix() != 1_700_000_000 {
		t.Errorf("delivery %+v", pa[0])
	}
	if err := b.Ack(ctx, "a", []string{pa[0].ID, pa[1].ID}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = open(t, dir, nil)
	defer b.Close()
	if b.Depth(context.Background(), "a") != 1 || b.Depth(context.Background(), "b") != 3 {
		t.Fatalf("after restart depths %d %d, want 1 3", b.Depth(context.Background(), "a"), b.Depth(context.Background(), "b"))
	}
	pa, _ = b.Pending(ctx, "a", 10)
	pb, _ := b.Pending(ctx, "b", 10)
	if fmt.Sprint(titles(pa)) != "[alert 2]" || len(pb) != 3 {
		t.Fatalf("after restart a=%v b=%v", titles(pa), titles(pb))
	}
	// The alert is kept until its last robot took it.
	for _, d := range pb {
		if err := b.Ack(ctx, "b", []string{d.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countAlerts(t, b); n != 1 {
		t.Errorf("%d alerts stored, want 1 (alert 2, still waiting for a)", n)
	}
	b.Ack(ctx, "a", []string{pa[0].ID})
	if n := countAlerts(t, b); n != 0 {
		t.Errorf("%d alerts stored after every robot took them", n)
	}
}

func countAlerts(t *testing.T, b *Bolt) int {
	t.Helper()
	n := 0
	b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketAlerts).Stats().KeyN
		return nil
	})
	return n
}

func TestDedupeWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := open(t, t.TempDir(), func() time.Time { return now })
	defer b.Close()
	if dup := enqueue(t, b, submission(1, "a")); dup {
		t.Fatal("first delivery reported duplicate")
	}
	now = now.Add(29 * time.Minute)
	if dup := enqueue(t, b, submission(1, "a")); !dup {
		t.Fatal("repeat within the window not reported")
	}
	if b.Depth(context.Background(), "a") != 1 {
		t.Fatalf("duplicate stored: depth %d", b.Depth(context.Background(), "a"))
	}
	now = now.Add(2 * time.Minute)
	if dup := enqueue(t, b, submission(1, "a")); dup {
		t.Fatal("repeat after the window reported duplicate")
	}
	noKey := submission(2, "a")
	noKey.DedupeKey = ""
	enqueue(t, b, noKey)
	if dup := enqueue(t, b, noKey); dup {
		t.Fatal("a submission without a dedupe key was deduplicated")
	}
	now = now.Add(time.Hour)
	// Two windows of key 1 were recorded (the second after the first
	// expired); both are past now.
	if n, err := b.Sweep(ctx); err != nil || n != 2 {
		t.Errorf("sweep removed %d keys (err %v), want 2", n, err)
	}
	if dup := enqueue(t, b, submission(1, "a")); dup {
		t.Error("key still remembered after its window and a sweep")
	}
	if n, _ := b.Sweep(ctx); n != 0 {
		t.Errorf("sweep removed %d live keys", n)
	}
}

func TestDedupeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	enqueue(t, b, submission(1, "a"))
	b.Close()
	b = open(t, dir, nil)
	defer b.Close()
	if dup := enqueue(t, b, submission(1, "a")); !dup {
		t.Error("dedupe forgotten across restart")
	}
}

func TestConcurrentEnqueueGroupCommit(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	defer b.Close()
	var wg sync.WaitGroup
	const n = 400
	for i := range n {
		wg.Go(func() {
			if _, err := b.Enqueue(ctx, submission(i, "a", "b", "c")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b.Sync(ctx)
	for _, r := range []string{"a", "b", "c"} {
		ds, _ := b.Pending(ctx, r, 1000)
		if len(ds) != n || b.Depth(context.Background(), r) != n {
			t.Errorf("robot %s: %d pending, depth %d, want %d", r, len(ds), b.Depth(context.Background(), r), n)
		}
	}
}

func TestBuryAndReplay(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := open(t, t.TempDir(), func() time.Time { return now })
	defer b.Close()
	s0, s1 := submission(0, "a", "b"), submission(1, "a")
	enqueue(t, b, s0)
	enqueue(t, b, s1)
	pa, _ := b.Pending(ctx, "a", 10)
	if err := b.Bury(ctx, "a", []string{pa[0].ID, pa[1].ID}, "expired"); err != nil {
		t.Fatal(err)
	}
	if b.Depth(context.Background(), "a") != 0 {
		t.Fatalf("depth %d after bury", b.Depth(context.Background(), "a"))
	}
	dls, _ := b.DeadLetters(ctx)
	if len(dls) != 2 || dls[0].Reason != "expired" || dls[0].Delivery.Alert.Title != "alert 0" || !dls[0].Buried.Equal(now) {
		t.Fatalf("dead letters %+v", dls)
	}
	// alert 1 was only for a: its record is gone, the dead letter keeps a copy.
	pb, _ := b.Pending(ctx, "b", 10)
	b.Ack(ctx, "b", []string{pb[0].ID})
	if n := countAlerts(t, b); n != 0 {
		t.Fatalf("%d alerts stored, want 0", n)
	}

	if _, err := b.Replay(ctx, []string{"nope"}, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replay of an unknown id: %v", err)
	}
	now = now.Add(48 * time.Hour)
	got, err := b.Replay(ctx, []string{s1.AlertID}, "")
	if err != nil || len(got) != 1 {
		t.Fatalf("replay by alert id: %v %v", got, err)
	}
	pa, _ = b.Pending(ctx, "a", 10)
	if len(pa) != 1 || pa[0].Alert.Title != "alert 1" || !pa[0].Accepted.Equal(now) {
		t.Fatalf("replayed delivery %+v, want a fresh age", pa)
	}
	got, err = b.Replay(ctx, nil, "c")
	if err != nil || len(got) != 1 || got[0].Delivery.Robot != "c" {
		t.Fatalf("replay all to c: %+v %v", got, err)
	}
	if pc, _ := b.Pending(ctx, "c", 10); len(pc) != 1 || pc[0].Alert.Title != "alert 0" {
		t.Fatalf("pending c = %v", titles(pc))
	}
	if dls, _ := b.DeadLetters(ctx); len(dls) != 0 {
		t.Errorf("%d dead letters left", len(dls))
	}
}

func TestClosedStore(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check on an open store: %v", err)
	}
	b.Close()
	if _, err := b.Enqueue(ctx, submission(1, "a")); !errors.Is(err, ErrClosed) {
		t.Errorf("enqueue after close: %v", err)
	}
	if err := b.Check(ctx); err == nil {
		t.Error("Check passes on a closed store")
	}
}

func TestSecondProcessIsLockedOut(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	defer b.Close()
	_, err := OpenBolt(dir, BoltOptions{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	a := NewID(time.Unix(100, 0))
	b := NewID(time.Unix(101, 0))
	if len(a) != 32 || a >= b {
		t.Errorf("ids %s %s", a, b)
	}
	if RobotKey("token-a") == RobotKey("token-b") || len(RobotKey("x")) != 16 {
		t.Error("robot keys collide or have the wrong size")
	}
}

// BenchmarkEnqueue measures durable (fsynced) enqueues of one alert for 3
// robots, from 64 concurrent webhooks as in a storm: group commit makes
// them share fsyncs.
func BenchmarkEnqueue(b *testing.B) {
	st := open(b, b.TempDir(), nil)
	defer st.Close()
	b.SetParallelism(32)
	b.ReportAllocs()
	var i int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i++
			n := i
			mu.Unlock()
			if _, err := st.Enqueue(ctx, submission(int(n), "a", "b", "c")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestUnreadableRecordBecomesDeadLetter(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	defer b.Close()
	enqueue(t, b, submission(1, "a"))
	enqueue(t, b, submission(2, "a"))
	// Corrupt the first delivery record in place.
	err := b.db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(queueName("a")).Cursor().First()
		return tx.Bucket(queueName("a")).Put(k, []byte("{garbage"))
	})
	if err != nil {
		t.Fatal(err)
	}
	pa, err := b.Pending(ctx, "a", 10)
	if err != nil || fmt.Sprint(titles(pa)) != "[alert 2]" {
		t.Fatalf("pending %v %v: the readable record must still come out", titles(pa), err)
	}
	dls, _ := b.DeadLetters(ctx)
	if len(dls) != 1 || !dls[0].Unreadable || !strings.Contains(dls[0].Reason, "{garbage") || b.Depth(context.Background(), "a") != 1 {
		t.Errorf("dead letters %+v depth %d", dls, b.Depth(context.Background(), "a"))
	}
	if replayed, err := b.Replay(ctx, nil, ""); err != nil || len(replayed) != 0 {
		t.Errorf("replay of every dead letter: %v %v; want the unreadable one passed over", replayed, err)
	}
}

// An alert that cannot be decoded leaves readable delivery records: they
// become dead letters that name the alert and quote its bytes, and the
// alert is deleted with its last reference, as a delivered one would be.
func TestUnreadableAlertIsBuriedAndReclaimed(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	defer b.Close()
	bad := submission(1, "a", "b")
	enqueue(t, b, bad)
	enqueue(t, b, submission(2, "a"))
	damaged := []byte{1, 0xff, 0xfe, 'x'}
	if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAlerts).Put([]byte(bad.AlertID), damaged) }); err != nil {
		t.Fatal(err)
	}
	for robot, want := range map[string]string{"a": "[alert 2]", "b": "[]"} {
		ds, err := b.Pending(ctx, robot, 10)
		if err != nil || fmt.Sprint(titles(ds)) != want {
			t.Fatalf("pending %s: %v %v, want %s", robot, titles(ds), err, want)
		}
	}
	dls, _ := b.DeadLetters(ctx)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want one per robot", len(dls))
	}
	for _, dl := range dls {
		if !dl.Unreadable || dl.Delivery.AlertID != bad.AlertID || !strings.Contains(dl.Reason, strconv.Quote(string(damaged))) {
			t.Errorf("dead letter %+v", dl)
		}
	}
	b.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAlerts).Get([]byte(bad.AlertID)) != nil || tx.Bucket(bucketRefs).Get([]byte(bad.AlertID)) != nil {
			t.Error("the unreadable alert is still stored with no delivery left")
		}
		return nil
	})
	if b.Depth(context.Background(), "a") != 1 || b.Depth(context.Background(), "b") != 0 {
		t.Errorf("depths a=%d b=%d", b.Depth(context.Background(), "a"), b.Depth(context.Background(), "b"))
	}
	if _, err := b.Replay(ctx, []string{dls[0].ID}, ""); !errors.Is(err, ErrUnreadable) {
		t.Errorf("replaying it by id: %v, want ErrUnreadable", err)
	}
	if dls, _ := b.DeadLetters(ctx); len(dls) != 2 {
		t.Errorf("%d dead letters after the refused replay, want both kept", len(dls))
	}
}

// queueDigest enqueues a digest's worth of alerts of the size a webhook
// makes, for robot "a".
func queueDigest(b *testing.B, st *Bolt) {
	for i := range 1000 {
		sub := submission(i, "a")
		sub.DedupeKey = ""
		sub.Alert.Title = fmt.Sprintf("load-%06d: ValueError: invalid literal for int() with base 10", i)
		sub.Alert.Message = "invalid literal for int() with base 10: 'abc'"
		sub.Alert.Link = fmt.Sprintf("https://sentry.example.com/organizations/acme/issues/%d/", i)
		for t := range 20 {
			sub.Alert.Tags = append(sub.Alert.Tags, formatter.Tag{Key: fmt.Sprintf("tag%d", t), Value: "production-web-1"})
		}
		if _, err := st.Enqueue(ctx, sub); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Sync(ctx); err != nil {
		b.Fatal(err)
	}
}

// longestWait runs f with one P (as when the other is busy) and returns
// the longest a goroutine that became runnable meanwhile (a webhook
// waiting for its answer) had to wait for f to let it run.
func longestWait(f func()) time.Duration {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	done := make(chan struct{})
	waited := make(chan time.Duration)
	go func() {
		var most time.Duration
		for {
			select {
			case <-done:
				waited <- most
				return
			default:
			}
			t := time.Now()
			runtime.Gosched()
			most = max(most, time.Since(t))
		}
	}()
	f()
	close(done)
	return <-waited
}

// BenchmarkPending reads a digest's 1,000 queued alerts; max-wait-us is
// the longest wait longestWait saw.
func BenchmarkPending(b *testing.B) {
	st := open(b, b.TempDir(), nil)
	defer st.Close()
	queueDigest(b, st)
	var worst time.Duration
	b.ReportAllocs()
	for b.Loop() {
		worst = max(worst, longestWait(func() {
			if ds, err := st.Pending(ctx, "a", 1000); err != nil || len(ds) != 1000 {
				b.Fatalf("pending: %d, %v", len(ds), err)
			}
		}))
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-wait-us")
}

// BenchmarkAckDigest removes the 1,000 deliveries of a sent digest (and
// their alerts) in one durable commit.
func BenchmarkAckDigest(b *testing.B) {
	st := open(b, b.TempDir(), nil)
	defer st.Close()
	var worst time.Duration
	for b.Loop() {
		b.StopTimer()
		queueDigest(b, st)
		ds, err := st.Pending(ctx, "a", 1000)
		if err != nil || len(ds) != 1000 {
			b.Fatalf("pending: %d, %v", len(ds), err)
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		b.StartTimer()
		worst = max(worst, longestWait(func() {
			if err := st.Ack(ctx, "a", ids); err != nil {
				b.Fatal(err)
			}
		}))
	}
	if n := st.Depth(context.Background(), "a"); n != 0 {
		b.Fatalf("depth %d after acknowledging everything", n)
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-wait-us")
}

// TestMoverPacesCommits: after a quiet spell an alert is moved into bbolt
// at once; under load the mover commits at most once per moveInterval, so
// its page writes and syncs do not queue in front of the journal's.
func TestMoverPacesCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, t.TempDir(), nil)
		defer b.Close()
		commits := func() int {
			var id int
			b.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
			return id
		}
		start, t0 := commits(), time.Now()
		if _, err := b.Enqueue(ctx, submission(0, "a")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := commits() - start; n != 1 || b.Depth(context.Background(), "a") != 1 || !time.Now().Equal(t0) {
			t.Fatalf("a lone alert: %d commits, depth %d after %v; want it moved at once", n, b.Depth(context.Background(), "a"), time.Since(t0))
		}
		for i := 1; i <= 20; i++ {
			if _, err := b.Enqueue(ctx, submission(i, "a")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if n := commits() - start; n != 1 || b.Depth(context.Background(), "a") != 1 {
			t.Fatalf("right after a commit: %d commits, depth %d; want the burst held back", n, b.Depth(context.Background(), "a"))
		}
		time.Sleep(moveInterval)
		synctest.Wait()
		if n := commits() - start; n != 2 || b.Depth(context.Background(), "a") != 21 {
			t.Fatalf("after moveInterval: %d commits, depth %d; want the burst in one commit", n, b.Depth(context.Background(), "a"))
		}
	})
}
