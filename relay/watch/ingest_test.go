package watch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
)

// The fake project the tests' DSNs point at.
const (
	testProject   = "42"
	testPublicKey = "c0ffee0123456789abcdef0123456789"
	testSecretKey = "5ecre7feedface0123456789abcdef99"
)

// ingest is a Sentry ingest endpoint for one project. Like Sentry's Relay it
// takes envelopes only at /api/<project>/envelope/, wants the project's key
// in X-Sentry-Auth (and the envelope's dsn header, when present, to agree),
// and answers 200 {"id": ...} for an event it accepts. What happens next is
// up to the test: fire is called with each accepted event, as Sentry's
// Automation would send the webhook.
type ingest struct {
	mu     sync.Mutex
	events []sentEvent
	status int                // answer instead of 200 when set
	fire   func(ev sentEvent) // nil: the event is swallowed
}

// sentEvent is what the ingest decoded from one envelope.
type sentEvent struct {
	EventID     string            `json:"event_id"`
	Message     string            `json:"message"`
	Level       string            `json:"level"`
	Fingerprint []string          `json:"fingerprint"`
	Tags        map[string]string `json:"tags"`
}

func (in *ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/"+testProject+"/envelope/" {
		http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
		return
	}
	if !strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key="+testPublicKey) {
		http.Error(w, `{"detail":"missing or wrong sentry_key"}`, http.StatusUnauthorized)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	ev, err := decodeEnvelope(body)
	if err != nil {
		http.Error(w, `{"detail":"`+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	in.events = append(in.events, ev)
	status, fire := in.status, in.fire
	in.mu.Unlock()
	if status != 0 {
		http.Error(w, `{"detail":"internal error"}`, status)
		return
	}
	if fire != nil {
		fire(ev)
	}
	fmt.Fprintf(w, `{"id":%q}`, ev.EventID)
}

// decodeEnvelope reads an envelope: a header line, then items, each a
// header line and a payload of the header's length or up to the next
// newline. It wants exactly one event item agreeing with the header.
func decodeEnvelope(r io.Reader) (sentEvent, error) {
	br := bufio.NewReader(r)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return sentEvent{}, fmt.Errorf("envelope header: %w", err)
	}
	var header struct {
		EventID string `json:"event_id"`
		DSN     string `json:"dsn"`
	}
	if err := json.Unmarshal(line, &header); err != nil {
		return sentEvent{}, fmt.Errorf("envelope header: %w", err)
	}
	if header.DSN != "" && !strings.Contains(header.DSN, "//"+testPublicKey) {
		return sentEvent{}, fmt.Errorf("envelope dsn disagrees with the key")
	}
	var events []sentEvent
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err != nil {
			break
		}
		var item struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if err := json.Unmarshal(line, &item); err != nil {
			return sentEvent{}, fmt.Errorf("item header: %w", err)
		}
		var payload []byte
		if item.Length != nil {
			payload = make([]byte, *item.Length)
			if _, err := io.ReadFull(br, payload); err != nil {
				return sentEvent{}, fmt.Errorf("item payload: %w", err)
			}
			br.ReadByte() // the newline after a sized payload, if any
		} else {
			payload, _ = br.ReadBytes('\n')
		}
		if item.Type != "event" {
			continue
		}
		var ev sentEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return sentEvent{}, fmt.Errorf("event: %w", err)
		}
		events = append(events, ev)
	}
	if len(events) != 1 || events[0].EventID != header.EventID || len(header.EventID) != 32 {
		return sentEvent{}, fmt.Errorf("want one event with the header's event id, got %d", len(events))
	}
	return events[0], nil
}

func (in *ingest) sent() []sentEvent {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]sentEvent(nil), in.events...)
}

func (in *ingest) set(status int, fire func(sentEvent)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.status, in.fire = status, fire
}

// transport calls the ingest in the caller's goroutine, so a test on
// synctest's virtual clock keeps everything inside its bubble.
func (in *ingest) transport() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		if r.URL.Host != "sentry.test" {
			return nil, fmt.Errorf("dial tcp %s: connection refused", r.URL.Host)
		}
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, r)
		return rec.Result(), nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testDSN is a DSN of the fake project at base (scheme://host:port), with
// the legacy secret key so that tests see it never leaks.
func testDSN(base string) string {
	return strings.Replace(base, "://", "://"+testPublicKey+":"+testSecretKey+"@", 1) + "/" + testProject
}

// webhook builds the webhook Sentry's Automation would send for ev, from a
// real payload with the event's id, title and tags put in, and parses it as
// the relay does.
func webhook(t testing.TB, resource string, ev sentEvent) formatter.Alert {
	t.Helper()
	var file string
	switch resource {
	case "event_alert":
		file = "event_alert.triggered.json"
	case "issue":
		file = "issue.created.json"
	default:
		t.Fatalf("no fixture for %s", resource)
	}
	raw, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	data := p["data"].(map[string]any)
	if resource == "issue" {
		issue := data["issue"].(map[string]any)
		issue["title"] = ev.Message
		issue["metadata"] = map[string]any{"title": ev.Message}
	} else {
		event := data["event"].(map[string]any)
		event["event_id"], event["title"], event["message"] = ev.EventID, ev.Message, ev.Message
		delete(event, "exception")
		delete(event, "metadata")
		var tags [][]string
		for k, v := range ev.Tags {
			tags = append(tags, []string{k, v})
		}
		event["tags"] = tags
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sentry.Parse(resource, body, sentry.Options{Received: time.Now()})
	if err != nil {
		t.Fatalf("parse %s: %v", resource, err)
	}
	return w.Alert
}

// announcer records what it was asked to announce, and when; fail makes
// the next n announcements fail, as an unwritable queue would; during, when
// set, runs inside every announcement.
type announcer struct {
	mu     sync.Mutex
	cards  []announced
	fail   int
	during func()
}

type announced struct {
	at    time.Time
	alert formatter.Alert
}

func (a *announcer) Announce(_ context.Context, al formatter.Alert) error {
	a.mu.Lock()
	during := a.during
	a.mu.Unlock()
	if during != nil {
		during()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail > 0 {
		a.fail--
		return fmt.Errorf("queue: disk full")
	}
	a.cards = append(a.cards, announced{at: time.Now(), alert: al})
	return nil
}

func (a *announcer) got() []announced {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]announced(nil), a.cards...)
}

func (a *announcer) failNext(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = n
}

// actions lists the announced cards' actions with their offsets from t0 in
// seconds, e.g. "canary_failed@3".
func actions(cards []announced, t0 time.Time) []string {
	var out []string
	for _, c := range cards {
		out = append(out, c.alert.Action+"@"+strconv.FormatFloat(c.at.Sub(t0).Seconds(), 'f', -1, 64))
	}
	return out
}
