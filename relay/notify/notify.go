// Package notify is the contract between the dispatcher and the receivers it
// delivers to (DingTalk robots, WeCom robots, Feishu bots, signed webhooks,
// mail): what a receiver renders, and how it answers a send. The dispatcher
// owns every retry; a receiver only says, once, what its answer means.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Message is a rendered message for one receiver; only the receiver that
// rendered it reads what is inside.
type Message interface {
	// Title is what logs and the dry run show of the message.
	Title() string
}

// Receiver renders alerts for one configured receiver and sends them.
type Receiver interface {
	// Card renders one alert as a full message.
	Card(it formatter.Item) (Message, error)
	// Digest renders waiting alerts (oldest first) as one message and
	// returns the indexes of the items it carries: as many as fit, the
	// longest waiting first. With plain set it leaves out what the
	// receiver's content checks could refuse (links).
	Digest(items []formatter.Item, plain bool) (Message, []int)
	// Minimal renders one alert with nothing the receiver's content checks
	// could refuse; it is sent once after the receiver refused the card.
	Minimal(it formatter.Item) Message
	// Notify sends msg. key identifies the message (the same alerts give
	// the same key), so a receiver that can drop a repeat does. It returns
	// nil once the receiver took the message, else an *Error (any other
	// error means Retry).
	Notify(ctx context.Context, msg Message, key string) error
}

// Verdict is what a failed send means for the alerts in it.
type Verdict int

const (
	// Retry: the failure goes away by itself (network, timeouts, 5xx,
	// "busy"); send the same message again with backoff.
	Retry Verdict = iota
	// Throttled: the receiver refuses everything for a while; send nothing
	// to it for Error.Wait, then what waits as a digest.
	Throttled
	// Refused: the receiver's configuration is wrong (token, signature,
	// keyword); keep the alerts, tell the operator, try again slowly, and
	// let a fallback take them after a while.
	Refused
	// Content: the receiver refused this message; send the minimal form
	// once, then give up on these alerts.
	Content
	// Rejected: the receiver will never take these alerts; they become
	// dead letters now.
	Rejected
)

func (v Verdict) String() string {
	switch v {
	case Retry:
		return "transient"
	case Throttled:
		return "rate_limited"
	case Refused:
		return "config"
	case Content:
		return "content"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Verdicts lists every verdict, for metrics that start at zero.
var Verdicts = []Verdict{Retry, Throttled, Refused, Content, Rejected}

// Error is a failed send to one receiver.
type Error struct {
	// Receiver is the receiver's name.
	Receiver string
	Verdict  Verdict
	// Code is the receiver's own code for metrics and logs: an errcode,
	// "http_502", "network".
	Code string
	// Detail is what the receiver answered, scrubbed of its secrets.
	Detail string
	// Hint tells the operator what to do about it.
	Hint string
	// Wait is how long a Throttled receiver must rest; 0 means the
	// dispatcher's default.
	Wait time.Duration
	// Err is the underlying network or decoding error, if any; it never
	// contains a secret.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Detail != "" && e.Code != "":
		return fmt.Sprintf("%s: %s: %s", e.Receiver, e.Code, e.Detail)
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Receiver, e.Err)
	case e.Code != "":
		return fmt.Sprintf("%s: %s", e.Receiver, e.Code)
	}
	return e.Receiver + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// VerdictOf is what err means for the dispatcher: an *Error's verdict, Retry
// for any other error.
func VerdictOf(err error) (Verdict, *Error) {
	var e *Error
	if errors.As(err, &e) {
		return e.Verdict, e
	}
	return Retry, nil
}

// Mask hides all but the last 4 characters of a secret value: enough to
// tell two apart, too little to use one.
func Mask(s string) string {
	if len(s) <= 4 {
		return "…" + s
	}
	return "…" + s[len(s)-4:]
}

// Scrub replaces every secret in s, as given and URL-encoded, by its mask:
// text that came back from the network (a gateway echoing the request line,
// a proxy's error page) is scrubbed before it is logged, returned or stored.
func Scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) < 4 {
			continue
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			s = strings.ReplaceAll(s, form, Mask(secret))
		}
	}
	return s
}

// ScrubError is Scrub over an error's text, keeping nothing of the
// original error but its text.
func ScrubError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if scrubbed := Scrub(text, secrets...); scrubbed != text {
		return errors.New(scrubbed)
	}
	return err
}
