package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	bucketAlerts = []byte("alerts") // alert id -> formatter.Alert (encodeAlert)
	bucketRefs   = []byte("refs")   // alert id -> uint32 deliveries left
	bucketDead   = []byte("dead")   // seq -> DeadLetter
	bucketDedupe = []byte("dedupe") // expiry (unix ns) + hash(dedupe key) -> nothing
	bucketMeta   = []byte("meta")
	queuePrefix  = []byte("q/") // "q/<robot>": seq -> deliveryRecord (encodeDeliveryRecord)
)

// FileName is the name of the database file in the data directory.
const FileName = "queue.db"

type deliveryRecord struct {
	AlertID  string             `json:"alert_id"`
	Mentions formatter.Mentions `json:"mentions"`
	Type     string             `json:"type,omitempty"`
	Note     string             `json:"note,omitempty"`
	Accepted time.Time          `json:"accepted"`
}

// Bolt is the embedded store: a bbolt file, fsynced on every commit, fed
// through a journal (journal.go). Concurrent Enqueue calls share one
// journal write and sync (group commit), so durability does not cap the
// webhook rate, and the bbolt commits happen off the webhook's path.
type Bolt struct {
	db     *bolt.DB
	dir    string
	window time.Duration
	now    func() time.Time
	notify func(robot string)
	log    *slog.Logger

	journal *journal

	mu    sync.Mutex
	keys  map[[16]byte]int64 // dedupe keys within their window -> expiry (unix ns)
	depth map[string]int     // deliveries in bbolt, per robot
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
	// Notify is called with a robot once new deliveries for it can be read.
	Notify func(robot string)
	// Log receives the store's errors; nil discards.
	Log *slog.Logger
}

// ErrLocked means another process (a running relay) has the store open.
var ErrLocked = errors.New("queue: the store is in use by another process")

var keyJournal = []byte("journal") // meta: position moved into bbolt

// OpenBolt opens (creating if needed) the store in dir, replaying any
// journaled submissions a crash left unmoved.
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
		db: db, dir: dir, window: opts.DedupeWindow, now: opts.Now, notify: opts.Notify, log: opts.Log,
		keys: map[[16]byte]int64{}, depth: map[string]int{},
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	var from position
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAlerts, bucketRefs, bucketDead, bucketDedupe, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyJournal); v != nil {
			return json.Unmarshal(v, &from)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: initialize %s: %w", path, err)
	}
	if b.journal, err = startJournal(dir, from, b, b.log); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	now := b.now().UnixNano()
	err = db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketDedupe).ForEach(func(k, _ []byte) error {
			if exp := int64(binary.BigEndian.Uint64(k)); len(k) == 24 && exp > now {
				b.keys[[16]byte(k[8:])] = exp
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			if robot, ok := bytes.CutPrefix(name, queuePrefix); ok {
				b.depth[string(robot)] = bk.Stats().KeyN
			}
			return nil
		})
	})
	if err != nil {
		b.journal.close()
		db.Close()
		return nil, fmt.Errorf("queue: count %s: %w", path, err)
	}
	return b, nil
}

// Close stops accepting submissions, moves what was journaled into bbolt
// and closes the files.
func (b *Bolt) Close() error {
	b.journal.close()
	return b.db.Close()
}

// Enqueue stores a submission: the alert and one delivery per target,
// durably before it returns. It reports dup (and stores nothing) when the
// submission's dedupe key was seen within the dedupe window.
func (b *Bolt) Enqueue(ctx context.Context, sub Submission) (dup bool, err error) {
	if b.journal.closed() {
		return false, ErrClosed
	}
	st := storedSubmission{AlertID: sub.AlertID, Targets: sub.Targets, Accept: sub.Accepted}
	window := b.window
	if sub.DedupeFor > 0 {
		window = sub.DedupeFor
	}
	var h [16]byte
	if sub.DedupeKey != "" && window > 0 {
		now := b.now()
		h = [16]byte(hashKey(sub.DedupeKey))
		b.mu.Lock()
		if exp, ok := b.keys[h]; ok && exp > now.UnixNano() {
			b.mu.Unlock()
			return true, nil
		}
		// Claimed before the write, so a copy arriving meanwhile is a
		// duplicate.
		st.Dedupe, st.Expires = h[:], now.Add(window).UnixNano()
		b.keys[h] = st.Expires
		b.mu.Unlock()
	}
	err = b.journal.append(ctx, st, encodeAlert(sub.Alert))
	if err != nil && st.Dedupe != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		// Not stored: a retry must not be taken for a duplicate. (After a
		// timeout the write may still land, so the claim stays.)
		b.mu.Lock()
		if b.keys[h] == st.Expires {
			delete(b.keys, h)
		}
		b.mu.Unlock()
	}
	return false, err
}

// Sync waits until every submission acknowledged so far can be read from
// bbolt.
func (b *Bolt) Sync(ctx context.Context) error {
	return b.journal.sync(ctx)
}

