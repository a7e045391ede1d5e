package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// The journal is an append-only log in front of the bbolt store. A group
// of webhooks costs it one sequential write and one sync; a bbolt commit
// costs two fsyncs and scattered page writes. So a webhook is answered once
// its submission is in the journal, and the store's mover copies journaled
// submissions into bbolt right after, off the webhook's path. On start,
// whatever the journal holds past the position bbolt recorded as moved is
// replayed.
//
// Files have a fixed size, allocated when created and recycled once moved,
// and are written with O_DIRECT|O_DSYNC where the system allows it: an
// overwrite then changes no file metadata and needs no commit of the file
// system's own journal, which shortens the tail of the sync each webhook
// waits for. Elsewhere (tmpfs, other systems) writes go through the page
// cache and fdatasync.
//
// A file is a sequence of frames: a 4-byte big-endian payload length, a
// 4-byte CRC-32C of the file's sequence number and the payload, the
// payload. Each group starts at a block boundary, so the frames of a group
// end with a padding frame (high bit of the length set). Replay stops at the
// first frame that is short or fails its checksum: a torn tail, never
// acknowledged, or what a recycled file held before (its checksums are of
// another sequence number). After a failed write or sync the journal
// continues in a new file, so nothing acknowledged can sit after a torn
// frame.

const (
	journalPrefix = "journal-"
	journalSuffix = ".log"
	sparePrefix   = "spare-"
	// journalLimit is the size of a journal file; past it the journal moves
	// to a new one, so moved files can be recycled whole.
	journalLimit = 16 << 20
	// journalBlock is the alignment of O_DIRECT writes: every group is
	// written at, and padded to, a multiple of it.
	journalBlock = 4096
	// maxSpares is how many moved files are kept for reuse.
	maxSpares   = 2
	frameHeader = 8
	padding     = 1 << 31
	// maxRecord bounds a record's length, so a corrupt length cannot make
	// replay allocate gigabytes.
	maxRecord = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// position is the end of a record: a journal file and an offset in it.
type position struct {
	Seq uint64 `json:"seq"`
	Off int64  `json:"off"`
}

func (p position) before(q position) bool {
	return p.Seq < q.Seq || p.Seq == q.Seq && p.Off < q.Off
}

type journal struct {
	dir    string
	f      *os.File
	direct bool // f was opened with O_DIRECT|O_DSYNC: a write is durable when it returns
	seq    uint64
	size   int64
	buf    []byte // block-aligned, reused across writes
}

func journalPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016d%s", journalPrefix, seq, journalSuffix))
}

// journalFiles returns the sequence numbers of the journal files in dir.
func journalFiles(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, journalPrefix) || !strings.HasSuffix(name, journalSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, journalPrefix), journalSuffix), 10, 64)
		if err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// spareFiles returns the paths of the recyclable files in dir.
func spareFiles(dir string) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, sparePrefix+"*"+journalSuffix))
	return paths
}

// retireJournal keeps a moved journal file for reuse, or deletes it when
// enough are kept.
func retireJournal(dir string, seq uint64) {
	path := journalPath(dir, seq)
	if len(spareFiles(dir)) >= maxSpares || os.Rename(path, filepath.Join(dir, fmt.Sprintf("%s%016d%s", sparePrefix, seq, journalSuffix))) != nil {
		os.Remove(path)
	}
}

// openJournal starts a new journal file numbered seq.
func openJournal(dir string, seq uint64) (*journal, error) {
	j := &journal{dir: dir, seq: seq - 1}
	if err := j.next(); err != nil {
		return nil, err
	}
	return j, nil
}

// next moves the journal to a new file, made durable in its directory:
// a spare one renamed, or a new one.
func (j *journal) next() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	seq := j.seq + 1
	path := journalPath(j.dir, seq)
	recycled := false
	for _, spare := range spareFiles(j.dir) {
		if os.Rename(spare, path) == nil {
			recycled = true
			break
		}
	}
	if !recycled {
		if err := createJournalFile(path); err != nil {
			return fmt.Errorf("create journal file: %w", err)
		}
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	f, direct, err := openSynced(path)
	if err != nil {
		return fmt.Errorf("open journal file: %w", err)
	}
	j.f, j.direct, j.seq, j.size = f, direct, seq, 0
	return nil
}

