// Package stdwebhooktest is a Standard Webhooks endpoint for tests. It
// enforces what a careful endpoint enforces: POST of application/json to
// its path, a body limit, a signature that the Standard Webhooks reference
// implementation verifies within 5 minutes of its clock, and a payload of
// the documented schema with every key present. It answers repeats of a
// webhook-id 200 without taking them again, can limit requests a minute
// (then 429 with Retry-After), and can be told to fail.
package stdwebhooktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
)

// Defaults of a new Server.
const (
	DefaultPath    = "/webhook"
	DefaultMaxBody = 1 << 20
	// Tolerance is how far a webhook-timestamp may be from the server's
	// clock, as the specification recommends.
	Tolerance = 5 * time.Minute
)

// Delivery is a request the server took.
type Delivery struct {
	ID        string
	Timestamp time.Time
	Header    http.Header
	Body      []byte
	Payload   stdwebhook.Payload
	Received  time.Time
}

// Reply is a scripted answer, given before any check.
type Reply struct {
	Status int
	Header http.Header
	Body   string
	// Echo appends the request line (method and URL with its query), as
	// some gateways do in their error pages.
	Echo bool
	// Reset closes the connection instead of answering.
	Reset bool
}

// Server is a fake webhook endpoint. Use it as an http.Handler (with Start
// or httptest.NewServer) or through Transport for tests without sockets.
type Server struct {
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time
	// Path is where the endpoint listens; other paths answer 404.
	Path string
	// MaxBody is the largest body taken; larger ones answer 413.
	MaxBody int
	// PerMinute limits requests a minute, 0 for no limit.
	PerMinute int

	mu         sync.Mutex
	wh         *standardwebhooks.Webhook
	script     []Reply
	deliveries []Delivery
	ids        map[string]bool
	accepted   []time.Time
	requests   int
	repeats    int
	statuses   map[int]int
}

// New returns an endpoint that verifies signatures with secret (whsec_…).
func New(secret string) (*Server, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &Server{Path: DefaultPath, MaxBody: DefaultMaxBody, wh: wh, ids: map[string]bool{}, statuses: map[int]int{}}, nil
}

// Start serves s on a loopback port until the test ends and returns the
// endpoint's URL.
func (s *Server) Start(t interface{ Cleanup(func()) }) string {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL + s.Path
}

// Script queues answers for the next requests.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Deliveries returns the requests taken, each webhook-id once.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// Requests returns how many requests arrived, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Repeats returns how many requests repeated a webhook-id already taken.
func (s *Server) Repeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repeats
}

// Statuses returns how many answers had the given status.
func (s *Server) Statuses(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[status]
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// answer is what the endpoint says to one request.
type answer struct {
	status int
	header http.Header
	body   string
	reset  bool
}

// ServeHTTP implements the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := s.handle(r)
	if a.reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
				return
			}
		}
	}
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// Transport returns a RoundTripper that calls s directly, without sockets,
// for tests on virtual time (testing/synctest).
func (s *Server) Transport() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ s *Server }

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	a := rt.s.handle(r)
	if r.Body != nil {
		r.Body.Close()
	}
	if a.reset {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	h := a.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		StatusCode: a.status, Status: strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		Header: h, Body: io.NopCloser(strings.NewReader(a.body)), Request: r,
	}, nil
}

func failure(status int, format string, args ...any) answer {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	return answer{status: status, body: string(b)}
}

// handle checks a request the way a careful endpoint does.
func (s *Server) handle(r *http.Request) (a answer) {
	s.mu.Lock()
	s.requests++
	var scripted *Reply
	if len(s.script) > 0 {
		scripted = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.statuses[a.status]++
		s.mu.Unlock()
	}()
	if scripted != nil {
		body := scripted.Body
		if scripted.Echo {
			body += " (" + r.Method + " " + r.URL.RequestURI() + " HTTP/1.1)"
		}
		status := scripted.Status
		if status == 0 {
			status = http.StatusOK
		}
		return answer{status: status, header: scripted.Header, body: body, reset: scripted.Reset}
	}
	if r.URL.Path != s.Path {
		return failure(http.StatusNotFound, "no endpoint at %s", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return failure(http.StatusMethodNotAllowed, "POST only")
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return failure(http.StatusUnsupportedMediaType, "Content-Type %q is not application/json", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.MaxBody)+1))
	if err != nil {
		return failure(http.StatusBadRequest, "read body: %v", err)
	}
	if len(body) > s.MaxBody {
		return failure(http.StatusRequestEntityTooLarge, "body over %d bytes", s.MaxBody)
	}
	if err := s.wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
		return failure(http.StatusUnauthorized, "%v", err)
	}
	now := s.now()
	secs, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return failure(http.StatusUnauthorized, "webhook-timestamp is not Unix seconds")
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
		return failure(http.StatusUnauthorized, "webhook-timestamp %d is %v from now", secs, d)
	}
	p, err := checkPayload(body)
	if err != nil {
		return failure(http.StatusBadRequest, "%v", err)
	}
	id := r.Header.Get("webhook-id")

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[id] {
		s.repeats++
		return answer{status: http.StatusOK, body: `{"status":"duplicate"}`}
	}
	if s.PerMinute > 0 {
		recent := s.accepted[:0:0]
		for _, t := range s.accepted {
			if now.Sub(t) < time.Minute {
				recent = append(recent, t)
			}
		}
		if len(recent) >= s.PerMinute {
			wait := recent[0].Add(time.Minute).Sub(now)
			a := failure(http.StatusTooManyRequests, "over %d requests a minute", s.PerMinute)
			a.header = http.Header{"Retry-After": {strconv.Itoa(int((wait + time.Second - 1) / time.Second))}}
			return a
		}
	}
	s.accepted = append(s.accepted, now)
	s.ids[id] = true
	s.deliveries = append(s.deliveries, Delivery{ID: id, Timestamp: ts, Header: r.Header.Clone(), Body: body, Payload: p, Received: now})
	return answer{status: http.StatusOK, body: `{"status":"ok"}`}
}

// checkPayload decodes body strictly and checks the documented schema:
// every key of an alert present, nothing unknown, a known type.
func checkPayload(body []byte) (stdwebhook.Payload, error) {
	var p stdwebhook.Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("payload: %w", err)
	}
	var raw struct {
		Type   *string                      `json:"type"`
		Alerts []map[string]json.RawMessage `json:"alerts"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Type == nil || raw.Alerts == nil {
		return p, fmt.Errorf("payload: type and alerts are required")
	}
	switch {
	case p.Type == stdwebhook.TypeAlert && len(p.Alerts) != 1:
		return p, fmt.Errorf("payload: an alert payload carries %d alerts", len(p.Alerts))
	case p.Type == stdwebhook.TypeDigest && len(p.Alerts) == 0:
		return p, fmt.Errorf("payload: an empty digest")
	case p.Type != stdwebhook.TypeAlert && p.Type != stdwebhook.TypeDigest:
		return p, fmt.Errorf("payload: unknown type %q", p.Type)
	}
	for i, a := range raw.Alerts {
		for _, key := range alertKeys {
			v, ok := a[key]
			if !ok || string(v) == "null" {
				return p, fmt.Errorf("payload: alerts[%d] has no %s", i, key)
			}
		}
	}
	return p, nil
}

// alertKeys are the JSON keys of stdwebhook.Alert: all of them always
// present is part of the schema.
var alertKeys = func() []string {
	var keys []string
	t := reflect.TypeFor[stdwebhook.Alert]()
	for i := range t.NumField() {
		keys = append(keys, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
	}
	return keys
}()
