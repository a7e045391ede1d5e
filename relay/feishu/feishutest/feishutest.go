// Package feishutest is a Feishu/Lark custom-bot server for tests. It
// enforces what Feishu enforces, always answering HTTP 200 with a code: a
// known webhook token (else 19001), 100 requests a minute and 5 a second
// per bot (then 11232), a body within 20 KB and JSON it can read (9499), a
// valid signature within an hour of its clock when the bot signs (19021),
// a known msg_type (19002) and the bot's keyword in the message (19024).
// It records what it accepted and can be told to fail (notifytest's
// faults), or to echo the request URL the way a gateway might.
package feishutest

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
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

// Server is a fake Feishu custom-bot API. Use it as an http.Handler (with
// Start) or through Transport for tests without sockets; the embedded
// Double injects faults and counts requests, and MaxInWindow counts every
// request to a known bot: what Feishu's limits count.
type Server struct {
	*notifytest.Double

	script notifytest.Script[Reply]

	mu       sync.Mutex
	bots     map[string]Bot
	messages []Message
	replies  map[int]int
}

// New returns a server that knows the given bots.
func New(bots ...Bot) *Server {
	s := &Server{bots: map[string]Bot{}, replies: map[int]int{}}
	s.Double = notifytest.New(s.answer)
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
	s.script.Add("", replies...)
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

// answer is the reply to r: the next scripted one, else Feishu's.
func (s *Server) answer(r *http.Request, clock func() time.Time, calls *notifytest.Calls) notifytest.Answer {
	scripted, ok := s.script.Next("")
	if !ok {
		code, msg := s.handle(r, clock, calls)
		return notifytest.Answer{Body: s.encode(code, msg, false)}
	}
	echo := ""
	if scripted.EchoURL {
		echo = " request: " + notifytest.RequestLine(r)
	}
	if scripted.Raw != "" {
		return notifytest.Answer{Status: scripted.Status, Body: []byte(scripted.Raw + echo)}
	}
	return notifytest.Answer{Status: scripted.Status, Body: s.encode(scripted.Code, scripted.Msg+echo, scripted.Legacy)}
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
func (s *Server) handle(r *http.Request, clock func() time.Time, calls *notifytest.Calls) (int, string) {
	token, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	now := clock()
	s.mu.Lock()
	bot, known := s.bots[token]
	var minute, second int
	if ok && known {
		minute = len(calls.Recent(token, now, time.Minute))
		second = len(calls.Recent(token, now, time.Second))
		calls.Record(token, now)
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
