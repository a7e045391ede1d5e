// Package webhook receives Sentry's webhooks: it authenticates them, bounds
// their size, parses them, routes the alert and stores it durably before
// answering, and never waits for DingTalk.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

// Queue stores accepted alerts.
type Queue interface {
	Enqueue(ctx context.Context, sub queue.Submission) (dup bool, err error)
}

// Router chooses the robots of an alert.
type Router interface {
	Route(a formatter.Alert, forced string) ([]queue.Target, error)
	Has(name string) bool
	Names() []string
}

// Handler answers POST /sentry/webhook and /sentry/webhook/{route}.
type Handler struct {
	// ClientSecrets verify Integration Platform signatures when set: a
	// request signed with any of them (one per Sentry integration) is
	// authentic.
	ClientSecrets []string
	// Token is required as ?token= on legacy webhooks when set.
	Token string
	// MaxBody is the largest body accepted.
	MaxBody int64
	// SentryURL builds links a payload lacks.
	SentryURL string
	Queue     Queue
	Router    Router
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StoreTimeout bounds how long storing an alert may take; 0 means 5 s.
	StoreTimeout time.Duration
	// Watchers see every authentic webhook's alert before it is routed;
	// one that claims it (the canary's own) consumes it.
	Watchers []Watcher

	unrouted unroutedLog
}

// Watcher looks at authentic webhooks: the quiet watch and the canary.
type Watcher interface {
	// Observe sees an authentic webhook's alert (its Resource and Action
	// only when it makes no card) and reports whether it consumes it.
	Observe(a formatter.Alert, at time.Time) bool
}

// Signature headers: Sentry signs webhooks with the first, and the requests
// of UI components with the second.
const (
	headerResource     = "Sentry-Hook-Resource"
	headerSignature    = "Sentry-Hook-Signature"
	headerAppSignature = "Sentry-App-Signature"
)

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	resource := r.Header.Get(headerResource)
	res := outcome{resource: resourceLabel(resource), action: "other"}
	defer func() {
		if h.Metrics != nil {
			h.Metrics.WebhooksReceived.WithLabelValues(res.resource, res.action, res.name).Inc()
			h.Metrics.WebhookDuration.Observe(h.now().Sub(start).Seconds())
		}
	}()

	body, status, err := ReadBody(w, r, h.MaxBody)
	if err != nil {
		res.name = "invalid"
		if status == http.StatusRequestEntityTooLarge {
			res.name = "too_large"
		}
		h.reject(w, r, status, err.Error())
		return
	}
	if !h.authorized(r, resource, body) {
		res.name = "unauthorized"
		h.reject(w, r, http.StatusUnauthorized, "missing or wrong signature or token")
		return
	}
	forced := chi.URLParam(r, "route")
	if forced != "" && !h.Router.Has(forced) {
		res.name = "unknown_route"
		h.reject(w, r, http.StatusNotFound, fmt.Sprintf("unknown route %q: routes are %s", formatter.Shorten(forced, 64), strings.Join(h.Router.Names(), ", ")))
		return
	}

	wh, err := sentry.Parse(resource, body, sentry.Options{SentryURL: h.SentryURL, Received: start})
	res.action = actionLabel(wh.Alert.Action)
	if h.observe(wh.Alert, start) {
		res.name = "consumed"
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": "the relay's own canary event"})
		return
	}
	if reason, ok := sentry.IsIgnored(err); ok {
		res.name = "ignored"
		h.log().Debug("webhook ignored", "resource", res.resource, "reason", reason)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": reason})
		return
	}
	if err != nil {
		res.name = "invalid"
		h.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}

	targets, err := h.Router.Route(wh.Alert, forced)
	var unknown *route.UnknownRouteError
	if errors.As(err, &unknown) && forced == "" {
		// The route chosen in the Sentry rule is gone: deliver by the match
		// rules rather than lose the alert.
		h.log().Warn("the Sentry alert rule chose an unknown route; using the match rules", "route", unknown.Name, "rule", wh.Alert.Rule)
		delete(wh.Alert.Settings, route.SettingRoute)
		targets, err = h.Router.Route(wh.Alert, "")
	}
	if err != nil {
		res.name = "invalid"
		h.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if len(targets) == 0 {
		res.name = "no_route"
		h.unrouted.warn(h.log(), wh.Alert, start)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": "no route matches this alert"})
		return
	}

	id := queue.NewID(start)
	timeout := h.StoreTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	dup, err := h.Queue.Enqueue(ctx, queue.Submission{
		AlertID: id, DedupeKey: wh.DedupeKey, Alert: wh.Alert, Targets: targets, Accepted: start,
	})
	if errors.Is(err, queue.ErrTooLarge) {
		res.name = "too_large"
		h.reject(w, r, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err != nil {
		res.name = "store_error"
		h.log().Error("storing an alert failed; Sentry was answered 503", "err", err, "title", wh.Alert.Title)
		w.Header().Set("Retry-After", "10")
		h.reject(w, r, http.StatusServiceUnavailable, "could not store the alert: "+err.Error())
		return
	}
	if dup {
		res.name = "duplicate"
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": "duplicate"})
		return
	}
	res.name = "queued"
	h.log().Debug("alert queued", "id", id, "resource", res.resource, "action", wh.Alert.Action, "robots", len(targets))
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "id": id})
}

