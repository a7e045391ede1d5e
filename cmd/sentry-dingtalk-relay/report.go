package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/getsentry/sentry-go"
	sentryhttp "github.com/getsentry/sentry-go/http"
	"golang.org/x/time/rate"
)

// reporter sends the relay's own panics and errors to Sentry (SENTRY_DSN).
type reporter struct {
	logger     *slog.Logger
	middleware func(http.Handler) http.Handler
	flush      func()
}

// Self-reports are few and tagged: a relay in trouble during an alert storm
// must not add a storm of its own to the Sentry it relays from.
const (
	reportEvery = 10 * time.Second
	reportBurst = 5
	// SelfTag marks the relay's own events, so Sentry alert rules can
	// exclude them (or send them elsewhere).
	selfTag = "sentry_dingtalk_relay.self"
)

func newReporter(dsn string, log *slog.Logger) (*reporter, error) {
	lim := rate.NewLimiter(rate.Every(reportEvery), reportBurst)
	err := sentry.Init(sentry.ClientOptions{
		Dsn:              dsn,
		Release:          "sentry-dingtalk-relay@" + version,
		AttachStacktrace: true,
		BeforeSend: func(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
			if !lim.Allow() {
				return nil
			}
			return e
		},
	})
	if err != nil {
		return nil, fmt.Errorf("SENTRY_DSN: %w", err)
	}
	sentry.ConfigureScope(func(s *sentry.Scope) {
		s.SetTag("component", "sentry-dingtalk-relay")
		s.SetTag(selfTag, "true")
	})
	h := sentryhttp.New(sentryhttp.Options{Repanic: true, Timeout: 2 * time.Second})
	return &reporter{
		logger:     slog.New(&reportingHandler{next: log.Handler(), hub: sentry.CurrentHub()}),
		middleware: h.Handle,
		flush:      func() { sentry.Flush(2 * time.Second) },
	}, nil
}

// reportingHandler passes log records on and reports those at error level
// to Sentry, grouped by message.
type reportingHandler struct {
	next  slog.Handler
	hub   *sentry.Hub
	attrs []slog.Attr
	group string
}

func (h *reportingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *reportingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		ev := sentry.NewEvent()
		ev.Level = sentry.LevelError
		ev.Message = r.Message
		ev.Fingerprint = []string{"relay-log", r.Message}
		fields := sentry.Context{}
		for _, a := range h.attrs {
			fields[h.group+a.Key] = a.Value.String()
		}
		r.Attrs(func(a slog.Attr) bool {
			fields[h.group+a.Key] = a.Value.String()
			return true
		})
		ev.Contexts["log"] = fields
		h.hub.CaptureEvent(ev)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *reportingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &reportingHandler{next: h.next.WithAttrs(attrs), hub: h.hub, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...), group: h.group}
}

func (h *reportingHandler) WithGroup(name string) slog.Handler {
	return &reportingHandler{next: h.next.WithGroup(name), hub: h.hub, attrs: h.attrs, group: h.group + name + "."}
}
