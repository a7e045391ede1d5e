package dispatch

import (
	"context"
	"strconv"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// DefaultFallbackAfter is how long a receiver may be refused (a
// configuration error) before its fallback takes its alerts.
const DefaultFallbackAfter = 10 * time.Minute

// kinds name the kinds of receivers in fallback notes.
var kinds = map[string]string{
	"dingtalk": "DingTalk robot", "wecom": "WeCom robot", "feishu": "Feishu bot", "webhook": "webhook", "email": "mail",
}

// failure is what made a receiver fail, for its fallback note.
type failure struct {
	text  string    // "DingTalk robot ops: errcode 310000 sign not match"
	since time.Time // when this kind of failure began
}

// noteFailure remembers a failed send's verdict for the fallback: since
// when the receiver has been refused, or until when it is parked.
func (w *worker) noteFailure(now time.Time, verdict notify.Verdict, nerr *notify.Error) {
	text := kinds[w.robot.Type]
	if text == "" {
		text = w.robot.Type
	}
	text += " " + w.robot.Name
	if nerr != nil {
		code := nerr.Code
		if _, err := strconv.Atoi(code); err == nil {
			code = "errcode " + code
		}
		text += ": " + code
		if nerr.Detail != "" {
			text += " " + nerr.Detail
		}
	}
	switch verdict {
	case notify.Refused:
		if w.refused.since.IsZero() {
			w.refused.since = now
		}
		w.refused.text = text
	case notify.Throttled:
		w.throttled = failure{text: text + " (throttled)", since: now}
	}
}

// fallbackDue returns the note of the fallback the receiver needs now
// (parked after a rate-limit ban, or refused for FallbackAfter), and else
// when one would be due.
func (w *worker) fallbackDue(now time.Time) (note string, due bool, next time.Duration) {
	if len(w.robot.Fallback) == 0 {
		return "", false, 0
	}
	if now.Before(w.notBefore) && !w.throttled.since.IsZero() {
		return w.note(w.throttled), true, 0
	}
	if r := w.refused; !r.since.IsZero() {
		if wait := r.since.Add(w.FallbackAfter).Sub(now); wait > 0 {
			return "", false, wait
		}
		return w.note(r), true, 0
	}
	return "", false, 0
}

func (w *worker) note(f failure) string {
	zone := w.Zone
	if zone == nil {
		zone = time.UTC
	}
	return f.text + " since " + f.since.In(zone).Format("15:04")
}

// forward sends what waits for the receiver (or the given deliveries) to
// its fallback receivers too, once each: the dedupe key of (alert,
// receiver) is kept as long as an alert can wait.
func (w *worker) forward(ctx context.Context, now time.Time, note string, ds []queue.Delivery) {
	if ds == nil {
		var err error
		if ds, err = w.Store.Pending(ctx, w.robot.Key, maxBatch); err != nil {
			w.log.Error("reading the queue for the fallback failed", "err", err)
			return
		}
	}
	forwarded := 0
	for _, d := range ds {
		if w.forwarded[d.AlertID] {
			continue
		}
		sub := queue.Submission{
			AlertID: queue.NewID(now), DedupeKey: "fallback:" + w.robot.Key + ":" + d.AlertID, DedupeFor: w.MaxAge,
			Alert: d.Alert, Accepted: now,
		}
		for _, key := range w.robot.Fallback {
			sub.Targets = append(sub.Targets, queue.Target{Robot: key, Mentions: d.Mentions, Note: note})
		}
		dup, err := w.Store.Enqueue(ctx, sub)
		if err != nil {
			w.log.Error("queueing an alert for the fallback failed; it is tried again", "err", err, "alert", d.AlertID)
			continue
		}
		if w.forwarded == nil {
			w.forwarded = map[string]bool{}
		}
		w.forwarded[d.AlertID] = true
		if !dup {
			forwarded++
		}
	}
	if forwarded > 0 {
		if !w.fallingBack {
			w.log.Warn("the receiver cannot deliver; its waiting alerts go to its fallback too", "reason", note, "fallback", w.robot.Fallback)
		}
		w.fallingBack = true
		if w.Metrics != nil {
			w.Metrics.FallbackAlerts.WithLabelValues(w.robot.Name).Add(float64(forwarded))
		}
	}
}

// recovered forgets the failures after a successful send, and says once
// that a receiver whose alerts went to its fallback delivers again.
func (w *worker) recovered() {
	if w.fallingBack {
		w.log.Info("the receiver delivers again; alerts it could not deliver went to its fallback meanwhile", "fallback", w.robot.Fallback)
	}
	w.refused, w.throttled, w.fallingBack, w.forwarded = failure{}, failure{}, false, nil
}
