package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Stored alerts and delivery records are encoded compactly rather than as
// JSON: the dispatcher decodes every queued alert once per robot it goes
// to, and JSON decoding was most of its CPU, taken from the webhooks being
// answered meanwhile.
//
// Layout: a version byte, then the fields in a fixed order: strings as a
// uvarint length and the bytes, counts as varints, times as a flag byte (0
// for the zero time) then varint Unix seconds and uvarint nanoseconds,
// lists as a uvarint count of strings (tags and settings: of key/value
// pairs; evidence: name, value and a flag; pull requests: title and URL).
// A change of this layout gets a new version byte, a decoder for the
// old one and a test that reads records of the old one
// (TestStoredFormatsStillDecode).
const (
	alertFormatV1    = 1
	deliveryFormatV1 = 1
)

func encodeAlert(a formatter.Alert) []byte {
	b := make([]byte, 0, 512)
	b = append(b, alertFormatV1)
	for _, s := range []string{a.Resource, a.Action, a.Title, a.Project, a.ProjectName, a.Org, a.Environment,
		a.Level, a.Location, a.Release, a.Rule, a.Message, a.Link, a.IssueID, a.ShortID, a.EventID, a.Assignee,
		a.RuleID, a.Kind, a.Subtitle, a.Activity, a.Actor, a.Commit} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, a.Events)
	b = binary.AppendVarint(b, a.Users)
	b = appendTime(b, a.Time)
	b = binary.AppendUvarint(b, uint64(len(a.Tags)))
	for _, t := range a.Tags {
		b = appendString(appendString(b, t.Key), t.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(a.Settings)))
	for _, k := range slices.Sorted(maps.Keys(a.Settings)) {
		b = appendString(appendString(b, k), a.Settings[k])
	}
	b = binary.AppendUvarint(b, uint64(len(a.Evidence)))
	for _, e := range a.Evidence {
		b = appendFlag(appendString(appendString(b, e.Name), e.Value), e.Important)
	}
	b = binary.AppendUvarint(b, uint64(len(a.PullRequests)))
	for _, r := range a.PullRequests {
		b = appendString(appendString(b, r.Title), r.URL)
	}
	return b
}

func appendFlag(b []byte, f bool) []byte {
	if f {
		return append(b, 1)
	}
	return append(b, 0)
}

func encodeDeliveryRecord(d deliveryRecord) []byte {
	b := make([]byte, 0, 64)
	b = appendString(append(b, deliveryFormatV1), d.AlertID)
	b = appendString(b, d.Type)
	b = appendString(b, d.Note)
	b = appendStrings(b, d.Mentions.Mobiles)
	b = appendStrings(b, d.Mentions.UserIDs)
	b = appendFlag(b, d.Mentions.All)
	return appendTime(b, d.Accepted)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = binary.AppendVarint(append(b, 1), t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

var errTruncated = errors.New("truncated")

// recordReader reads the fields of an encoded record; the first error sticks.
// Its strings are slices of one copy of the record: one allocation per
// alert rather than one per field.
type recordReader struct {
	b   []byte
	s   string // the record's bytes from b on
	err error
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	return advance(r, v, n)
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	return advance(r, v, n)
}

// advance consumes the n bytes v was read from; n <= 0 is binary's error.
func advance[T uint64 | int64](r *recordReader, v T, n int) T {
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.s[len(r.s)-len(r.b):][:n]
	r.b = r.b[n:]
	return s
}

// count reads a number of items of at least size bytes each.
func (r *recordReader) count(size int) int {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)/size) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *recordReader) strings() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}

func (r *recordReader) flag() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	f := r.b[0]
	r.b = r.b[1:]
	if f > 1 {
		r.fail()
	}
	return f
}

func (r *recordReader) time() time.Time {
	if r.flag() != 1 {
		return time.Time{}
	}
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= 1e9 {
		r.fail()
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// end reports the reader's error, or that bytes were left over.
func (r *recordReader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes past the end", len(r.b))
	}
	return r.err
}

func (r *recordReader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.b = nil
}

func decodeAlert(b []byte) (formatter.Alert, error) {
	var a formatter.Alert
	if len(b) == 0 {
		return a, errors.New("empty alert record")
	}
	if b[0] != alertFormatV1 {
		return a, fmt.Errorf("alert record of unknown format %d", b[0])
	}
	r := &recordReader{b: b[1:], s: string(b[1:])}
	for _, s := range []*string{&a.Resource, &a.Action, &a.Title, &a.Project, &a.ProjectName, &a.Org, &a.Environment,
		&a.Level, &a.Location, &a.Release, &a.Rule, &a.Message, &a.Link, &a.IssueID, &a.ShortID, &a.EventID, &a.Assignee,
		&a.RuleID, &a.Kind, &a.Subtitle, &a.Activity, &a.Actor, &a.Commit} {
		*s = r.string()
	}
	a.Events = r.varint()
	a.Users = r.varint()
	a.Time = r.time()
	if n := r.count(2); n > 0 {
		a.Tags = make([]formatter.Tag, n)
		for i := range a.Tags {
			a.Tags[i] = formatter.Tag{Key: r.string(), Value: r.string()}
		}
	}
	if n := r.count(2); n > 0 {
		a.Settings = make(map[string]string, n)
		for range n {
			k := r.string()
			a.Settings[k] = r.string()
		}
	}
	if n := r.count(3); n > 0 {
		a.Evidence = make([]formatter.Evidence, n)
		for i := range a.Evidence {
			a.Evidence[i] = formatter.Evidence{Name: r.string(), Value: r.string(), Important: r.flag() == 1}
		}
	}
	if n := r.count(2); n > 0 {
		a.PullRequests = make([]formatter.Ref, n)
		for i := range a.PullRequests {
			a.PullRequests[i] = formatter.Ref{Title: r.string(), URL: r.string()}
		}
	}
	if err := r.end(); err != nil {
		return formatter.Alert{}, fmt.Errorf("alert record: %w", err)
	}
	return a, nil
}

func decodeDeliveryRecord(b []byte) (deliveryRecord, error) {
	var d deliveryRecord
	if len(b) == 0 || b[0] != deliveryFormatV1 {
		return d, errors.New("delivery record of unknown format")
	}
	r := &recordReader{b: b[1:], s: string(b[1:])}
	d.AlertID = r.string()
	d.Type = r.string()
	d.Note = r.string()
	d.Mentions.Mobiles = r.strings()
	d.Mentions.UserIDs = r.strings()
	d.Mentions.All = r.flag() == 1
	d.Accepted = r.time()
	if err := r.end(); err != nil {
		return deliveryRecord{}, fmt.Errorf("delivery record: %w", err)
	}
	return d, nil
}
