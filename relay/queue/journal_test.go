package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// journalOnly writes submissions to a journal as the writer does, without
// moving them: the state a crash right after the 202 leaves behind.
func journalOnly(t *testing.T, dir string, seq uint64, subs ...Submission) []position {
	t.Helper()
	j, err := openSegment(dir, seq)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	var payloads [][]byte
	for _, sub := range subs {
		st := storedSubmission{AlertID: sub.AlertID, Targets: sub.Targets, Accept: sub.Accepted}
		if sub.DedupeKey != "" {
			h := hashKey(sub.DedupeKey)
			st.Dedupe, st.Expires = h, time.Now().Add(time.Hour).UnixNano()
		}
		p, _ := encodeRecord(st, encodeAlert(sub.Alert))
		payloads = append(payloads, p)
	}
	ends, err := j.append(payloads)
	if err != nil {
		t.Fatal(err)
	}
	return ends
}

func TestReplayAfterCrash(t *testing.T) {
	dir := t.TempDir()
	// A store that has moved alert 0, then crashed with 1 and 2 journaled only.
	b := open(t, dir, nil)
	enqueue(t, b, submission(0, "a"))
	b.Close()
	journalOnly(t, dir, 7, submission(1, "a", "b"), submission(2, "a"))

	b = open(t, dir, nil)
	defer b.Close()
	pa, _ := b.Pending(ctx, "a", 10)
	pb, _ := b.Pending(ctx, "b", 10)
	if fmt.Sprint(titles(pa)) != "[alert 0 alert 1 alert 2]" || fmt.Sprint(titles(pb)) != "[alert 1]" {
		t.Fatalf("after replay a=%v b=%v", titles(pa), titles(pb))
	}
	if b.Depth(context.Background(), "a") != 3 || b.Depth(context.Background(), "b") != 1 {
		t.Errorf("depths %d %d", b.Depth(context.Background(), "a"), b.Depth(context.Background(), "b"))
	}
	// Replayed dedupe keys still count.
	if dup := enqueue(t, b, submission(2, "a")); !dup {
		t.Error("replayed submission's dedupe key forgotten")
	}
	if seqs, _ := segmentFiles(dir); len(seqs) != 1 || seqs[0] != 8 {
		t.Errorf("journal files after replay: %v, want only the new one (8)", seqs)
	}
}

func TestReplaySkipsWhatWasMoved(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	subs := []Submission{submission(1, "a"), submission(2, "a"), submission(3, "a")}
	ends := journalOnly(t, dir, 100, subs...)
	// The mover stored the first two (and recorded how far it got); then
	// the process died before deleting the journal.
	var items []moveItem
	for i, sub := range subs[:2] {
		items = append(items, moveItem{rec: storedSubmission{AlertID: sub.AlertID, Targets: sub.Targets, Accept: sub.Accepted}, alert: encodeAlert(sub.Alert), end: ends[i]})
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return store(tx, items) }); err != nil {
		t.Fatal(err)
	}
	b.db.Close() // a crash: no Close, no journal cleanup

	b = open(t, dir, nil)
	defer b.Close()
	pa, _ := b.Pending(ctx, "a", 10)
	if fmt.Sprint(titles(pa)) != "[alert 1 alert 2 alert 3]" {
		t.Fatalf("pending %v: want each alert once", titles(pa))
	}
}

func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	ends := journalOnly(t, dir, 1, submission(1, "a"), submission(2, "a"), submission(3, "a"))
	path := segmentPath(dir, 1)
	// Cut the last record in half: a write the crash interrupted (never
	// acknowledged).
	if err := os.Truncate(path, ends[1].Off+10); err != nil {
		t.Fatal(err)
	}
	// A second file written after the torn one must still be replayed.
	journalOnly(t, dir, 2, submission(4, "a"))
	b := open(t, dir, nil)
	defer b.Close()
	pa, _ := b.Pending(ctx, "a", 10)
	if fmt.Sprint(titles(pa)) != "[alert 1 alert 2 alert 4]" {
		t.Fatalf("pending %v", titles(pa))
	}
}

