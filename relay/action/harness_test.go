package action

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const publicURL = "https://sentry-relay.example.com"

var start = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// clock is a settable time source shared with the fake Sentry's goroutine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log lines written from handler goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t      *testing.T
	svc    *Service
	sentry *fakeSentry
	clock  *clock
	logs   *syncBuffer
	reg    *prometheus.Registry
	issue  Issue
}

// newHarness starts a fake Sentry holding one unresolved issue and a service
// pointed at it; edit adjusts the configuration.
func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: start}, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	h.sentry = newFakeSentry(t, h.clock.Now)
	h.sentry.add(fakeIssue{
		Org: "acme", ID: "4711", Title: `ZeroDivisionError: <b>division</b> by zero & "more"`,
		Project: "backend", Level: "error", Status: "unresolved", Substatus: "ongoing",
		Assignee: "Li Lei", AssigneeType: "user",
	})
	h.issue = Issue{Org: "acme", ID: "4711", URL: h.sentry.srv.URL + "/organizations/acme/issues/4711/"}
	cfg := Config{
		PublicURL: publicURL, Key: testKey, SentryURL: h.sentry.srv.URL, AuthToken: testToken,
		Now: h.clock.Now, Log: slog.New(slog.NewJSONHandler(h.logs, nil)), Registerer: h.reg,
	}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	return h
}

// link returns the issue's link of kind k.
func (h *harness) link(k kind) string {
	h.t.Helper()
	for _, l := range h.svc.Links(h.issue) {
		if l.Label == h.svc.text.Actions[k].Label {
			return l.URL
		}
	}
	h.t.Fatalf("no %s link for %+v", k.name(), h.issue)
	return ""
}

// response is one answer of the handler.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// get opens target as a browser following a link from a chat would.
func (h *harness) get(target string) response {
	return h.do(httptest.NewRequest(http.MethodGet, target, nil))
}

// post confirms target as the page's own form would.
func (h *harness) post(target string) response {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", publicURL)
	return h.do(r)
}

func (h *harness) do(r *http.Request) response {
	h.t.Helper()
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", "Mozilla/5.0 DingTalk/7.6.0")
	}
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, r)
	body, _ := io.ReadAll(rec.Result().Body)
	return response{Status: rec.Code, Header: rec.Result().Header, Body: string(body)}
}

// counted is actions_total for one label pair.
func (h *harness) counted(action, outcome string) float64 {
	return testutil.ToFloat64(h.svc.actions.WithLabelValues(action, outcome))
}
