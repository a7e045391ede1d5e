// Package queue stores accepted alerts durably until every robot they go to
// has taken them, and keeps what could not be delivered as dead letters.
package queue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Submission is one accepted alert and the robots it goes to.
type Submission struct {
	// AlertID identifies the alert; NewID makes one.
	AlertID string
	// DedupeKey identifies the Sentry delivery; a submission whose key was
	// seen within the dedupe window is not stored. "" disables the check.
	DedupeKey string
	// DedupeFor, when not 0, is how long this submission's key is
	// remembered instead of the store's window.
	DedupeFor time.Duration
	Alert     formatter.Alert
	Targets   []Target
	Accepted  time.Time
}

// Target is one robot an alert goes to, with the mentions its route chose.
type Target struct {
	Robot    string
	Mentions formatter.Mentions
	// Type overrides the robot's message type ("" keeps it).
	Type string
	// Note says why the robot got an alert that was not its own (a
	// fallback); its card shows it.
	Note string
}

// Delivery is one alert waiting for one robot.
type Delivery struct {
	// ID identifies the delivery within its robot's queue; IDs of one robot
	// sort in the order the deliveries were queued.
	ID       string             `json:"id"`
	AlertID  string             `json:"alert_id"`
	Robot    string             `json:"robot"`
	Alert    formatter.Alert    `json:"alert"`
	Mentions formatter.Mentions `json:"mentions,omitempty"`
	Type     string             `json:"type,omitempty"`
	Note     string             `json:"note,omitempty"`
	Accepted time.Time          `json:"accepted"`
}

// DeadLetter is a delivery given up on, kept so it can be listed and replayed.
type DeadLetter struct {
	ID       string   `json:"id"`
	Delivery Delivery `json:"delivery"`
	Reason   string   `json:"reason"`
	// Buried is when the delivery became a dead letter.
	Buried time.Time `json:"buried"`
	// Unreadable marks a delivery whose stored bytes could not be decoded
	// (Reason quotes them): it is kept and listed, but cannot be replayed.
	Unreadable bool `json:"unreadable,omitempty"`
}

// MaxRecord is the largest stored form of a submission a store takes. The
// parsers bound every field of an alert far below it; a store refuses a
// larger one rather than acknowledge what it might not read back.
const MaxRecord = 1 << 20

// ErrTooLarge is returned for a submission larger than MaxRecord.
var ErrTooLarge = errors.New("queue: the alert is too large to store")

// tooLarge is ErrTooLarge with the sizes.
func tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes stored, at most %d", ErrTooLarge, n, MaxRecord)
}

// ErrDegraded means alerts are still taken, but not the usual way: Redis is
// unreachable and they are spooled locally, or the journal keeps them
// because they cannot be moved into bbolt.
var ErrDegraded = errors.New("degraded")

// ErrClosed is returned by a store that is shutting down.
var ErrClosed = errors.New("queue: store closed")

// ErrNotFound is returned when a dead letter to replay does not exist.
var ErrNotFound = errors.New("queue: no such dead letter")

// ErrUnreadable is returned when a dead letter named for replay holds an
// unreadable delivery. Replaying every dead letter passes over those.
var ErrUnreadable = errors.New("queue: the dead letter holds an unreadable delivery and cannot be replayed")

// SelectForReplay reports whether a replay of ids (dead-letter or alert
// ids; none: all) takes dl: the one rule every store and the admin
// service use. An unreadable dead letter is passed over, and refused when
// named.
func SelectForReplay(dl DeadLetter, ids []string) (bool, error) {
	named := slices.Contains(ids, dl.ID) || slices.Contains(ids, dl.Delivery.AlertID)
	switch {
	case len(ids) > 0 && !named:
		return false, nil
	case dl.Unreadable && named:
		return false, fmt.Errorf("%w: %s", ErrUnreadable, dl.ID)
	}
	return !dl.Unreadable, nil
}

// NewID returns a new alert ID: 32 hex digits, roughly time-ordered so IDs
// of alerts accepted later sort later.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("queue: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// RobotKey is the queue name of a robot: derived from its token, so queued
// alerts follow the robot when DINGTALK_TOKENS is reordered, and revealing
// nothing of the token.
func RobotKey(token string) string {
	sum := sha256.Sum256([]byte("sentry-dingtalk-relay robot " + token))
	return hex.EncodeToString(sum[:8])
}

// hashKey shortens a dedupe key to a fixed size.
func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:16]
}

// pauseEvery is how many records the store handles between pauses when
// it reads or removes the thousand deliveries of a digest, milliseconds of
// CPU at a stretch: without pauses, webhooks readied on the same P wait
// for Go's preemption, and their answer time is what Sentry waits on. (A
// pause inside a bbolt write transaction only delays the mover.)
const pauseEvery = 32

// pause lets waiting goroutines run after every pauseEvery-th item.
func pause(i int) {
	if i%pauseEvery == pauseEvery-1 {
		runtime.Gosched()
	}
}
