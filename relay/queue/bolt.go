package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Bucket layout. An alert is stored once; each robot's queue holds small
// records pointing at it, and refs counts how many still do.
var (
	bucketAlerts = []byte("alerts") // alert id -> formatter.Alert (JSON)
	bucketRefs   = []byte("refs")   // alert id -> uint32 deliveries left
	bucketDead   = []byte("dead")   // seq -> DeadLetter
	bucketDedupe = []byte("dedupe") // hash(dedupe key) -> expiry (unix ns)
	bucketMeta   = []byte("meta")
	queuePrefix  = []byte("q/") // "q/<robot>": seq -> deliveryRecord
)

// FileName is the name of the database file in the data directory.
const FileName = "queue.db"

type deliveryRecord struct {
	AlertID  string             `json:"alert_id"`
	Mentions formatter.Mentions `json:"mentions"`
	Type     string             `json:"type,omitempty"`
	Accepted time.Time          `json:"accepted"`
}

// Bolt is the embedded store: one bbolt file, fsynced on every commit.
// Concurrent Enqueue calls share commits (group commit), so durability does
// not cap the webhook rate.
type Bolt struct {
	db     *bolt.DB
	window time.Duration
	now    func() time.Time

	reqs    chan *enqueueReq
	closing chan struct{}
	done    chan struct{}
	once    sync.Once

	mu    sync.Mutex
	depth map[string]int
}

// BoltOptions configure OpenBolt.
type BoltOptions struct {
	// DedupeWindow is how long a dedupe key is remembered.
	DedupeWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LockTimeout is how long to wait for another process holding the
	// file; 0 means one second.
	LockTimeout time.Duration
}

// ErrLocked means another process (a running relay) has the store open.
var ErrLocked = errors.New("queue: the store is in use by another process")

type enqueueReq struct {
	sub  Submission
	dup  bool
	err  error
	done chan struct{}
}

// maxGroup bounds how many submissions share one commit.
const maxGroup = 512

// OpenBolt opens (creating if needed) the store in dir.
func OpenBolt(dir string, opts BoltOptions) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: create data directory: %w", err)
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	b := &Bolt{
		db: db, window: opts.DedupeWindow, now: opts.Now,
		// Unbuffered: a submission is handed to the writer or refused,
		// never left in a buffer nobody reads after Close.
		reqs: make(chan *enqueueReq), closing: make(chan struct{}), done: make(chan struct{}),
		depth: map[string]int{},
	}
	if b.now == nil {
		b.now = time.Now
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAlerts, bucketRefs, bucketDead, bucketDedupe, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			if robot, ok := bytes.CutPrefix(name, queuePrefix); ok {
				b.depth[string(robot)] = bk.Stats().KeyN
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: initialize %s: %w", path, err)
	}
	go b.writer()
	return b, nil
}

// Close stops accepting submissions, finishes the commit in progress and
// closes the file.
func (b *Bolt) Close() error {
	b.once.Do(func() { close(b.closing) })
	<-b.done
	return b.db.Close()
}

