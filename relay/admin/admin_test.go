package admin

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// deadLetters is a store of dead letters that replays as the real stores
// do: unreadable ones are passed over, or refused when named.
type deadLetters struct {
	dls      []queue.DeadLetter
	replayed []string
}

func (s *deadLetters) DeadLetters(context.Context) ([]queue.DeadLetter, error) { return s.dls, nil }

func (s *deadLetters) Replay(_ context.Context, ids []string, robot string) ([]queue.DeadLetter, error) {
	var out []queue.DeadLetter
	for _, dl := range s.dls {
		named := slices.Contains(ids, dl.ID)
		if len(ids) > 0 && !named {
			continue
		}
		if dl.Unreadable {
			if named {
				return nil, queue.ErrUnreadable
			}
			continue
		}
		s.replayed = append(s.replayed, dl.ID)
		out = append(out, dl)
	}
	return out, nil
}

func TestUnreadableDeadLetterOfAGoneRobot(t *testing.T) {
	store := &deadLetters{dls: []queue.DeadLetter{
		{ID: "1", Delivery: queue.Delivery{Robot: "key-1", Alert: formatter.Alert{Title: "readable"}}},
		{ID: "2", Delivery: queue.Delivery{Robot: "gone"}, Reason: `unreadable queue record: "\x01"`, Unreadable: true},
	}}
	a := &Service{Store: store, Names: map[string]string{"key-1": "robot-1"}}
	list, err := a.List(context.Background())
	if err != nil || len(list) != 2 || list[0].Unreadable || !list[1].Unreadable {
		t.Fatalf("list %+v %v: the unreadable one must be listed as such", list, err)
	}
	res, err := a.Replay(context.Background(), ReplayRequest{All: true})
	if err != nil || res.Replayed != 1 || !slices.Equal(store.replayed, []string{"1"}) {
		t.Errorf("replay --all: %+v %v; want the readable one replayed and no --robot demanded", res, err)
	}
	if _, err := a.Replay(context.Background(), ReplayRequest{IDs: []string{"2"}}); !errors.Is(err, queue.ErrUnreadable) {
		t.Errorf("replay of the unreadable one: %v, want ErrUnreadable", err)
	}
}
