package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/watch"
)

// Announce queues an alert the relay made itself (the canary's and the
// quiet watch's warnings and recoveries) for the receivers of the default
// route: the one named default, else the first that takes every alert,
// else every receiver. It is stored like any alert, so it survives a
// restart and respects the receivers' rates.
func (r *Relay) Announce(ctx context.Context, a formatter.Alert) error {
	now := r.opts.Now()
	if a.Time.IsZero() {
		a.Time = now
	}
	sub := queue.Submission{AlertID: queue.NewID(now), Alert: a, Accepted: now}
	names := r.defaultReceivers()
	for _, rc := range r.receivers {
		if slices.Contains(names, rc.Name) {
			sub.Targets = append(sub.Targets, queue.Target{Robot: rc.Key})
		}
	}
	_, err := r.health.Enqueue(ctx, sub)
	return err
}

func (r *Relay) defaultReceivers() []string {
	for _, rt := range r.opts.Routes {
		if rt.Name == "default" {
			return rt.Robots
		}
	}
	for _, rt := range r.opts.Routes {
		if rt.CatchAll() {
			return rt.Robots
		}
	}
	return r.receiverNames()
}

// watchers show authentic webhooks to the quiet watch (every one) and the
// canary (which consumes its own).
type watchers struct {
	quiet  *watch.Quiet
	canary *watch.Canary
}

func (w watchers) Observe(a formatter.Alert, at time.Time) bool {
	if w.quiet != nil {
		w.quiet.Seen(at)
	}
	return w.canary != nil && w.canary.Observe(a)
}

// CanaryResult is the admin socket's answer to a round trip by hand.
type CanaryResult struct {
	OK        bool    `json:"ok"`
	RoundTrip float64 `json:"round_trip_seconds,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// canaryHandler runs one round trip when asked on the admin socket (the
// canary command): only this relay sees the webhook Sentry sends back.
func (r *Relay) canaryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var res CanaryResult
		d, err := r.canary.RoundTrip(req.Context())
		if err != nil {
			res.Error = err.Error()
		} else {
			res.OK, res.RoundTrip = true, d.Seconds()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
}