// commit moves journaled submissions into bbolt.
func (b *Bolt) commit(items []moveItem) error {
	return b.db.Update(func(tx *bolt.Tx) error { return store(tx, items) })
}

// committed counts what the mover stored and wakes the robots' workers.
func (b *Bolt) committed(items []moveItem) {
	robots := map[string]bool{}
	b.mu.Lock()
	for _, it := range items {
		for _, t := range it.rec.Targets {
			b.depth[t.Robot]++
			robots[t.Robot] = true
		}
	}
	b.mu.Unlock()
	if b.notify != nil {
		for r := range robots {
			b.notify(r)
		}
	}
}

// dedupeEntry is the key of a dedupe key in bbolt: its expiry first, so
// new keys are appended and expired ones are a prefix to cut.
func dedupeEntry(expires int64, hash []byte) []byte {
	return append(u64(uint64(expires)), hash...)
}

// store writes journaled submissions into bbolt and records how far the
// journal has been moved.
func store(tx *bolt.Tx, items []moveItem) error {
	var last position
	alerts, refs, dd := appendOnly(tx.Bucket(bucketAlerts)), appendOnly(tx.Bucket(bucketRefs)), appendOnly(tx.Bucket(bucketDedupe))
	for _, it := range items {
		if it.rec.Dedupe != nil {
			if err := dd.Put(dedupeEntry(it.rec.Expires, it.rec.Dedupe), nil); err != nil {
				return err
			}
		}
		if last.before(it.end) {
			last = it.end
		}
		if len(it.rec.Targets) == 0 {
			continue
		}
		id := []byte(it.rec.AlertID)
		if err := alerts.Put(id, it.alert); err != nil {
			return err
		}
		if err := refs.Put(id, u32(uint32(len(it.rec.Targets)))); err != nil {
			return err
		}
		for _, t := range it.rec.Targets {
			if err := putDelivery(tx, t.Robot, deliveryRecord{AlertID: it.rec.AlertID, Mentions: t.Mentions, Type: t.Type, Note: t.Note, Accepted: it.rec.Accept}); err != nil {
				return err
			}
		}
	}
	if last.Seq == 0 {
		return nil
	}
	pos, err := json.Marshal(last)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyJournal, pos)
}

func putDelivery(tx *bolt.Tx, robot string, d deliveryRecord) error {
	q, err := tx.CreateBucketIfNotExists(queueName(robot))
	if err != nil {
		return err
	}
	appendOnly(q)
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	return q.Put(u64(seq), encodeDeliveryRecord(d))
}

