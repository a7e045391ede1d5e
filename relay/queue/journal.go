package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// The journal is an append-only log in front of the bbolt store. A group
// of webhooks costs it one sequential write and one sync; a bbolt commit
// costs two fsyncs and scattered page writes. So a webhook is answered once
// its submission is in the journal, and the journal's mover copies
// journaled submissions into bbolt right after, off the webhook's path. On
// start, whatever the journal holds past the position bbolt recorded as
// moved is replayed. Its files are segments (segment.go).
type journal struct {
	dir  string
	sink journalSink
	log  *slog.Logger

	seg     *segment // written by the writer goroutine only
	reqs    chan *journalReq
	closing chan struct{}
	done    chan struct{} // the writer has stopped
	hurry   chan struct{} // asks the mover to commit without waiting
	once    sync.Once

	mu       sync.Mutex
	moved    *sync.Cond
	toMove   []moveItem // journaled, not yet in the sink
	moving   int        // taken by the mover, not yet committed
	lastMove time.Time  // when the mover last committed
	stopping bool
	moverErr error
}

// journalSink is the store the journal moves submissions into.
type journalSink interface {
	// commit stores items durably, with the position after the last of
	// them, in one transaction.
	commit(items []moveItem) error
	// committed is told what a commit of the mover stored, before sync
	// returns for it.
	committed(items []moveItem)
	// damaged keeps a record replay found intact but could not decode.
	damaged(payload []byte, err error) error
}

// moveItem is a journaled submission on its way into the sink.
type moveItem struct {
	rec   storedSubmission
	alert []byte // encodeAlert
	end   position
}

type journalReq struct {
	item    moveItem
	payload []byte // nil: a readiness probe
	err     error
	done    chan struct{}
}

// Grouping: submissions per journal write; items per sink commit, and the
// least time between two commits. A bbolt commit writes pages all over the
// file and syncs twice, and every journal sync queued behind it is a
// webhook waiting for its answer: under load, a few large commits a second
// keep ack latency low; a lone alert is still moved at once.
const (
	maxGroup     = 512
	maxMove      = 1000
	moveInterval = 500 * time.Millisecond
)

// startJournal replays what dir holds past from into sink, then starts a
// new segment and the journal's writer and mover.
func startJournal(dir string, from position, sink journalSink, log *slog.Logger) (*journal, error) {
	next, err := replay(dir, from, sink)
	if err != nil {
		return nil, fmt.Errorf("replay the journal in %s: %w", dir, err)
	}
	seg, err := openSegment(dir, next)
	if err != nil {
		return nil, err
	}
	j := &journal{
		dir: dir, sink: sink, log: log, seg: seg,
		// Unbuffered: a submission is handed to the writer or refused,
		// never left in a buffer nobody reads after close.
		reqs: make(chan *journalReq), closing: make(chan struct{}), done: make(chan struct{}), hurry: make(chan struct{}, 1),
	}
	j.moved = sync.NewCond(&j.mu)
	go j.writer()
	go j.mover()
	return j, nil
}

// replay moves what the segments hold past from into sink and retires
// them. A record that is intact but cannot be decoded goes to the sink as
// damaged, and replay goes on: it must never cost the records after it. It
// returns the number for the next segment.
func replay(dir string, from position, sink journalSink) (uint64, error) {
	seqs, err := segmentFiles(dir)
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
		frames, err := readSegment(dir, seq, off)
		if err != nil {
			return 0, err
		}
		for len(frames) > 0 {
			n := min(len(frames), maxMove)
			items := make([]moveItem, 0, n)
			for _, f := range frames[:n] {
				st, alert, err := decodeRecord(f.payload)
				if err != nil {
					if err := sink.damaged(f.payload, fmt.Errorf("journal %d offset %d: %w", seq, f.end.Off, err)); err != nil {
						return 0, err
					}
					continue
				}
				items = append(items, moveItem{rec: st, alert: alert, end: f.end})
			}
			if err := sink.commit(items); err != nil {
				return 0, err
			}
			frames = frames[n:]
		}
	}
	// Everything is in the sink now.
	for _, seq := range seqs {
		retireSegment(dir, seq)
	}
	if seqs, err = segmentFiles(dir); err != nil || len(seqs) > 0 {
		return 0, errors.Join(err, fmt.Errorf("cannot remove replayed journal segments %v", seqs))
	}
	return next, nil
}

// append journals a submission; it is durable when append returns nil.
func (j *journal) append(ctx context.Context, st storedSubmission, alert []byte) error {
	payload, err := encodeRecord(st, alert)
	if err != nil {
		return fmt.Errorf("queue: encode alert: %w", err)
	}
	if len(payload) > MaxRecord {
		return tooLarge(len(payload))
	}
	return j.submit(ctx, &journalReq{item: moveItem{rec: st, alert: alert}, payload: payload, done: make(chan struct{})})
}

// check reports whether the next submission can be journaled: the writer
// opens a segment if the last write abandoned one, and a full segment
// needs a spare or room for a new one.
func (j *journal) check(ctx context.Context) error {
	return j.submit(ctx, &journalReq{done: make(chan struct{})})
}

