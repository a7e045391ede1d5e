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
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
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
// or httptest.NewServer) or through Transport for tests without sockets;
// the embedded Double injects faults and counts requests, and
// MaxInWindow("", window) counts the requests taken.
type Server struct {
	*notifytest.Double

	// Path is where the endpoint listens; other paths answer 404.
	Path string
	// MaxBody is the largest body taken; larger ones answer 413.
	MaxBody int
	// PerMinute limits requests a minute, 0 for no limit.
	PerMinute int

	wh     *standardwebhooks.Webhook
	script notifytest.Script[Reply]

	mu         sync.Mutex
	deliveries []Delivery
	ids        map[string]bool
	repeats    int
	statuses   map[int]int
}

// New returns an endpoint that verifies signatures with secret (whsec_…).
func New(secret string) (*Server, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	s := &Server{Path: DefaultPath, MaxBody: DefaultMaxBody, wh: wh, ids: map[string]bool{}, statuses: map[int]int{}}
	s.Double = notifytest.New(s.answer)
	return s, nil
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
	s.script.Add("", replies...)
}

// Deliveries returns the requests taken, each webhook-id once.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
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

func failure(status int, format string, args ...any) notifytest.Answer {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	return notifytest.Answer{Status: status, Body: b}
}

// answer is the reply to r: the next scripted one, else the endpoint's.
func (s *Server) answer(r *http.Request, clock func() time.Time, calls *notifytest.Calls) (a notifytest.Answer) {
	defer func() {
		s.mu.Lock()
		s.statuses[cmp.Or(a.Status, http.StatusOK)]++
		s.mu.Unlock()
	}()
	scripted, ok := s.script.Next("")
	if !ok {
		return s.handle(r, clock, calls)
	}
	body := scripted.Body
	if scripted.Echo {
		body += " (" + notifytest.RequestLine(r) + " HTTP/1.1)"
	}
	return notifytest.Answer{Status: scripted.Status, Header: scripted.Header, Body: []byte(body), Reset: scripted.Reset}
}

// handle checks a request the way a careful endpoint does.
func (s *Server) handle(r *http.Request, clock func() time.Time, calls *notifytest.Calls) notifytest.Answer {
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
	now := clock()
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
		return notifytest.Answer{Body: []byte(`{"status":"duplicate"}`)}
	}
	if s.PerMinute > 0 {
		if recent := calls.Recent("", now, time.Minute); len(recent) >= s.PerMinute {
			wait := recent[0].Add(time.Minute).Sub(now)
			a := failure(http.StatusTooManyRequests, "over %d requests a minute", s.PerMinute)
			a.Header = http.Header{"Retry-After": {strconv.Itoa(int((wait + time.Second - 1) / time.Second))}}
			return a
		}
	}
	calls.Record("", now)
	s.ids[id] = true
	s.deliveries = append(s.deliveries, Delivery{ID: id, Timestamp: ts, Header: r.Header.Clone(), Body: body, Payload: p, Received: now})
	return notifytest.Answer{Body: []byte(`{"status":"ok"}`)}
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
