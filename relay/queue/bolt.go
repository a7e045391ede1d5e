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
// through a journal (see journal.go). Concurrent Enqueue calls share one
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
	reqs    chan *enqueueReq
	closing chan struct{}
	done    chan struct{}
	hurry   chan struct{} // asks the mover to commit without waiting
	once    sync.Once

	mu       sync.Mutex
	moved    *sync.Cond
	toMove   []moveItem         // journaled, not yet in bbolt
	moving   int                // taken by the mover, not yet committed
	lastMove time.Time          // when the mover last committed
	keys     map[[16]byte]int64 // dedupe keys within their window -> expiry (unix ns)
	depth    map[string]int     // deliveries in bbolt, per robot
	stopping bool
	moverErr error
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

type enqueueReq struct {
	sub  Submission
	dup  bool
	err  error
	done chan struct{}
}

// moveItem is a journaled submission on its way into bbolt.
type moveItem struct {
	rec    storedSubmission
	alert  []byte
	dedupe []byte
	end    position
}

// storedSubmission is a submission as the journal keeps it: a record is
// journalRecordV2, a uvarint length, this as JSON, then the alert as
// encodeAlert makes it. Records of earlier versions are this as JSON
// alone, with the alert as JSON inside.
type storedSubmission struct {
	AlertID string          `json:"alert_id"`
	Dedupe  []byte          `json:"dedupe,omitempty"`
	Expires int64           `json:"expires,omitempty"`
	Alert   json.RawMessage `json:"alert,omitempty"`
	Targets []Target        `json:"targets"`
	Accept  time.Time       `json:"accepted"`
}

const journalRecordV2 = 2

func encodeRecord(st storedSubmission, alert []byte) ([]byte, error) {
	header, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(header)+len(alert))
	b = append(binary.AppendUvarint(append(b, journalRecordV2), uint64(len(header))), header...)
	return append(b, alert...), nil
}

// decodeRecord returns a journal record's submission and its stored alert.
func decodeRecord(p []byte) (storedSubmission, []byte, error) {
	var st storedSubmission
	if len(p) > 0 && p[0] == '{' {
		err := json.Unmarshal(p, &st)
		return st, st.Alert, err
	}
	if len(p) == 0 || p[0] != journalRecordV2 {
		return st, nil, errors.New("journal record of unknown format")
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return st, nil, errors.New("journal record truncated")
	}
	header := p[1+k : 1+k+int(n)]
	if err := json.Unmarshal(header, &st); err != nil {
		return st, nil, err
	}
	return st, p[1+k+int(n):], nil
}

// Grouping: submissions per journal write; items per bbolt commit, and the
// least time between two commits. A bbolt commit writes pages all over the
// file and syncs twice, and every journal sync queued behind it is a
// webhook waiting for its answer: under load, a few large commits a second
// keep ack latency low; a lone alert is still moved at once.
const (
	maxGroup     = 512
	maxMove      = 1000
	moveInterval = 500 * time.Millisecond
)

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
		// Unbuffered: a submission is handed to the writer or refused,
		// never left in a buffer nobody reads after Close.
		reqs: make(chan *enqueueReq), closing: make(chan struct{}), done: make(chan struct{}), hurry: make(chan struct{}, 1),
		keys: map[[16]byte]int64{}, depth: map[string]int{},
	}
	b.moved = sync.NewCond(&b.mu)
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAlerts, bucketRefs, bucketDead, bucketDedupe, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: initialize %s: %w", path, err)
	}
	next, err := b.replay()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: replay the journal in %s: %w", dir, err)
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
		db.Close()
		return nil, fmt.Errorf("queue: count %s: %w", path, err)
	}
	if b.journal, err = openJournal(dir, next); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	go b.writer()
	go b.mover()
	return b, nil
}

// replay moves what the journal holds past the recorded position into
// bbolt and deletes the journal files. It returns the number for the next
// journal file.
func (b *Bolt) replay() (uint64, error) {
	var from position
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyJournal); v != nil {
			return json.Unmarshal(v, &from)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	seqs, err := journalFiles(b.dir)
	if err != nil {
		return 0, err
	}
	next := from.Seq + 1
	for _, seq := range seqs {
		next = max(next, seq+1)
		if seq < from.Seq {
			continue
		}
		off := int64(0)
		if seq == from.Seq {
			off = from.Off
		}
		recs, err := readJournal(b.dir, seq, off)
		if err != nil {
			return 0, err
		}
		for len(recs) > 0 {
			n := min(len(recs), maxMove)
			items := make([]moveItem, 0, n)
			for _, r := range recs[:n] {
				st, alert, err := decodeRecord(r.payload)
				if err != nil {
					return 0, fmt.Errorf("journal %d: %w", seq, err)
				}
				items = append(items, moveItem{rec: st, alert: alert, dedupe: st.Dedupe, end: r.end})
			}
			if err := b.db.Update(func(tx *bolt.Tx) error { return store(tx, items) }); err != nil {
				return 0, err
			}
			recs = recs[n:]
		}
	}
	// Everything is in bbolt now.
	for _, seq := range seqs {
		retireJournal(b.dir, seq)
	}
	if seqs, err = journalFiles(b.dir); err != nil || len(seqs) > 0 {
		return 0, errors.Join(err, fmt.Errorf("cannot remove replayed journal files %v", seqs))
	}
	return next, nil
}

