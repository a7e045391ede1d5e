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
)

// The journal is an append-only log in front of the bbolt store. A group
// of webhooks costs it one sequential write and one fdatasync; a bbolt
// commit costs two fsyncs and scattered page writes. So a webhook is
// answered once its submission is in the journal, and the store's mover
// copies journaled submissions into bbolt right after, off the webhook's
// path. On start, whatever the journal holds past the position bbolt
// recorded as moved is replayed.
//
// A file is a sequence of records: a 4-byte big-endian payload length, the
// payload's 4-byte CRC-32C, the payload. Replay stops at the first record
// that is short or fails its checksum: a torn tail, never acknowledged.
// After a failed write or sync the journal continues in a new file, so
// nothing acknowledged can sit after a torn record.

const (
	journalPrefix = "journal-"
	journalSuffix = ".log"
	// journalLimit is the size past which the journal moves to a new file,
	// so moved records can be deleted file by file.
	journalLimit = 16 << 20
	frameHeader  = 8
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
	dir  string
	f    *os.File
	seq  uint64
	size int64
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

// openJournal starts a new journal file numbered seq.
func openJournal(dir string, seq uint64) (*journal, error) {
	j := &journal{dir: dir, seq: seq - 1}
	if err := j.next(); err != nil {
		return nil, err
	}
	return j, nil
}

// next moves the journal to a new file, made durable in its directory.
func (j *journal) next() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	seq := j.seq + 1
	f, err := os.OpenFile(journalPath(j.dir, seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create journal file: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.seq, j.size = f, seq, 0
	return nil
}

// append writes records with one write and one fdatasync, and returns the
// position after each.
func (j *journal) append(payloads [][]byte) ([]position, error) {
	if j.f == nil {
		if err := j.next(); err != nil {
			return nil, err
		}
	}
	n := 0
	for _, p := range payloads {
		n += frameHeader + len(p)
	}
	buf := make([]byte, 0, n)
	ends := make([]position, len(payloads))
	for i, p := range payloads {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(p, castagnoli))
		buf = append(buf, p...)
		ends[i] = position{Seq: j.seq, Off: j.size + int64(len(buf))}
	}
	if _, err := j.f.Write(buf); err != nil {
		j.abandon()
		return nil, fmt.Errorf("write journal: %w", err)
	}
	if err := fdatasync(j.f); err != nil {
		j.abandon()
		return nil, fmt.Errorf("sync journal: %w", err)
	}
	j.size += int64(n)
	if j.size >= journalLimit {
		// A failed rotation is retried by the next append.
		if err := j.next(); err != nil {
			j.abandon()
		}
	}
	return ends, nil
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
	var out []journalRecord
	off := from
	for off+frameHeader <= int64(len(data)) {
		n := int64(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n > maxRecord || off+frameHeader+n > int64(len(data)) {
			break
		}
		p := data[off+frameHeader : off+frameHeader+n]
		if crc32.Checksum(p, castagnoli) != sum {
			break
		}
		off += frameHeader + n
		out = append(out, journalRecord{payload: p, end: position{Seq: seq, Off: off}})
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
