// Package feishutest is a Feishu/Lark custom-bot server for tests. It
// enforces what Feishu enforces, always answering HTTP 200 with a code: a
// known webhook token (else 19001), 100 requests a minute and 5 a second
// per bot (then 11232), a body within 20 KB and JSON it can read (9499), a
// valid signature within an hour of its clock when the bot signs (19021),
// a known msg_type (19002) and the bot's keyword in the message (19024).
// It records what it accepted and can be told to fail, or to echo the
// request URL the way a gateway might.
package feishutest

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
)

// Limits Feishu applies.
const (
	MaxBody       = 20 << 10
	PerMinute     = 100
	PerSecond     = 5
	SignatureSkew = time.Hour
	// PathPrefix is the webhook path before the token.
	PathPrefix = "/open-apis/bot/v2/hook/"
)

// Bot configures one bot the server knows.
type Bot struct {
	Token   string
	Secret  string // signing secret; empty when the bot does not sign
	Keyword string // custom keyword; empty when none
}

// Message is a message the server accepted.
type Message struct {
	Token   string
	MsgType string
	// Title and Template are the card's header.
	Title, Template string
	// Texts are every text of the message, in order.
	Texts []string
	// Buttons are the URLs the card's buttons open.
	Buttons []string
	// At are the ids the card mentions ("all" for everyone).
	At       []string
	Received time.Time
	Body     []byte
}

// Reply is a scripted answer.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	Code   int
	Msg    string
	// Raw, when set, is the whole body, sent instead of JSON.
	Raw string
	// EchoURL appends the request line, token and all, to Msg (or Raw),
	// as a gateway reporting an error might.
	EchoURL bool
	// Legacy answers with only StatusCode and StatusMessage, as older
	// Feishu versions did.
	Legacy bool
}

// Fault is a kind of injected failure.
type Fault int

const (
	// FaultBadGateway answers HTTP 502 with an HTML body.
	FaultBadGateway Fault = iota + 1
	// FaultReset closes the connection without an answer.
	FaultReset
)

// Server is a fake Feishu custom-bot API. Use it as an http.Handler (with
// Start) or through Transport for tests without sockets.
type Server struct {
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	bots     map[string]Bot
	calls    map[string][]time.Time // per token, every request's time
	messages []Message
	script   []Reply
	fault    Fault
	faults   int
	replies  map[int]int
	requests int
}

// New returns a server that knows the given bots.
func New(bots ...Bot) *Server {
	s := &Server{bots: map[string]Bot{}, calls: map[string][]time.Time{}, replies: map[int]int{}}
	for _, b := range bots {
		s.bots[b.Token] = b
	}
	return s
}