// Close stops accepting submissions, moves what was journaled into bbolt
// and closes the files.
func (b *Bolt) Close() error {
	b.once.Do(func() { close(b.closing) })
	<-b.done
	b.mu.Lock()
	b.stopping = true
	b.moved.Broadcast()
	for len(b.toMove) > 0 || b.moving > 0 {
		if b.moverErr != nil {
			// bbolt refuses: the journal keeps the rest for the next start.
			break
		}
		b.moved.Wait()
	}
	empty := len(b.toMove) == 0 && b.moving == 0
	b.mu.Unlock()
	b.journal.close()
	if empty {
		// Everything journaled is in bbolt: a clean start needs no replay.
		if seqs, err := journalFiles(b.dir); err == nil {
			for _, seq := range seqs {
				retireJournal(b.dir, seq)
			}
		}
	}
	return b.db.Close()
}

// Enqueue stores a submission: the alert and one delivery per target,
// durably before it returns. It reports dup (and stores nothing) when the
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

// writer journals waiting submissions together: while one group syncs, the
// next gathers, so a burst costs few fsyncs and a lone webhook waits for
// none but its own.
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
		b.journalGroup(group)
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

// journalGroup decides duplicates, writes the rest to the journal and
// hands them to the mover.
func (b *Bolt) journalGroup(group []*enqueueReq) {
	now := b.now()
	var payloads [][]byte
	var items []moveItem
	var kept []*enqueueReq
	marked := map[[16]byte]bool{}
	for _, r := range group {
		st := storedSubmission{AlertID: r.sub.AlertID, Targets: r.sub.Targets, Accept: r.sub.Accepted}
		window := b.window
		if r.sub.DedupeFor > 0 {
			window = r.sub.DedupeFor
		}
		if r.sub.DedupeKey != "" && window > 0 {
			h := [16]byte(hashKey(r.sub.DedupeKey))
			if marked[h] || b.seen(h, now) {
				r.dup = true
				continue
			}
			marked[h] = true
			st.Dedupe, st.Expires = h[:], now.Add(window).UnixNano()
		}
		alert := encodeAlert(r.sub.Alert)
		payload, err := encodeRecord(st, alert)
		if err != nil {
			r.err = fmt.Errorf("queue: encode alert: %w", err)
			continue
		}
		if len(payload) > MaxRecord {
			r.err = tooLarge(len(payload))
			continue
		}
		payloads = append(payloads, payload)
		items = append(items, moveItem{rec: st, alert: alert, dedupe: st.Dedupe})
		kept = append(kept, r)
	}
	if len(payloads) > 0 {
		ends, err := b.journal.append(payloads)
		if err != nil {
			for _, r := range kept {
				r.err = fmt.Errorf("queue: store alert: %w", err)
			}
		} else {
			for i := range items {
				items[i].end = ends[i]
			}
			b.mu.Lock()
			for _, it := range items {
				if it.dedupe != nil {
					b.keys[[16]byte(it.dedupe)] = it.rec.Expires
				}
			}
			b.toMove = append(b.toMove, items...)
			b.moved.Broadcast()
			b.mu.Unlock()
		}
	}
	for _, r := range group {
		close(r.done)
	}
}

// seen reports whether a dedupe key is within its window.
func (b *Bolt) seen(h [16]byte, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	exp, ok := b.keys[h]
	return ok && exp > now.UnixNano()
}

// dedupeEntry is the key of a dedupe key in bbolt: its expiry first, so
// new keys are appended and expired ones are a prefix to cut.
func dedupeEntry(expires int64, hash []byte) []byte {
	return append(u64(uint64(expires)), hash...)
}

