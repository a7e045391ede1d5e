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

// A journal segment is one file of the journal (see journal.go). Segments
// have a fixed size, allocated when created and recycled once moved, and are
// written with O_DIRECT|O_DSYNC where the system allows it: an overwrite
// then changes no file metadata and needs no commit of the file system's
// own journal, which shortens the tail of the sync each webhook waits for.
// Elsewhere (tmpfs, other systems) writes go through the page cache and
// fdatasync.
//
// A segment is a sequence of frames: a 4-byte big-endian payload length, a
// 4-byte CRC-32C of the segment's sequence number and the payload, the
// payload. Each group starts at a block boundary, so the frames of a group
// end with a padding frame (high bit of the length set). Reading stops at
// the first frame that is short, longer than MaxRecord or fails its
// checksum: a torn tail, never acknowledged, or what a recycled file held
// before (its checksums are of another sequence number). After a failed
// write or sync the journal continues in a new segment, so nothing
// acknowledged can sit after a torn frame.

const (
	journalPrefix = "journal-"
	journalSuffix = ".log"
	sparePrefix   = "spare-"
	// segmentSize is the size of a segment; past it the journal moves to a
	// new one, so moved segments can be recycled whole.
	segmentSize = 16 << 20
	// journalBlock is the alignment of O_DIRECT writes: every group is
	// written at, and padded to, a multiple of it.
	journalBlock = 4096
	// maxSpares is how many moved files are kept for reuse.
	maxSpares   = 2
	frameHeader = 8
	padding     = 1 << 31
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

// segment is the journal file being written.
type segment struct {
	dir    string
	f      *os.File
	direct bool // f was opened with O_DIRECT|O_DSYNC: a write is durable when it returns
	seq    uint64
	size   int64
	buf    []byte // block-aligned, reused across writes
}

func segmentPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016d%s", journalPrefix, seq, journalSuffix))
}

// segmentFiles returns the sequence numbers of the segments in dir.
func segmentFiles(dir string) ([]uint64, error) {
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

// retireSegment keeps a moved segment for reuse, or deletes it when enough
// are kept.
func retireSegment(dir string, seq uint64) {
	path := segmentPath(dir, seq)
	if len(spareFiles(dir)) >= maxSpares || os.Rename(path, filepath.Join(dir, fmt.Sprintf("%s%016d%s", sparePrefix, seq, journalSuffix))) != nil {
		os.Remove(path)
	}
}

// openSegment starts a new segment numbered seq.
func openSegment(dir string, seq uint64) (*segment, error) {
	s := &segment{dir: dir, seq: seq - 1}
	if err := s.next(); err != nil {
		return nil, err
	}
	return s, nil
}

// next moves to a new segment, made durable in its directory: a spare one
// renamed, or a new one.
func (s *segment) next() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	seq := s.seq + 1
	path := segmentPath(s.dir, seq)
	recycled := false
	for _, spare := range spareFiles(s.dir) {
		if os.Rename(spare, path) == nil {
			recycled = true
			break
		}
	}
	if !recycled {
		if err := createSegmentFile(path); err != nil {
			return fmt.Errorf("create journal segment: %w", err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	f, direct, err := openSynced(path)
	if err != nil {
		return fmt.Errorf("open journal segment: %w", err)
	}
	s.f, s.direct, s.seq, s.size = f, direct, seq, 0
	return nil
}

// createSegmentFile creates a segment with its blocks allocated. The
// first pass over it still converts its extents as it writes; recycled
// files are plain overwrites.
func createSegmentFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = preallocate(f, segmentSize)
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

// frameSum is the checksum of a frame of segment seq.
func frameSum(seq uint64, payload []byte) uint32 {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Checksum(s[:], castagnoli), castagnoli, payload)
}

// append writes records with one write (and one fdatasync without
// O_DIRECT), and returns the position after each.
func (s *segment) append(payloads [][]byte) ([]position, error) {
	n := 0
	for _, p := range payloads {
		n += frameHeader + len(p)
	}
	// Room for a padding frame's header; then whole blocks.
	total := (n + frameHeader + journalBlock - 1) / journalBlock * journalBlock
	if s.f != nil && s.size > 0 && s.size+int64(total) > segmentSize {
		if err := s.next(); err != nil {
			s.abandon()
		}
	}
	if s.f == nil {
		if err := s.next(); err != nil {
			return nil, err
		}
	}
	buf := s.buffer(total)
	ends := make([]position, len(payloads))
	off := 0
	for i, p := range payloads {
		binary.BigEndian.PutUint32(buf[off:], uint32(len(p)))
		binary.BigEndian.PutUint32(buf[off+4:], frameSum(s.seq, p))
		off += frameHeader + copy(buf[off+frameHeader:], p)
		ends[i] = position{Seq: s.seq, Off: s.size + int64(off)}
	}
	pad := buf[off+frameHeader:]
	clear(pad)
	binary.BigEndian.PutUint32(buf[off:], padding|uint32(len(pad)))
	binary.BigEndian.PutUint32(buf[off+4:], frameSum(s.seq, pad))
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		s.abandon()
		return nil, fmt.Errorf("write journal: %w", err)
	}
	if !s.direct {
		if err := fdatasync(s.f); err != nil {
			s.abandon()
			return nil, fmt.Errorf("sync journal: %w", err)
		}
	}
	s.size += int64(total)
	return ends, nil
}

// buffer returns a block-aligned buffer of n bytes, as O_DIRECT requires.
func (s *segment) buffer(n int) []byte {
	if cap(s.buf) < n {
		raw := make([]byte, n+journalBlock)
		skip := (journalBlock - int(uintptr(unsafe.Pointer(&raw[0]))%journalBlock)) % journalBlock
		s.buf = raw[skip : skip+n]
	}
	return s.buf[:n]
}

// abandon leaves a file whose tail may be torn: the next append starts a
// new one.
func (s *segment) abandon() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func (s *segment) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// frame is a record read back from a segment.
type frame struct {
	payload []byte
	end     position
}

// readSegment returns the intact records of segment seq from offset from
// on.
func readSegment(dir string, seq uint64, from int64) ([]frame, error) {
	data, err := os.ReadFile(segmentPath(dir, seq))
	if err != nil {
		return nil, err
	}
	var out []frame
	off := from
	for off+frameHeader <= int64(len(data)) {
		word := binary.BigEndian.Uint32(data[off:])
		n := int64(word &^ padding)
		// Records are never empty: zeros are where nothing was written.
		if word == 0 || word&padding == 0 && n > MaxRecord || off+frameHeader+n > int64(len(data)) {
			break
		}
		p := data[off+frameHeader : off+frameHeader+n]
		if frameSum(seq, p) != binary.BigEndian.Uint32(data[off+4:]) {
			break
		}
		off += frameHeader + n
		if word&padding == 0 {
			out = append(out, frame{payload: p, end: position{Seq: seq, Off: off}})
		}
	}
	return out, nil
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

// room reports whether the next group can be written: a segment abandoned
// after a failed write is replaced first, and a full one needs a spare or
// room on the file system for a new one.
func (s *segment) room() error {
	if s.f == nil {
		if err := s.next(); err != nil {
			return err
		}
	}
	if s.size+2*journalBlock <= segmentSize || len(spareFiles(s.dir)) > 0 {
		return nil
	}
	free, err := freeBytes(s.dir)
	if err != nil || free >= segmentSize {
		return nil
	}
	return fmt.Errorf("the journal segment is full and the file system of %s has %d MiB free: the next one needs %d MiB", s.dir, free>>20, segmentSize>>20)
}
