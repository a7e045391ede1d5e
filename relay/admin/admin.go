// Package admin lists and replays dead letters: the service, the Unix
// socket a running relay serves it on (with Go's profiles), and the client
// the deadletters commands use. Only who can reach the data directory can
// use the socket.
package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// Store is what dead-letter administration needs of a store. Which dead
// letters a replay takes is the store's rule (queue.SelectForReplay).
type Store interface {
	DeadLetters(ctx context.Context) ([]queue.DeadLetter, error)
	Replay(ctx context.Context, ids []string, robot string) ([]queue.DeadLetter, error)
}

// Service lists and replays dead letters, naming receivers as the
// configuration does.
type Service struct {
	Store Store
	// Names maps queue keys to receiver names.
	Names map[string]string
}

// DeadLetter is a dead letter as the deadletters commands show it.
type DeadLetter struct {
	ID       string    `json:"id"`
	AlertID  string    `json:"alert_id"`
	Robot    string    `json:"robot"`
	Title    string    `json:"title"`
	Project  string    `json:"project,omitempty"`
	Level    string    `json:"level,omitempty"`
	Link     string    `json:"link,omitempty"`
	Reason   string    `json:"reason"`
	Accepted time.Time `json:"accepted"`
	Buried   time.Time `json:"buried"`
	// Unreadable: the stored bytes (quoted in Reason) could not be
	// decoded; listed, never replayed.
	Unreadable bool `json:"unreadable,omitempty"`
}

// ReplayRequest selects dead letters to queue again.
type ReplayRequest struct {
	// IDs are dead-letter or alert IDs.
	IDs []string `json:"ids,omitempty"`
	// All replays every dead letter.
	All bool `json:"all,omitempty"`
	// Robot sends them to this receiver instead of the one each was for.
	Robot string `json:"robot,omitempty"`
}

// ReplayResult tells what was queued again.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// Robots are the receivers' names; Keys their queue keys.
	Robots []string `json:"robots"`
	Keys   []string `json:"-"`
}

// unnamed is how a receiver no configuration names is shown: the commands
// may run without the relay's environment.
const unnamed = " (not configured here: run with the relay's DINGTALK_TOKENS or routes file to see its name)"

func (s *Service) name(key string) string {
	if n, ok := s.Names[key]; ok {
		return n
	}
	return key + unnamed
}

// List returns every dead letter, oldest first.
func (s *Service) List(ctx context.Context) ([]DeadLetter, error) {
	dls, err := s.Store.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(dls))
	for i, dl := range dls {
		d := dl.Delivery
		out[i] = DeadLetter{
			ID: dl.ID, AlertID: d.AlertID, Robot: s.name(d.Robot), Title: d.Alert.Title,
			Project: d.Alert.DisplayProject(), Level: d.Alert.Level, Link: d.Alert.Link,
			Reason: dl.Reason, Accepted: d.Accepted, Buried: dl.Buried, Unreadable: dl.Unreadable,
		}
	}
	return out, nil
}

// Replay queues the selected dead letters again. Dead letters of receivers
// no longer configured need Robot set.
func (s *Service) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	if !req.All && len(req.IDs) == 0 {
		return ReplayResult{}, errors.New("name dead letters to replay, or --all")
	}
	ids := req.IDs
	if req.All {
		ids = nil
	}
	target := ""
	if req.Robot != "" {
		for key, name := range s.Names {
			if name == req.Robot {
				target = key
			}
		}
		if target == "" {
			return ReplayResult{}, fmt.Errorf("unknown robot %q: the robots are %v; run with the relay's DINGTALK_TOKENS (or routes file)", req.Robot, slices.Sorted(maps.Values(s.Names)))
		}
	} else {
		dls, err := s.Store.DeadLetters(ctx)
		if err != nil {
			return ReplayResult{}, err
		}
		for _, dl := range dls {
			selected, serr := queue.SelectForReplay(dl, ids)
			if _, ok := s.Names[dl.Delivery.Robot]; serr == nil && selected && !ok {
				return ReplayResult{}, fmt.Errorf("dead letter %s was for a robot this configuration does not have (%s): replay it with --robot NAME, or run with the relay's DINGTALK_TOKENS (or routes file)", dl.ID, dl.Delivery.Robot)
			}
		}
	}
	replayed, err := s.Store.Replay(ctx, ids, target)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{Replayed: len(replayed), Robots: []string{}}
	for _, dl := range replayed {
		if key := dl.Delivery.Robot; !slices.Contains(res.Keys, key) {
			res.Keys = append(res.Keys, key)
			res.Robots = append(res.Robots, s.name(key))
		}
	}
	return res, nil
}