type outcome struct{ resource, action, name string }

// observe shows an authentic webhook's alert to the watchers; true when one
// consumes it.
func (h *Handler) observe(a formatter.Alert, at time.Time) bool {
	consumed := false
	for _, w := range h.Watchers {
		consumed = w.Observe(a, at) || consumed
	}
	return consumed
}

// authorized checks the request's signature (Integration Platform) or
// token (legacy plugin), when those are configured.
func (h *Handler) authorized(r *http.Request, resource string, body []byte) bool {
	if resource != "" {
		return len(h.ClientSecrets) == 0 || ValidSignature(h.ClientSecrets, body, r.Header)
	}
	if h.Token == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(h.Token)) == 1
}

// ValidSignature reports whether the headers carry a Sentry signature of
// body by one of the client secrets: lowercase hex HMAC-SHA256 keyed by the
// secret, compared in constant time over the exact bytes received. Every
// secret is tried, so the time taken does not tell which one matched.
func ValidSignature(secrets []string, body []byte, header http.Header) bool {
	sig := header.Get(headerSignature)
	if sig == "" {
		sig = header.Get(headerAppSignature)
	}
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		ok = hmac.Equal(got, mac.Sum(nil)) || ok
	}
	return ok
}

// unroutedLog warns about alerts no route takes, once a minute per kind of
// alert (project, resource, level), so a storm of them is one line a
// minute, not thousands.
type unroutedLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (u *unroutedLog) warn(log *slog.Logger, a formatter.Alert, now time.Time) {
	key := a.Project + "\x00" + a.Resource + "\x00" + a.Level
	u.mu.Lock()
	if u.last == nil {
		u.last = map[string]time.Time{}
	}
	seen, ok := u.last[key]
	if !ok || now.Sub(seen) >= time.Minute {
		u.last[key] = now
	}
	if len(u.last) > 1000 {
		clear(u.last)
	}
	u.mu.Unlock()
	if ok && now.Sub(seen) < time.Minute {
		return
	}
	log.Warn("no route matches this alert: it was answered 200 ignored and is not delivered (add a catch-all route, or a route that matches it)",
		"project", a.DisplayProject(), "resource", a.Resource, "level", a.Level, "environment", a.Environment,
		"title", formatter.Shorten(a.Title, 120))
}

// ReadBody reads a request body of at most limit bytes. On failure it returns
// the HTTP status to answer: 413 for a body too large, 400 otherwise.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is larger than the limit of %d bytes (RELAY_MAX_BODY_BYTES)", r.ContentLength, limit)
	}
	// Read straight into a buffer of the announced size: growing one by
	// doubling costs a 10 MB body twice its size in garbage.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit)+1))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	body := buf.Bytes()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is larger than the limit of %d bytes (RELAY_MAX_BODY_BYTES)", limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body failed: %w", err)
	}
	return body, 0, nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// reject answers an error. Sentry's request log shows Sentry-Hook-Error.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, msg string) {
	level := slog.LevelWarn
	if status == http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	h.log().Log(r.Context(), level, "webhook rejected", "status", status, "error", msg, "remote", r.RemoteAddr,
		"resource", resourceLabel(r.Header.Get(headerResource)))
	w.Header().Set("Sentry-Hook-Error", formatter.Shorten(msg, 200))
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// resourceLabel bounds the resource label of metrics to known values: the
// header is outside input.
func resourceLabel(resource string) string {
	if resource == "" {
		return sentry.ResourceLegacy
	}
	resource = strings.ToLower(resource)
	if slices.Contains(sentry.KnownResources, resource) {
		return resource
	}
	return "unknown"
}

var knownActions = []string{"triggered", "created", "resolved", "assigned", "ignored", "archived", "unresolved", "critical", "warning", "open"}

func actionLabel(action string) string {
	if slices.Contains(knownActions, action) {
		return action
	}
	return "other"
}
