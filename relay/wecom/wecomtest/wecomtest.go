// Package wecomtest is a WeCom group-robot server for tests. It enforces
// what WeCom enforces: a known webhook key (else 93000), 20 requests per
// minute per key counted whether or not they succeed (then 45009), valid
// UTF-8 (40033), a known msgtype (40008), markdown content within 4096
// bytes and text content within 2048 (40058). It records what it accepted
// and can be told to fail, or to echo the request URL in its errmsg the
// way a gateway might.
package wecomtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Limits WeCom applies.
const (
	MaxMarkdown = 4096
	MaxText     = 2048
	PerMinute   = 20
	// Path is the send endpoint's path.
	Path = "/cgi-bin/webhook/send"
)

// Message is a message the server accepted.
type Message struct {
	Key     string
	MsgType string
	Content string
	// MentionedList and MentionedMobileList are what a text message asked
	// to ping.
	MentionedList       []string
	MentionedMobileList []string
	Received            time.Time
	Body                []byte
}

// Reply is a scripted answer.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status  int
	ErrCode int
	ErrMsg  string
	// Raw, when set, is the whole body, sent instead of JSON.
	Raw string
	// EchoURL appends the request line, key and all, to the errmsg (or
	// to Raw), as a gateway reporting an error might.
	EchoURL bool
}

// Fault is a kind of injected failure.
type Fault int

const (
	// FaultBadGateway answers HTTP 502 with an HTML body.
	FaultBadGateway Fault = iota + 1
	// FaultReset closes the connection without an answer.
	FaultReset
)

// Server is a fake WeCom robot API. Use it as an http.Handler (with
// Start) or through Transport for tests without sockets.
type Server struct {
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	keys     map[string]bool
	calls    map[string][]time.Time // per key, every request's time
	messages []Message
	script   []Reply
	faults   int
	fault    Fault
	replies  map[int]int
	requests int
}

// New returns a server that knows the given webhook keys.
func New(keys ...string) *Server {
	s := &Server{keys: map[string]bool{}, calls: map[string][]time.Time{}, replies: map[int]int{}}
	for _, k := range keys {
		s.keys[k] = true
	}
	return s
}

// Start serves s on a loopback port until the test ends and returns the
// send endpoint's URL without the key.
func (s *Server) Start(t interface{ Cleanup(func()) }) string {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL + Path
}

// Script queues answers for the next requests, before any check.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Faults makes the next n requests fail in the given way.
func (s *Server) Faults(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.faults = f, n
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Replies returns how many answers carried errcode code.
func (s *Server) Replies(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replies[code]
}

// Requests returns how many requests arrived, faults included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// MaxInWindow returns the most requests key had in any window of the
// given length, failed ones included: what WeCom's limit counts.
func (s *Server) MaxInWindow(key string, window time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	times := s.calls[key]
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// injected returns the fault this request suffers, if any.
func (s *Server) injected() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.faults > 0 {
		s.faults--
		return s.fault
	}
	return 0
}

// ServeHTTP implements the robot send API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch s.injected() {
	case FaultBadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	case FaultReset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	status, body := s.answer(r)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// Transport returns a RoundTripper that calls s directly, without sockets,
// for tests on virtual time (testing/synctest).
func (s *Server) Transport() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ s *Server }

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	switch rt.s.injected() {
	case FaultReset:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case FaultBadGateway:
		return &http.Response{StatusCode: 502, Body: io.NopCloser(strings.NewReader("bad gateway")), Header: http.Header{}, Request: r}, nil
	}
	status, body := rt.s.answer(r)
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: r,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(body)),
	}, nil
}

// answer is the reply to r: its status and body.
func (s *Server) answer(r *http.Request) (int, []byte) {
	s.mu.Lock()
	var scripted *Reply
	if len(s.script) > 0 {
		scripted = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if scripted != nil {
		status := scripted.Status
		if status == 0 {
			status = http.StatusOK
		}
		echo := ""
		if scripted.EchoURL {
			echo = " request: " + r.Method + " " + r.URL.RequestURI()
		}
		if scripted.Raw != "" {
			return status, []byte(scripted.Raw + echo)
		}
		return status, s.encode(scripted.ErrCode, scripted.ErrMsg+echo)
	}
	code, msg := s.handle(r)
	return http.StatusOK, s.encode(code, msg)
}

func (s *Server) encode(code int, msg string) []byte {
	s.mu.Lock()
	s.replies[code]++
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"errcode": code, "errmsg": msg})
	return b
}

type sendBody struct {
	MsgType  string   `json:"msgtype"`
	Markdown *content `json:"markdown"`
	Text     *content `json:"text"`
}

type content struct {
	Content             string   `json:"content"`
	MentionedList       []string `json:"mentioned_list"`
	MentionedMobileList []string `json:"mentioned_mobile_list"`
}

// hint is what WeCom appends to every errmsg.
const hint = ", hint: [1700000000_0_0123456789abcdef], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e="

// handle checks a request the way WeCom does and returns its errcode and
// errmsg.
func (s *Server) handle(r *http.Request) (int, string) {
	key := r.URL.Query().Get("key")
	if r.URL.Path != Path || r.Method != http.MethodPost {
		return 93000, "invalid webhook url" + hint + "93000"
	}
	now := s.now()
	s.mu.Lock()
	known := s.keys[key]
	recent := 0
	if known {
		for _, t := range s.calls[key] {
			if now.Sub(t) < time.Minute {
				recent++
			}
		}
		s.calls[key] = append(s.calls[key], now)
	}
	s.mu.Unlock()
	if !known {
		return 93000, "invalid webhook url" + hint + "93000"
	}
	if recent >= PerMinute {
		return 45009, "api freq out of limit" + hint + "45009"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return 40058, "invalid request body" + hint + "40058"
	}
	if !utf8.Valid(body) {
		return 40033, "invalid charset. charset must be utf-8" + hint + "40033"
	}
	var m sendBody
	if err := json.Unmarshal(body, &m); err != nil {
		return 40058, "request body is not valid json" + hint + "40058"
	}
	var c *content
	limit := 0
	switch m.MsgType {
	case "markdown":
		c, limit = m.Markdown, MaxMarkdown
	case "text":
		c, limit = m.Text, MaxText
	default:
		return 40008, "invalid message type" + hint + "40008"
	}
	if c == nil || c.Content == "" {
		return 44004, "empty content" + hint + "44004"
	}
	if len(c.Content) > limit {
		return 40058, m.MsgType + ".content exceed max length " + strconv.Itoa(limit) + hint + "40058"
	}
	msg := Message{Key: key, MsgType: m.MsgType, Content: c.Content, Received: now, Body: body}
	if m.MsgType == "text" {
		msg.MentionedList, msg.MentionedMobileList = c.MentionedList, c.MentionedMobileList
	}
	s.mu.Lock()
	s.messages = append(s.messages, msg)
	s.mu.Unlock()
	return 0, "ok"
}
