package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Dead letters of the bbolt store: JSON of DeadLetter under a sequence
// number in the dead bucket.

// damaged keeps a journal record replay could not decode as an unreadable
// dead letter that quotes it.
func (b *Bolt) damaged(payload []byte, err error) error {
	b.log.Error("unreadable journal record; it becomes a dead letter", "err", err)
	return b.db.Update(func(tx *bolt.Tx) error {
		return bury(appendOnly(tx.Bucket(bucketDead)), DeadLetter{
			Reason: "unreadable journal record (" + err.Error() + "): " + strconv.Quote(string(payload)),
			Buried: b.now(), Unreadable: true,
		})
	})
}

// bury adds a dead letter, numbering it.
func bury(dead *bolt.Bucket, dl DeadLetter) error {
	seq, err := dead.NextSequence()
	if err != nil {
		return err
	}
	dl.ID = strconv.FormatUint(seq, 10)
	raw, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	return dead.Put(u64(seq), raw)
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
