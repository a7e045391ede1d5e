// Package wecomtest is a WeCom group-robot server for tests. It enforces
// what WeCom enforces: a known webhook key (else 93000), 20 requests per
// minute per key counted whether or not they succeed (then 45009), valid
// UTF-8 (40033), a known msgtype (40008), markdown content within 4096
// bytes and text content within 2048 (40058). It records what it accepted
// and can be told to fail (notifytest's faults), or to echo the request URL
// in its errmsg the way a gateway might.
package wecomtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
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

// Server is a fake WeCom robot API. Use it as an http.Handler (with
// Start) or through Transport for tests without sockets; the embedded
// Double injects faults and counts requests, and MaxInWindow counts every
// request to a known key, failed ones included: what WeCom's limit counts.
type Server struct {
	*notifytest.Double

	script notifytest.Script[Reply]

	mu       sync.Mutex
	keys     map[string]bool
	messages []Message
	replies  map[int]int
}

// New returns a server that knows the given webhook keys.
func New(keys ...string) *Server {
	s := &Server{keys: map[string]bool{}, replies: map[int]int{}}
	s.Double = notifytest.New(s.answer)
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
	s.script.Add("", replies...)
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

// answer is the reply to r: the next scripted one, else WeCom's.
func (s *Server) answer(r *http.Request, clock func() time.Time, calls *notifytest.Calls) notifytest.Answer {
	scripted, ok := s.script.Next("")
	if !ok {
		code, msg := s.handle(r, clock, calls)
		return notifytest.Answer{Body: s.encode(code, msg)}
	}
	echo := ""
	if scripted.EchoURL {
		echo = " request: " + notifytest.RequestLine(r)
	}
	if scripted.Raw != "" {
		return notifytest.Answer{Status: scripted.Status, Body: []byte(scripted.Raw + echo)}
	}
	return notifytest.Answer{Status: scripted.Status, Body: s.encode(scripted.ErrCode, scripted.ErrMsg+echo)}
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
func (s *Server) handle(r *http.Request, clock func() time.Time, calls *notifytest.Calls) (int, string) {
	key := r.URL.Query().Get("key")
	if r.URL.Path != Path || r.Method != http.MethodPost {
		return 93000, "invalid webhook url" + hint + "93000"
	}
	now := clock()
	s.mu.Lock()
	known := s.keys[key]
	recent := 0
	if known {
		recent = len(calls.Recent(key, now, time.Minute))
		calls.Record(key, now)
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