// Pending returns up to max deliveries waiting for robot, oldest first.
func (b *Bolt) Pending(ctx context.Context, robot string, max int) ([]Delivery, error) {
	// Copy the records out and decode after the read transaction: a long
	// read transaction would stall a commit that needs to grow the file,
	// and with it every webhook waiting for that commit.
	type raw struct {
		key, alert []byte
		rec        deliveryRecord
		err        error
	}
	var rows []raw
	err := b.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(queueName(robot))
		if q == nil {
			return nil
		}
		alerts := tx.Bucket(bucketAlerts)
		c := q.Cursor()
		for k, v := c.First(); k != nil && len(rows) < max; k, v = c.Next() {
			pause(len(rows))
			r := raw{key: slices.Clone(k)}
			if r.rec, r.err = decodeDeliveryRecord(v); r.err != nil {
				r.err = fmt.Errorf("delivery %x: %w", k, r.err)
			} else {
				r.alert = slices.Clone(alerts.Get([]byte(r.rec.AlertID)))
			}
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: read %s: %w", robot, err)
	}
	out := make([]Delivery, 0, len(rows))
	var bad []unreadable
	for i, r := range rows {
		pause(i)
		var d Delivery
		err := r.err
		if err == nil {
			d, err = decodeDelivery(robot, r.key, r.rec, r.alert)
		}
		if err != nil {
			// One unreadable record must not stop the robot's queue.
			b.log.Error("unreadable queue record; it becomes a dead letter", "robot", robot, "err", err)
			bad = append(bad, unreadable{key: r.key, err: err})
			continue
		}
		out = append(out, d)
	}
	if len(bad) > 0 {
		if err := b.buryUnreadable(robot, bad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type unreadable struct {
	key []byte
	err error
}

// buryUnreadable moves deliveries that cannot be decoded to the dead
// letters, quoting the stored bytes in the reason so nothing is thrown
// away. When only the alert is unreadable, the delivery record still says
// which alert it was, so its reference is dropped like any delivered one's.
func (b *Bolt) buryUnreadable(robot string, bad []unreadable) error {
	now := b.now()
	removed := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		q, dead := tx.Bucket(queueName(robot)), appendOnly(tx.Bucket(bucketDead))
		alerts, refs := tx.Bucket(bucketAlerts), tx.Bucket(bucketRefs)
		for _, u := range bad {
			v := q.Get(u.key)
			if v == nil {
				continue
			}
			d := Delivery{ID: seqID(u.key), Robot: robot}
			reason := "unreadable queue record (" + u.err.Error() + "): " + strconv.Quote(string(v))
			rec, err := decodeDeliveryRecord(v)
			if err == nil {
				d.AlertID, d.Mentions, d.Type, d.Note, d.Accepted = rec.AlertID, rec.Mentions, rec.Type, rec.Note, rec.Accepted
				reason = "unreadable alert (" + u.err.Error() + "): " + strconv.Quote(string(alerts.Get([]byte(rec.AlertID))))
			}
			if err := bury(dead, DeadLetter{Delivery: d, Reason: reason, Buried: now, Unreadable: true}); err != nil {
				return err
			}
			if err := q.Delete(u.key); err != nil {
				return err
			}
			if d.AlertID != "" {
				if err := release(alerts, refs, d.AlertID); err != nil {
					return err
				}
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: bury unreadable records of %s: %w", robot, err)
	}
	b.mu.Lock()
	b.depth[robot] -= removed
	b.mu.Unlock()
	return nil
}

func decodeDelivery(robot string, k []byte, rec deliveryRecord, alert []byte) (Delivery, error) {
	d := Delivery{ID: seqID(k), AlertID: rec.AlertID, Robot: robot, Mentions: rec.Mentions, Type: rec.Type, Note: rec.Note, Accepted: rec.Accepted}
	if alert == nil {
		return Delivery{}, fmt.Errorf("delivery %x: alert %s missing", k, rec.AlertID)
	}
	a, err := decodeAlert(alert)
	if err != nil {
		return Delivery{}, fmt.Errorf("alert %s: %w", rec.AlertID, err)
	}
	d.Alert = a
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
		alerts, refs, dead := tx.Bucket(bucketAlerts), tx.Bucket(bucketRefs), appendOnly(tx.Bucket(bucketDead))
		for i, id := range ids {
			pause(i)
			k, err := parseSeqID(id)
			if err != nil {
				return err
			}
			v := q.Get(k)
			if v == nil {
				continue
			}
			rec, err := decodeDeliveryRecord(v)
			if err != nil {
				return err
			}
			if buried != nil {
				d, err := decodeDelivery(robot, k, rec, alerts.Get([]byte(rec.AlertID)))
				if err != nil {
					return err
				}
				if err := bury(dead, DeadLetter{Delivery: d, Reason: reason, Buried: buried()}); err != nil {
					return err
				}
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

// Depth returns how many deliveries wait for robot.
func (b *Bolt) Depth(ctx context.Context, robot string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.depth[robot]
}

// BuryOthers turns what waits for robots keep does not want into dead
// letters, where they can be listed and replayed to another robot, and
// returns how many each had. (Only the local store does this: with Redis, a
// relay still running the old configuration during a rollout may be
// delivering them.)
func (b *Bolt) BuryOthers(ctx context.Context, keep func(robot string) bool, reason string) (map[string]int, error) {
	buried := map[string]int{}
	for _, robot := range b.Robots() {
		if keep(robot) {
			continue
		}
		ds, err := b.Pending(ctx, robot, b.Depth(ctx, robot))
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		if err := b.Bury(ctx, robot, ids, reason); err != nil {
			return nil, err
		}
		buried[robot] = len(ds)
	}
	return buried, nil
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

// Check reports whether the next alert can be stored: the journal can take
// it (a failed write is behind it, and a full segment has somewhere to go).
// When the journal takes alerts but they cannot be moved into bbolt, it is
// ErrDegraded: webhooks are still answered, their alerts wait in the
// journal.
func (b *Bolt) Check(ctx context.Context) error {
	if err := b.journal.check(ctx); err != nil {
		return fmt.Errorf("queue: the journal cannot take alerts: %w", err)
	}
	if err := b.journal.moveFailure(); err != nil {
		return fmt.Errorf("%w: alerts are kept in the journal but cannot be moved into %s: %v", ErrDegraded, FileName, err)
	}
	return nil
}

// Sweep forgets dedupe keys whose window has passed.
func (b *Bolt) Sweep(ctx context.Context) (int, error) {
	now := b.now().UnixNano()
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		n = 0
		dd := tx.Bucket(bucketDedupe)
		var expired [][]byte
		c := dd.Cursor()
		for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= now; k, _ = c.Next() {
			expired = append(expired, slices.Clone(k))
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
	b.mu.Lock()
	for h, exp := range b.keys {
		if exp <= now {
			delete(b.keys, h)
		}
	}
	b.mu.Unlock()
	return n, nil
}

// appendOnly packs a bucket's pages full: its keys only ever grow (time-
// ordered ids, sequences), so the half-empty pages bbolt leaves for
// inserts in the middle would only double the pages every commit writes.
func appendOnly(b *bolt.Bucket) *bolt.Bucket {
	b.FillPercent = 0.95
	return b
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
