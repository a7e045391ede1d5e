// Package notifytest is the core the relay's doubles of outside services
// (dingtalktest, wecomtest, feishutest, stdwebhooktest) share: what a
// double does the same way whatever the service. It injects faults (a
// gateway's 502, a reset connection, a reply lost after the service took
// the request, a gateway echoing the request), counts requests, keeps the
// call times a rate limit counts, queues scripted replies, and serves over
// a socket or in memory for tests on virtual time. What a service enforces
// and how it answers stays in that service's double, as a Handler.
package notifytest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Fault is a kind of injected failure.
type Fault int

const (
	// FaultBadGateway answers HTTP 502 with an HTML body.
	FaultBadGateway Fault = iota + 1
	// FaultReset closes the connection without an answer.
	FaultReset
	// FaultLostReply handles the request (the service takes it) and then
	// closes the connection: the sender cannot tell it arrived.
	FaultLostReply
	// FaultEcho answers like a misconfigured gateway: HTTP 200 with a page
	// that quotes the request line, as sent and decoded, so tokens and
	// signatures in the URL come back in the body.
	FaultEcho
)

// Answer is a double's reply to one request.
type Answer struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is sent as is; without a Content-Type the answer is JSON.
	Header http.Header
	Body   []byte
	// Reset closes the connection instead of answering.
	Reset bool
}

// Handler is a service's part of a double: it checks r the way the
// service does and answers. clock reads the double's clock; calls is the log
// behind MaxInWindow, where the handler records what the service's rate
// limit counts.
type Handler func(r *http.Request, clock func() time.Time, calls *Calls) Answer

// Double is the part of a service double that does not depend on the
// service. A service's Server embeds it and so is an http.Handler with a
// Transport, Faults, Requests and MaxInWindow.
type Double struct {
	// Now is the double's clock; nil means time.Now.
	Now func() time.Time

	handle Handler
	calls  Calls

	mu       sync.Mutex
	requests int
	fault    Fault
	left     int     // requests still to fail, set by Faults
	share    float64 // share of requests to fail, set by FaultShare
	rnd      *rand.Rand
}

// New returns a double that answers with h every request no fault takes.
// Its fault shares draw from a fixed seed, so a test sees the same
// requests fail on every run.
func New(h Handler) *Double {
	return &Double{handle: h, rnd: rand.New(rand.NewPCG(1, 2))}
}

// Faults makes the next n requests fail in the given way, ending any
// share set by FaultShare.
func (d *Double) Faults(f Fault, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault, d.left, d.share = f, n, 0
}

// FaultShare makes a share (0..1) of the requests from now on fail in the
// given way, ending any count set by Faults.
func (d *Double) FaultShare(f Fault, share float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault, d.left, d.share = f, 0, share
}

// Requests returns how many requests arrived, faults included.
func (d *Double) Requests() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests
}

// MaxInWindow returns the most calls the handler recorded for key in any
// window of the given length.
func (d *Double) MaxInWindow(key string, window time.Duration) int {
	return d.calls.MaxInWindow(key, window)
}

// ServeHTTP answers r, failing it when a fault is due.
func (d *Double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := d.answer(r)
	if a.Reset && reset(w) {
		return
	}
	for k, vs := range a.Header {
		w.Header()[k] = vs
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status(a))
	w.Write(a.Body)
}

// reset closes the connection under w with a TCP reset; it reports false
// when the connection cannot be taken over.
func reset(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
	return true
}

// Transport returns a RoundTripper that calls d directly, without sockets,
// for tests on virtual time (testing/synctest). A reset is an
// ECONNRESET error, as a client on a socket sees it.
func (d *Double) Transport() http.RoundTripper { return roundTripper{d} }

type roundTripper struct{ d *Double }

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	a := rt.d.answer(r)
	if a.Reset {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	h := a.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	st := status(a)
	return &http.Response{
		StatusCode: st, Status: strconv.Itoa(st) + " " + http.StatusText(st),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: int64(len(a.Body)),
		Body: io.NopCloser(bytes.NewReader(a.Body)), Request: r,
	}, nil
}

func status(a Answer) int {
	if a.Status == 0 {
		return http.StatusOK
	}
	return a.Status
}

// answer is the reply to r: a fault's when one is due, else the handler's.
func (d *Double) answer(r *http.Request) Answer {
	switch d.injected() {
	case FaultBadGateway:
		return Answer{Status: http.StatusBadGateway, Header: html(), Body: []byte("<html><body>502 Bad Gateway</body></html>")}
	case FaultEcho:
		return Answer{Header: html(), Body: []byte("<html><body>upstream error for " + RequestLine(r) + " (" + decoded(r) + ")</body></html>")}
	case FaultLostReply:
		d.handle(r, d.now, &d.calls)
		return Answer{Status: http.StatusBadGateway, Reset: true}
	case FaultReset:
		return Answer{Status: http.StatusBadGateway, Reset: true}
	}
	return d.handle(r, d.now, &d.calls)
}

func html() http.Header { return http.Header{"Content-Type": {"text/html"}} }

// injected counts r and returns the fault it suffers, if any.
func (d *Double) injected() Fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	switch {
	case d.left > 0:
		d.left--
		return d.fault
	case d.fault != 0 && d.share > 0 && d.rnd.Float64() < d.share:
		return d.fault
	}
	return 0
}

func (d *Double) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// RequestLine is r's method and URL as they stand on the wire, what a
// gateway reporting an error quotes.
func RequestLine(r *http.Request) string {
	return r.Method + " " + r.URL.RequestURI()
}

// decoded is r's URL as a gateway logging it decoded shows it.
func decoded(r *http.Request) string {
	s, err := url.PathUnescape(r.URL.RequestURI())
	if err != nil {
		return r.URL.RequestURI()
	}
	return s
}

// Calls is a log of call times per key: what a service's rate limit
// counts. It is safe for concurrent use.
type Calls struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

// Record logs a call for key at t.
func (c *Calls) Record(key string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.times == nil {
		c.times = map[string][]time.Time{}
	}
	c.times[key] = append(c.times[key], t)
}

// Recent returns key's calls less than window before now, oldest first.
func (c *Calls) Recent(key string, now time.Time, window time.Duration) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.times[key] {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	return out
}

// MaxInWindow returns the most calls key had in any window of the given
// length.
func (c *Calls) MaxInWindow(key string, window time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return MaxInWindow(c.times[key], window)
}

// MaxInWindow returns the most of times (ascending) that fall in any window
// of the given length: what a service's per-minute limit counts.
func MaxInWindow(times []time.Time, window time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Script is a queue of scripted replies per key (a service that scripts
// no key uses ""). The zero Script is empty and ready; it is safe for
// concurrent use.
type Script[R any] struct {
	mu     sync.Mutex
	queues map[string][]R
}

// Add queues replies for key after those already queued.
func (s *Script[R]) Add(key string, replies ...R) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues == nil {
		s.queues = map[string][]R{}
	}
	s.queues[key] = append(s.queues[key], replies...)
}

// Next takes the first reply queued for key; ok is false when none is.
func (s *Script[R]) Next(key string) (reply R, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[key]
	if len(q) == 0 {
		return reply, false
	}
	s.queues[key] = q[1:]
	return q[0], true
}