// Start serves s on a loopback port until the test ends and returns its
// base URL; a bot's webhook is URL + PathPrefix + token.
func (s *Server) Start(t interface{ Cleanup(func()) }) string {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
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

// Replies returns how many answers carried code.
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

// MaxInWindow returns the most requests token had in any window of the
// given length.
func (s *Server) MaxInWindow(token string, window time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	times := s.calls[token]
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

// ServeHTTP implements the custom-bot webhook.
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

func (s *Server) answer(r *http.Request) (int, []byte) {
	s.mu.Lock()
	var scripted *Reply
	if len(s.script) > 0 {
		scripted = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if scripted == nil {
		code, msg := s.handle(r)
		return http.StatusOK, s.encode(code, msg, false)
	}
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
	return status, s.encode(scripted.Code, scripted.Msg+echo, scripted.Legacy)
}

// encode is Feishu's answer: code and msg, and on success the legacy
// StatusCode and StatusMessage too, as Feishu sends them.
func (s *Server) encode(code int, msg string, legacy bool) []byte {
	s.mu.Lock()
	s.replies[code]++
	s.mu.Unlock()
	v := map[string]any{"code": code, "msg": msg, "data": map[string]any{}}
	switch {
	case legacy:
		v = map[string]any{"Extra": nil, "StatusCode": code, "StatusMessage": msg}
	case code == 0:
		v["StatusCode"], v["StatusMessage"] = 0, msg
	}
	b, _ := json.Marshal(v)
	return b
}

type sendBody struct {
	Timestamp string          `json:"timestamp"`
	Sign      string          `json:"sign"`
	MsgType   string          `json:"msg_type"`
	Card      json.RawMessage `json:"card"`
	Content   *struct {
		Text string `json:"text"`
	} `json:"content"`
}

var atRE = regexp.MustCompile(`<at id=([^>\s]+)></at>`)

// handle checks a request the way Feishu does and returns its code and
// msg.
func (s *Server) handle(r *http.Request) (int, string) {
	token, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	now := s.now()
	s.mu.Lock()
	bot, known := s.bots[token]
	var minute, second int
	if ok && known {
		for _, t := range s.calls[token] {
			if d := now.Sub(t); d < time.Minute {
				minute++
				if d < time.Second {
					second++
				}
			}
		}
		s.calls[token] = append(s.calls[token], now)
	}
	s.mu.Unlock()
	if !ok || !known || r.Method != http.MethodPost {
		return 19001, "param invalid: incoming webhook access token invalid"
	}
	if minute >= PerMinute || second >= PerSecond {
		return 11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		return 9499, "Bad Request: request body exceeds 20 KB"
	}
	var m sendBody
	if err := json.Unmarshal(body, &m); err != nil {
		return 9499, "Bad Request"
	}
	if bot.Secret != "" {
		ts, err := strconv.ParseInt(m.Timestamp, 10, 64)
		d := now.Sub(time.Unix(ts, 0))
		if err != nil || d > SignatureSkew || d < -SignatureSkew || !hmac.Equal([]byte(m.Sign), []byte(feishu.Sign(bot.Secret, ts))) {
			return 19021, "sign match fail or timestamp is not within one hour from current time"
		}
	}
	msg := Message{Token: token, MsgType: m.MsgType, Received: now, Body: body}
	switch m.MsgType {
	case "text":
		if m.Content == nil || m.Content.Text == "" {
			return 9499, "Bad Request: fail to parse content"
		}
		msg.Texts = []string{m.Content.Text}
	case "interactive":
		var c struct {
			Header struct {
				Template string `json:"template"`
				Title    struct {
					Content string `json:"content"`
				} `json:"title"`
			} `json:"header"`
			Elements []json.RawMessage `json:"elements"`
		}
		if err := json.Unmarshal(m.Card, &c); err != nil || len(c.Elements) == 0 {
			return 9499, "Bad Request: fail to parse card"
		}
		msg.Title, msg.Template = c.Header.Title.Content, c.Header.Template
		var all any
		json.Unmarshal(m.Card, &all)
		collect(all, &msg)
	default:
		return 19002, "params error, msg_type need"
	}
	if bot.Keyword != "" && !slicesContainText(msg.Texts, bot.Keyword) {
		return 19024, "Key Words Not Found"
	}
	for _, t := range msg.Texts {
		for _, m := range atRE.FindAllStringSubmatch(t, -1) {
			msg.At = append(msg.At, m[1])
		}
	}
	s.mu.Lock()
	s.messages = append(s.messages, msg)
	s.mu.Unlock()
	return 0, "success"
}

// collect gathers the texts and button URLs of a card, in order.
func collect(v any, msg *Message) {
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["content"].(string); ok {
			msg.Texts = append(msg.Texts, c)
		}
		if u, ok := v["url"].(string); ok && v["tag"] == "button" {
			msg.Buttons = append(msg.Buttons, u)
		}
		for _, k := range []string{"header", "title", "text", "elements", "fields", "actions"} {
			if child, ok := v[k]; ok {
				collect(child, msg)
			}
		}
	case []any:
		for _, child := range v {
			collect(child, msg)
		}
	}
}

func slicesContainText(texts []string, keyword string) bool {
	for _, t := range texts {
		if strings.Contains(t, keyword) {
			return true
		}
	}
	return false
}