// createJournalFile creates a journal file with its blocks allocated. The
// first pass over it still converts its extents as it writes; recycled
// files are plain overwrites.
func createJournalFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = preallocate(f, journalLimit)
	if err == nil {
		err = fdatasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// frameSum is the checksum of a frame of file seq.
func frameSum(seq uint64, payload []byte) uint32 {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Checksum(s[:], castagnoli), castagnoli, payload)
}

// append writes records with one write (and one fdatasync without
// O_DIRECT), and returns the position after each.
func (j *journal) append(payloads [][]byte) ([]position, error) {
	n := 0
	for _, p := range payloads {
		n += frameHeader + len(p)
	}
	// Room for a padding frame's header; then whole blocks.
	total := (n + frameHeader + journalBlock - 1) / journalBlock * journalBlock
	if j.f != nil && j.size > 0 && j.size+int64(total) > journalLimit {
		if err := j.next(); err != nil {
			j.abandon()
		}
	}
	if j.f == nil {
		if err := j.next(); err != nil {
			return nil, err
		}
	}
	buf := j.buffer(total)
	ends := make([]position, len(payloads))
	off := 0
	for i, p := range payloads {
		binary.BigEndian.PutUint32(buf[off:], uint32(len(p)))
		binary.BigEndian.PutUint32(buf[off+4:], frameSum(j.seq, p))
		off += frameHeader + copy(buf[off+frameHeader:], p)
		ends[i] = position{Seq: j.seq, Off: j.size + int64(off)}
	}
	pad := buf[off+frameHeader:]
	clear(pad)
	binary.BigEndian.PutUint32(buf[off:], padding|uint32(len(pad)))
	binary.BigEndian.PutUint32(buf[off+4:], frameSum(j.seq, pad))
	if _, err := j.f.WriteAt(buf, j.size); err != nil {
		j.abandon()
		return nil, fmt.Errorf("write journal: %w", err)
	}
	if !j.direct {
		if err := fdatasync(j.f); err != nil {
			j.abandon()
			return nil, fmt.Errorf("sync journal: %w", err)
		}
	}
	j.size += int64(total)
	return ends, nil
}

// buffer returns a block-aligned buffer of n bytes, as O_DIRECT requires.
func (j *journal) buffer(n int) []byte {
	if cap(j.buf) < n {
		raw := make([]byte, n+journalBlock)
		skip := (journalBlock - int(uintptr(unsafe.Pointer(&raw[0]))%journalBlock)) % journalBlock
		j.buf = raw[skip : skip+n]
	}
	return j.buf[:n]
}

// abandon leaves a file whose tail may be torn: the next append starts a
// new one.
func (j *journal) abandon() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// journalRecord is a record read back from a journal file.
type journalRecord struct {
	payload []byte
	end     position
}

// readJournal returns the intact records of file seq from offset from on.
func readJournal(dir string, seq uint64, from int64) ([]journalRecord, error) {
	data, err := os.ReadFile(journalPath(dir, seq))
	if err != nil {
		return nil, err
	}
	sum := func(p []byte) uint32 { return frameSum(seq, p) }
	if legacyJournal(data) {
		sum = func(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }
	}
	var out []journalRecord
	off := from
	for off+frameHeader <= int64(len(data)) {
		word := binary.BigEndian.Uint32(data[off:])
		n := int64(word &^ padding)
		// Records are never empty: zeros are where nothing was written.
		if word == 0 || n > maxRecord || off+frameHeader+n > int64(len(data)) {
			break
		}
		p := data[off+frameHeader : off+frameHeader+n]
		if sum(p) != binary.BigEndian.Uint32(data[off+4:]) {
			break
		}
		off += frameHeader + n
		if word&padding == 0 {
			out = append(out, journalRecord{payload: p, end: position{Seq: seq, Off: off}})
		}
	}
	return out, nil
}

// legacyJournal reports whether a file was written by a version whose
// checksums covered the payload alone (and which never recycled files), so
// that a relay upgraded after a crash still replays it.
func legacyJournal(data []byte) bool {
	if len(data) < frameHeader {
		return false
	}
	n := int64(binary.BigEndian.Uint32(data))
	if n == 0 || n > maxRecord || frameHeader+n > int64(len(data)) {
		return false
	}
	return crc32.Checksum(data[frameHeader:frameHeader+n], castagnoli) == binary.BigEndian.Uint32(data[4:])
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