// mover copies journaled submissions into bbolt, many per commit.
func (b *Bolt) mover() {
	for {
		b.mu.Lock()
		for len(b.toMove) == 0 && !b.stopping {
			b.moved.Wait()
		}
		if len(b.toMove) == 0 {
			b.mu.Unlock()
			return
		}
		if wait := time.Until(b.lastMove.Add(moveInterval)); wait > 0 && len(b.toMove) < maxMove && !b.stopping {
			// Nobody waits on this but the dispatcher (and Sync, which
			// hurries it).
			b.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-b.hurry:
			case <-b.closing:
			}
			b.mu.Lock()
		}
		n := min(len(b.toMove), maxMove)
		batch := slices.Clone(b.toMove[:n])
		b.toMove = b.toMove[n:]
		b.moving = n
		stopping := b.stopping
		b.mu.Unlock()

		err := b.db.Update(func(tx *bolt.Tx) error { return store(tx, batch) })
		if err == nil {
			// Before Sync can return: what it waited for is off the journal.
			b.dropMovedJournals(batch)
		}

		b.mu.Lock()
		b.moving = 0
		b.lastMove = time.Now()
		if err != nil {
			b.moverErr = err
			b.toMove = append(batch, b.toMove...)
			b.moved.Broadcast()
			b.mu.Unlock()
			b.log.Error("moving journaled alerts into the queue failed; retrying (they are safe in the journal)", "err", err, "alerts", n)
			if stopping {
				return
			}
			select {
			case <-time.After(time.Second):
			case <-b.closing:
			}
			continue
		}
		b.moverErr = nil
		robots := map[string]bool{}
		for _, it := range batch {
			for _, t := range it.rec.Targets {
				b.depth[t.Robot]++
				robots[t.Robot] = true
			}
		}
		b.moved.Broadcast()
		b.mu.Unlock()
		if b.notify != nil {
			for r := range robots {
				b.notify(r)
			}
		}
	}
}

// dropMovedJournals deletes journal files older than the one holding the
// last moved record: everything in them is in bbolt.
func (b *Bolt) dropMovedJournals(batch []moveItem) {
	var last position
	for _, it := range batch {
		if last.before(it.end) {
			last = it.end
		}
	}
	if last.Seq == 0 {
		return
	}
	seqs, err := journalFiles(b.dir)
	if err != nil {
		return
	}
	for _, seq := range seqs {
		if seq < last.Seq {
			retireJournal(b.dir, seq)
		}
	}
}

// Sync waits until every submission acknowledged so far can be read from
// bbolt.
func (b *Bolt) Sync(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.moved.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	select {
	case b.hurry <- struct{}{}:
	default:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.toMove) > 0 || b.moving > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.moved.Wait()
	}
	return nil
}

// store writes journaled submissions into bbolt and records how far the
// journal has been moved.
func store(tx *bolt.Tx, items []moveItem) error {
	var last position
	alerts, refs, dd := appendOnly(tx.Bucket(bucketAlerts)), appendOnly(tx.Bucket(bucketRefs)), appendOnly(tx.Bucket(bucketDedupe))
	for _, it := range items {
		if it.dedupe != nil {
			if err := dd.Put(dedupeEntry(it.rec.Expires, it.dedupe), nil); err != nil {
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
			seq, err := dead.NextSequence()
			if err != nil {
				return err
			}
			raw, err := json.Marshal(DeadLetter{ID: strconv.FormatUint(seq, 10), Delivery: d, Reason: reason, Buried: now, Unreadable: true})
			if err != nil {
				return err
			}
			if err := dead.Put(u64(seq), raw); err != nil {
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
			dl, err := decodeDeadLetter(k, v)
			if err != nil {
				return err
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

func decodeDeadLetter(k, v []byte) (DeadLetter, error) {
	var dl DeadLetter
	if err := json.Unmarshal(v, &dl); err != nil {
		return dl, fmt.Errorf("dead letter %x: %w", k, err)
	}
	// Unreadable records buried before the flag existed name no alert.
	dl.Unreadable = dl.Unreadable || dl.Delivery.AlertID == ""
	return dl, nil
}

// Replay queues dead letters again: for robot when it is not "", else for
// the robot each was for. ids are dead-letter or alert IDs; none means all.
// It returns the replayed dead letters.
func (b *Bolt) Replay(ctx context.Context, ids []string, robot string) ([]DeadLetter, error) {
	var replayed []DeadLetter
	now := b.now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		replayed = nil
		dead, alerts, refs := tx.Bucket(bucketDead), appendOnly(tx.Bucket(bucketAlerts)), appendOnly(tx.Bucket(bucketRefs))
		var keys [][]byte
		c := dead.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			dl, err := decodeDeadLetter(k, v)
			if err != nil {
				return err
			}
			selected, err := SelectForReplay(dl, ids)
			if err != nil {
				return err
			}
			if !selected {
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
				if err := alerts.Put(id, encodeAlert(d.Alert)); err != nil {
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
			if err := putDelivery(tx, d.Robot, deliveryRecord{AlertID: d.AlertID, Mentions: d.Mentions, Type: d.Type, Note: d.Note, Accepted: now}); err != nil {
				return err
			}
			if err := dead.Delete(keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnreadable) {
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