func (j *journal) submit(ctx context.Context, req *journalReq) error {
	select {
	case j.reqs <- req:
	case <-j.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer journals waiting submissions together: while one group syncs, the
// next gathers, so a burst costs few fsyncs and a lone webhook waits for
// none but its own.
func (j *journal) writer() {
	defer close(j.done)
	for {
		var group []*journalReq
		select {
		case r := <-j.reqs:
			group = append(group, r)
		case <-j.closing:
			j.failPending()
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-j.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		j.write(group)
	}
}

func (j *journal) failPending() {
	for {
		select {
		case r := <-j.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

// write journals a group and hands it to the mover.
func (j *journal) write(group []*journalReq) {
	var payloads [][]byte
	var kept []*journalReq
	for _, r := range group {
		if r.payload == nil {
			r.err = j.seg.room()
			continue
		}
		payloads = append(payloads, r.payload)
		kept = append(kept, r)
	}
	if len(payloads) > 0 {
		ends, err := j.seg.append(payloads)
		if err != nil {
			for _, r := range kept {
				r.err = fmt.Errorf("queue: store alert: %w", err)
			}
		} else {
			j.mu.Lock()
			for i, r := range kept {
				r.item.end = ends[i]
				j.toMove = append(j.toMove, r.item)
			}
			j.moved.Broadcast()
			j.mu.Unlock()
		}
	}
	for _, r := range group {
		close(r.done)
	}
}

// mover copies journaled submissions into the sink, many per commit.
func (j *journal) mover() {
	for {
		j.mu.Lock()
		for len(j.toMove) == 0 && !j.stopping {
			j.moved.Wait()
		}
		if len(j.toMove) == 0 {
			j.mu.Unlock()
			return
		}
		if wait := time.Until(j.lastMove.Add(moveInterval)); wait > 0 && len(j.toMove) < maxMove && !j.stopping {
			// Nobody waits on this but the dispatcher (and sync, which
			// hurries it).
			j.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-j.hurry:
			case <-j.closing:
			}
			j.mu.Lock()
		}
		n := min(len(j.toMove), maxMove)
		batch := slices.Clone(j.toMove[:n])
		j.toMove = j.toMove[n:]
		j.moving = n
		stopping := j.stopping
		j.mu.Unlock()

		err := j.sink.commit(batch)
		if err == nil {
			// Before sync can return: what it waited for is off the
			// journal and counted.
			j.dropMoved(batch)
			j.sink.committed(batch)
		}

		j.mu.Lock()
		j.moving = 0
		j.lastMove = time.Now()
		if err != nil {
			j.moverErr = err
			j.toMove = append(batch, j.toMove...)
			j.moved.Broadcast()
			j.mu.Unlock()
			j.log.Error("moving journaled alerts into the queue failed; retrying (they are safe in the journal)", "err", err, "alerts", n)
			if stopping {
				return
			}
			select {
			case <-time.After(time.Second):
			case <-j.closing:
			}
			continue
		}
		j.moverErr = nil
		j.moved.Broadcast()
		j.mu.Unlock()
	}
}

// dropMoved retires segments older than the one holding the last moved
// record: everything in them is in the sink.
func (j *journal) dropMoved(batch []moveItem) {
	var last position
	for _, it := range batch {
		if last.before(it.end) {
			last = it.end
		}
	}
	if last.Seq == 0 {
		return
	}
	seqs, err := segmentFiles(j.dir)
	if err != nil {
		return
	}
	for _, seq := range seqs {
		if seq < last.Seq {
			retireSegment(j.dir, seq)
		}
	}
}

// moveFailure is why the last commit of the mover failed; nil when it
// succeeded.
func (j *journal) moveFailure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.moverErr
}

// sync waits until every submission journaled so far is in the sink.
func (j *journal) sync(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		j.mu.Lock()
		j.moved.Broadcast()
		j.mu.Unlock()
	})
	defer stop()
	select {
	case j.hurry <- struct{}{}:
	default:
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for len(j.toMove) > 0 || j.moving > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		j.moved.Wait()
	}
	return nil
}

// close stops taking submissions, moves what was journaled into the sink
// and closes the segment. When everything is in the sink the segments are
// retired, so the next start has nothing to replay; otherwise they keep the
// rest for it.
func (j *journal) close() {
	j.once.Do(func() { close(j.closing) })
	<-j.done
	j.mu.Lock()
	j.stopping = true
	j.moved.Broadcast()
	for (len(j.toMove) > 0 || j.moving > 0) && j.moverErr == nil {
		j.moved.Wait()
	}
	empty := len(j.toMove) == 0 && j.moving == 0
	j.mu.Unlock()
	j.seg.close()
	if !empty {
		return
	}
	if seqs, err := segmentFiles(j.dir); err == nil {
		for _, seq := range seqs {
			retireSegment(j.dir, seq)
		}
	}
}

// closed reports whether close has begun.
func (j *journal) closed() bool {
	select {
	case <-j.closing:
		return true
	default:
		return false
	}
}

// storedSubmission is a submission as the journal keeps it. A record is
// recordFormat, a uvarint length, this as JSON, then the alert as
// encodeAlert makes it. A change of this layout gets a new format byte, a
// decoder for the old one and a test that reads records of the old one
// (TestStoredFormatsStillDecode).
type storedSubmission struct {
	AlertID string    `json:"alert_id"`
	Dedupe  []byte    `json:"dedupe,omitempty"`
	Expires int64     `json:"expires,omitempty"`
	Targets []Target  `json:"targets"`
	Accept  time.Time `json:"accepted"`
}

const recordFormat = 2

func encodeRecord(st storedSubmission, alert []byte) ([]byte, error) {
	header, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(header)+len(alert))
	b = append(binary.AppendUvarint(append(b, recordFormat), uint64(len(header))), header...)
	return append(b, alert...), nil
}

// decodeRecord returns a journal record's submission and its stored alert.
func decodeRecord(p []byte) (storedSubmission, []byte, error) {
	var st storedSubmission
	if len(p) == 0 || p[0] != recordFormat {
		return st, nil, errors.New("journal record of unknown format")
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return st, nil, errors.New("journal record truncated")
	}
	if err := json.Unmarshal(p[1+k:1+k+int(n)], &st); err != nil {
		return st, nil, err
	}
	return st, p[1+k+int(n):], nil
}