func TestCorruptRecordStopsReplayOfItsFile(t *testing.T) {
	dir := t.TempDir()
	ends := journalOnly(t, dir, 1, submission(1, "a"), submission(2, "a"))
	data, _ := os.ReadFile(segmentPath(dir, 1))
	data[ends[0].Off+frameHeader+2] ^= 0xff // flip a byte of record 2's payload
	os.WriteFile(segmentPath(dir, 1), data, 0o600)
	recs, err := readSegment(dir, 1, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read %d records (%v), want the one before the corruption", len(recs), err)
	}
	// A length past the end or absurdly large is a torn tail too.
	os.WriteFile(segmentPath(dir, 3), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2}, 0o600)
	if recs, _ := readSegment(dir, 3, 0); len(recs) != 0 {
		t.Errorf("garbage gave %d records", len(recs))
	}
}

func TestJournalRotatesAndDropsMovedFiles(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	defer b.Close()
	// Each alert carries ~64 KiB of message: 300 of them cross the 16 MiB limit.
	big := submission(0, "a")
	for i := range 300 {
		s := big
		s.AlertID = NewID(time.Now())
		s.DedupeKey = fmt.Sprint("big", i)
		s.Alert.Message = string(make([]byte, 64<<10))
		if _, err := b.Enqueue(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	b.Sync(ctx)
	seqs, _ := segmentFiles(dir)
	if len(seqs) != 1 || seqs[0] < 2 {
		t.Errorf("journal files %v: rotated files should be gone once moved", seqs)
	}
	if b.Depth(context.Background(), "a") != 300 {
		t.Errorf("depth %d", b.Depth(context.Background(), "a"))
	}
}

func TestFailedJournalWriteRefusesAndRecovers(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	defer b.Close()
	// Break the journal file under the writer: the write fails, the
	// webhook is refused (Sentry gets 503), and the next write goes to a
	// new file.
	b.journal.seg.f.Close()
	if _, err := b.Enqueue(ctx, submission(1, "a")); err == nil {
		t.Fatal("enqueue succeeded on a broken journal")
	}
	if dup := enqueue(t, b, submission(1, "a")); dup {
		t.Error("a refused submission's dedupe key was kept")
	}
	if b.Depth(context.Background(), "a") != 1 {
		t.Errorf("depth %d after recovery", b.Depth(context.Background(), "a"))
	}
}

// A recycled file still holds the frames of its previous use; replay must
// stop where the new ones end, since those are checksummed with another
// sequence number.
func TestRecycledJournalIgnoresItsOldFrames(t *testing.T) {
	dir := t.TempDir()
	j, err := openSegment(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	var old [][]byte
	for i := range 50 {
		old = append(old, []byte(fmt.Sprintf(`{"alert_id":"old-%d"}`, i)))
	}
	for range 3 {
		if _, err := j.append(old); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	retireSegment(dir, 1)
	if spares := spareFiles(dir); len(spares) != 1 {
		t.Fatalf("spares %v after retiring a moved file", spares)
	}
	j, err = openSegment(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if spares := spareFiles(dir); len(spares) != 0 {
		t.Fatalf("spares %v: the new file should be the recycled one", spares)
	}
	if _, err := j.append([][]byte{[]byte(`{"alert_id":"new"}`)}); err != nil {
		t.Fatal(err)
	}
	recs, err := readSegment(dir, 2, 0)
	if err != nil || len(recs) != 1 || string(recs[0].payload) != `{"alert_id":"new"}` {
		t.Fatalf("recycled file replays %d records (%v); want only the new one", len(recs), err)
	}
}

// Groups are padded to whole blocks; replay from any record's end must
// find the next record past the padding.
func TestJournalGroupsArePaddedAndReadBack(t *testing.T) {
	dir := t.TempDir()
	j, err := openSegment(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	var ends []position
	for i := range 5 {
		e, err := j.append([][]byte{[]byte(fmt.Sprint("record ", i)), make([]byte, 5000*i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if j.size%journalBlock != 0 {
			t.Fatalf("file position %d after a group: not block-aligned", j.size)
		}
		ends = append(ends, e...)
	}
	for i, from := range append([]position{{Seq: 1}}, ends...) {
		recs, _ := readSegment(dir, 1, from.Off)
		if len(recs) != len(ends)-i {
			t.Errorf("from %d: %d records, want %d", from.Off, len(recs), len(ends)-i)
		}
	}
}

// A record that is intact (its checksum holds) but cannot be decoded
// becomes an unreadable dead letter; the records after it are replayed.
func TestReplayKeepsGoingPastAnUndecodableRecord(t *testing.T) {
	dir := t.TempDir()
	seg, err := openSegment(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for i, sub := range []Submission{submission(1, "a"), {}, submission(3, "a")} {
		p, _ := encodeRecord(storedSubmission{AlertID: sub.AlertID, Targets: sub.Targets, Accept: sub.Accepted}, encodeAlert(sub.Alert))
		if i == 1 {
			p = []byte("\x07a record of no known format")
		}
		payloads = append(payloads, p)
	}
	if _, err := seg.append(payloads); err != nil {
		t.Fatal(err)
	}
	seg.close()

	b := open(t, dir, nil)
	defer b.Close()
	if pa, _ := b.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 1 alert 3]" {
		t.Fatalf("pending %v: the records around the undecodable one must be replayed", titles(pa))
	}
	dls, err := b.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || !dls[0].Unreadable || !strings.Contains(dls[0].Reason, "a record of no known format") {
		t.Fatalf("dead letters %+v %v: want the undecodable record kept and quoted", dls, err)
	}
}

// Check goes through the journal's writer: after a failed write it opens
// the next segment, as the next webhook would.
func TestCheckOpensTheNextSegment(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	defer b.Close()
	b.journal.seg.f.Close()
	if _, err := b.Enqueue(ctx, submission(1, "a")); err == nil {
		t.Fatal("enqueue succeeded on a broken journal")
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("check after a failed write: %v; want the next segment opened", err)
	}
	if seqs, _ := segmentFiles(b.dir); len(seqs) != 2 {
		t.Errorf("segments %v: want the abandoned one and the one check opened", seqs)
	}
	enqueue(t, b, submission(1, "a"))
}

// When the mover cannot commit, webhooks are still taken (into the journal)
// and Check says degraded.
func TestCheckReportsAMoverThatCannotCommit(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, nil)
	enqueue(t, b, submission(1, "a"))
	b.db.Close() // every commit fails from here on
	if _, err := b.Enqueue(ctx, submission(2, "a")); err != nil {
		t.Fatalf("enqueue with the mover failing: %v; the journal still takes it", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.journal.moveFailure() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := b.Check(ctx); !errors.Is(err, ErrDegraded) || !strings.Contains(err.Error(), "kept in the journal") {
		t.Errorf("check: %v; want degraded", err)
	}
	b.journal.close()
	b = open(t, dir, nil)
	defer b.Close()
	if pa, _ := b.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 1 alert 2]" {
		t.Errorf("pending after restart %v: the journal kept alert 2", titles(pa))
	}
}

// FuzzReadSegment: whatever a segment holds (a damaged disk, a file from
// elsewhere), reading it neither panics nor returns a frame past its end,
// and decoding a frame's record fails cleanly.
func FuzzReadSegment(f *testing.F) {
	dir := f.TempDir()
	seg, err := openSegment(dir, 1)
	if err != nil {
		f.Fatal(err)
	}
	sub := submission(1, "a")
	p, _ := encodeRecord(storedSubmission{AlertID: sub.AlertID, Targets: sub.Targets, Accept: sub.Accepted}, encodeAlert(sub.Alert))
	if _, err := seg.append([][]byte{p, []byte("x")}); err != nil {
		f.Fatal(err)
	}
	seg.close()
	seed, _ := os.ReadFile(segmentPath(dir, 1))
	f.Add(seed[:8192], uint64(1))
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, seq uint64) {
		dir := t.TempDir()
		if err := os.WriteFile(segmentPath(dir, seq), data, 0o600); err != nil {
			t.Fatal(err)
		}
		frames, err := readSegment(dir, seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range frames {
			if fr.end.Off > int64(len(data)) || len(fr.payload) > MaxRecord {
				t.Fatalf("frame ends at %d of %d bytes, %d bytes long", fr.end.Off, len(data), len(fr.payload))
			}
			decodeRecord(fr.payload)
		}
	})
}