// Enqueue stores a submission: the alert and one delivery per target, in
// one durable commit. It reports dup (and stores nothing) when the
// submission's dedupe key was seen within the dedupe window.
func (b *Bolt) Enqueue(ctx context.Context, sub Submission) (dup bool, err error) {
	req := &enqueueReq{sub: sub, done: make(chan struct{})}
	select {
	case b.reqs <- req:
	case <-b.closing:
		return false, ErrClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case <-req.done:
		return req.dup, req.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// writer commits waiting submissions together: while one commit syncs,
// the next batch gathers, so a burst costs few fsyncs and a lone webhook
// waits for none but its own.
func (b *Bolt) writer() {
	defer close(b.done)
	for {
		var group []*enqueueReq
		select {
		case r := <-b.reqs:
			group = append(group, r)
		case <-b.closing:
			b.failPending()
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-b.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		b.commit(group)
	}
}

func (b *Bolt) failPending() {
	for {
		select {
		case r := <-b.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

func (b *Bolt) commit(group []*enqueueReq) {
	added := map[string]int{}
	now := b.now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, r := range group {
			r.dup = false
			dup, err := b.put(tx, r.sub, now)
			if err != nil {
				return err
			}
			r.dup = dup
		}
		return nil
	})
	if err == nil {
		for _, r := range group {
			if !r.dup {
				for _, t := range r.sub.Targets {
					added[t.Robot]++
				}
			}
		}
		b.mu.Lock()
		for robot, n := range added {
			b.depth[robot] += n
		}
		b.mu.Unlock()
	}
	for _, r := range group {
		if err != nil {
			r.err = fmt.Errorf("queue: store alert: %w", err)
		}
		close(r.done)
	}
}

func (b *Bolt) put(tx *bolt.Tx, sub Submission, now time.Time) (dup bool, err error) {
	if sub.DedupeKey != "" && b.window > 0 {
		dd := tx.Bucket(bucketDedupe)
		k := hashKey(sub.DedupeKey)
		if v := dd.Get(k); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
			return true, nil
		}
		if err := dd.Put(k, u64(uint64(now.Add(b.window).UnixNano()))); err != nil {
			return false, err
		}
	}
	if len(sub.Targets) == 0 {
		return false, nil
	}
	alert, err := json.Marshal(sub.Alert)
	if err != nil {
		return false, err
	}
	id := []byte(sub.AlertID)
	if err := tx.Bucket(bucketAlerts).Put(id, alert); err != nil {
		return false, err
	}
	if err := tx.Bucket(bucketRefs).Put(id, u32(uint32(len(sub.Targets)))); err != nil {
		return false, err
	}
	for _, t := range sub.Targets {
		if err := putDelivery(tx, t.Robot, deliveryRecord{AlertID: sub.AlertID, Mentions: t.Mentions, Type: t.Type, Accepted: sub.Accepted}); err != nil {
			return false, err
		}
	}
	return false, nil
}

func putDelivery(tx *bolt.Tx, robot string, d deliveryRecord) error {
	q, err := tx.CreateBucketIfNotExists(queueName(robot))
	if err != nil {
		return err
	}
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	rec, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return q.Put(u64(seq), rec)
}

// Pending returns up to max deliveries waiting for robot, oldest first.
func (b *Bolt) Pending(ctx context.Context, robot string, max int) ([]Delivery, error) {
	// Copy the records out and decode after the read transaction: a long
	// read transaction would stall a commit that needs to grow the file,
	// and with it every webhook waiting for that commit.
	type raw struct{ key, delivery, alert []byte }
	var rows []raw
	err := b.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(queueName(robot))
		if q == nil {
			return nil
		}
		alerts := tx.Bucket(bucketAlerts)
		c := q.Cursor()
		for k, v := c.First(); k != nil && len(rows) < max; k, v = c.Next() {
			var rec struct {
				AlertID string `json:"alert_id"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("delivery %x: %w", k, err)
			}
			a := alerts.Get([]byte(rec.AlertID))
			if a == nil {
				return fmt.Errorf("delivery %x: alert %s missing", k, rec.AlertID)
			}
			rows = append(rows, raw{slices.Clone(k), slices.Clone(v), slices.Clone(a)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: read %s: %w", robot, err)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		if out[i], err = decodeDelivery(robot, r.key, r.delivery, r.alert); err != nil {
			return nil, fmt.Errorf("queue: read %s: %w", robot, err)
		}
	}
	return out, nil
}

func decodeDelivery(robot string, k, v, alert []byte) (Delivery, error) {
	var rec deliveryRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Delivery{}, fmt.Errorf("delivery %x: %w", k, err)
	}
	d := Delivery{ID: seqID(k), AlertID: rec.AlertID, Robot: robot, Mentions: rec.Mentions, Type: rec.Type, Accepted: rec.Accepted}
	if err := json.Unmarshal(alert, &d.Alert); err != nil {
		return Delivery{}, fmt.Errorf("alert %s: %w", rec.AlertID, err)
	}
	return d, nil
}

// Ack removes deliveries the robot accepted.
func (b *Bolt) Ack(ctx context.Context, robot string, ids []string) error {
	return b.remove(robot, ids, nil, "")
}

// Bury turns deliveries into dead letters.
func (b *Bolt) Bury(ctx context.Context, robot string, ids []string, reason string) error {
	return b.remove(robot, ids, b.now, reason)
}

// remove deletes deliveries from robot's queue, keeping them as dead letters
// when buried is set.
func (b *Bolt) remove(robot string, ids []string, buried func() time.Time, reason string) error {
	removed := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		q := tx.Bucket(queueName(robot))
		if q == nil {
			return nil
		}
		alerts, refs, dead := tx.Bucket(bucketAlerts), tx.Bucket(bucketRefs), tx.Bucket(bucketDead)
		for _, id := range ids {
			k, err := parseSeqID(id)
			if err != nil {
				return err
			}
			v := q.Get(k)
			if v == nil {
				continue
			}
			if buried != nil {
				var rec deliveryRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				d, err := decodeDelivery(robot, k, v, alerts.Get([]byte(rec.AlertID)))
				if err != nil {
					return err
				}
				seq, err := dead.NextSequence()
				if err != nil {
					return err
				}
				dl := DeadLetter{ID: strconv.FormatUint(seq, 10), Delivery: d, Reason: reason, Buried: buried()}
				raw, err := json.Marshal(dl)
				if err != nil {
					return err
				}
				if err := dead.Put(u64(seq), raw); err != nil {
					return err
				}
			}
			var rec deliveryRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			if err := q.Delete(k); err != nil {
				return err
			}
			if err := release(alerts, refs, rec.AlertID); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: update %s: %w", robot, err)
	}
	b.mu.Lock()
	b.depth[robot] -= removed
	b.mu.Unlock()
	return nil
}

// release drops one reference to an alert, deleting it with the last.
func release(alerts, refs *bolt.Bucket, alertID string) error {
	id := []byte(alertID)
	v := refs.Get(id)
	n := uint32(0)
	if len(v) == 4 {
		n = binary.BigEndian.Uint32(v)
	}
	if n > 1 {
		return refs.Put(id, u32(n-1))
	}
	if err := refs.Delete(id); err != nil {
		return err
	}
	return alerts.Delete(id)
}

// DeadLetters returns every dead letter, oldest first.
func (b *Bolt) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			var dl DeadLetter
			if err := json.Unmarshal(v, &dl); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			out = append(out, dl)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("queue: read dead letters: %w", err)
	}
	return out, nil
}

// Replay queues dead letters again: for robot when it is not "", else for
// the robot each was for. ids are dead-letter or alert IDs; none means all.
// It returns the replayed dead letters.
func (b *Bolt) Replay(ctx context.Context, ids []string, robot string) ([]DeadLetter, error) {
	var replayed []DeadLetter
	now := b.now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		replayed = nil
		dead, alerts, refs := tx.Bucket(bucketDead), tx.Bucket(bucketAlerts), tx.Bucket(bucketRefs)
		var keys [][]byte
		c := dead.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var dl DeadLetter
			if err := json.Unmarshal(v, &dl); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			if len(ids) > 0 && !slices.Contains(ids, dl.ID) && !slices.Contains(ids, dl.Delivery.AlertID) {
				continue
			}
			if robot != "" {
				dl.Delivery.Robot = robot
			}
			keys = append(keys, slices.Clone(k))
			replayed = append(replayed, dl)
		}
		if len(ids) > 0 && len(replayed) == 0 {
			return ErrNotFound
		}
		for i, dl := range replayed {
			d := dl.Delivery
			id := []byte(d.AlertID)
			if alerts.Get(id) == nil {
				raw, err := json.Marshal(d.Alert)
				if err != nil {
					return err
				}
				if err := alerts.Put(id, raw); err != nil {
					return err
				}
			}
			n := uint32(0)
			if v := refs.Get(id); len(v) == 4 {
				n = binary.BigEndian.Uint32(v)
			}
			if err := refs.Put(id, u32(n+1)); err != nil {
				return err
			}
			// A replayed alert gets a fresh age, or it would expire again
			// at once.
			if err := putDelivery(tx, d.Robot, deliveryRecord{AlertID: d.AlertID, Mentions: d.Mentions, Type: d.Type, Accepted: now}); err != nil {
				return err
			}
			if err := dead.Delete(keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("queue: replay: %w", err)
	}
	b.mu.Lock()
	for _, dl := range replayed {
		b.depth[dl.Delivery.Robot]++
	}
	b.mu.Unlock()
	return replayed, nil
}

// Depth returns how many deliveries wait for robot.
func (b *Bolt) Depth(robot string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.depth[robot]
}

// Robots returns the robots that have deliveries waiting.
func (b *Bolt) Robots() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for r, n := range b.depth {
		if n > 0 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Check verifies the store can still commit a write.
func (b *Bolt) Check(ctx context.Context) error {
	select {
	case <-b.closing:
		return ErrClosed
	default:
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("checked"), u64(uint64(b.now().UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("queue: store is not writable: %w", err)
	}
	return nil
}

// Sweep forgets dedupe keys whose window has passed.
func (b *Bolt) Sweep(ctx context.Context) (int, error) {
	now := uint64(b.now().UnixNano())
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		dd := tx.Bucket(bucketDedupe)
		var expired [][]byte
		err := dd.ForEach(func(k, v []byte) error {
			if len(v) != 8 || binary.BigEndian.Uint64(v) <= now {
				expired = append(expired, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := dd.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: sweep dedupe keys: %w", err)
	}
	return n, nil
}

func queueName(robot string) []byte {
	return append(slices.Clone(queuePrefix), robot...)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func seqID(k []byte) string {
	return strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
}

func parseSeqID(id string) ([]byte, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad delivery id %q", id)
	}
	return u64(n), nil
}
