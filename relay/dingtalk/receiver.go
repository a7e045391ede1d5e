package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Receiver is a robot as the dispatcher delivers to it: its cards and its
// client.
type Receiver struct {
	Robot Robot
	// Renderer renders the robot's cards; NewReceiver gives it the robot's
	// keyword and message type.
	Renderer *formatter.Renderer
	Client   *Client
}

// NewReceiver returns the receiver of robot, rendering with base (language,
// zone, template) plus the robot's keyword and message type.
func NewReceiver(robot Robot, base formatter.Renderer, client *Client) *Receiver {
	if robot.Keyword != "" {
		base.Keyword = robot.Keyword
	}
	if robot.MsgType != "" {
		base.Type = robot.MsgType
	}
	return &Receiver{Robot: robot, Renderer: &base, Client: client}
}

// Card renders a full card.
func (r *Receiver) Card(it formatter.Item) (notify.Message, error) {
	msg, err := r.Renderer.Item(it)
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// Digest renders a digest.
func (r *Receiver) Digest(items []formatter.Item, plain bool) (notify.Message, []int) {
	return r.Renderer.Digest(items, plain)
}

// Minimal renders a card without links or message.
func (r *Receiver) Minimal(it formatter.Item) notify.Message {
	return r.Renderer.MinimalItem(it)
}

// Notify sends msg with key as its msgUuid, so DingTalk drops a copy of a
// message that arrived although its answer was lost.
func (r *Receiver) Notify(ctx context.Context, msg notify.Message, key string) error {
	m, ok := msg.(formatter.Message)
	if !ok {
		return &notify.Error{Receiver: r.Robot.Name, Verdict: notify.Rejected, Code: "bad_message",
			Detail: fmt.Sprintf("a %T is not a DingTalk message", msg)}
	}
	m.MsgUUID = key
	return r.explain(r.Client.Send(ctx, r.Robot, m.JSON()))
}

// explain turns the client's error into the dispatcher's verdict, with the
// hint for the operator.
func (r *Receiver) explain(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return &notify.Error{Receiver: r.Robot.Name, Verdict: notify.Retry, Code: "network", Hint: Hint(err, r.Robot), Err: err}
	}
	out := &notify.Error{Receiver: r.Robot.Name, Verdict: e.Verdict, Detail: e.Message, Hint: Hint(err, r.Robot), Err: e.Err}
	switch {
	case e.Code != 0:
		out.Code = strconv.Itoa(e.Code)
	case e.Status != 0:
		out.Code = "http_" + strconv.Itoa(e.Status)
	default:
		out.Code = "network"
	}
	if out.Verdict == notify.Throttled {
		out.Wait = ParkFor
	}
	return out
}

// ParkFor is how long DingTalk throttles a robot after 130101.
const ParkFor = 10 * time.Minute
