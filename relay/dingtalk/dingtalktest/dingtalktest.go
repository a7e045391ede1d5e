// Package dingtalktest is a DingTalk custom-robot server for tests and load
// runs. It enforces what DingTalk enforces: a known access token, a valid
// signature within an hour of its clock, the robot's keyword, the
// 20000-byte body limit and 20 messages per minute per robot (then 130101
// for 10 minutes). It drops repeats of a msgUuid, records what it accepted,
// and can be told to fail (notifytest's faults).
package dingtalktest

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
)

// Robot configures one robot the server knows.
type Robot struct {
	Token   string
	Secret  string // SEC secret; empty when the robot does not sign
	Keyword string // custom keyword; empty when none
}

// Message is a message the server accepted.
type Message struct {
	Token    string
	MsgType  string
	Title    string
	Text     string
	UUID     string
	AtMobile []string
	// Pinged are the mobiles DingTalk would notify: in at.atMobiles and
	// written as @mobile in the text.
	Pinged   []string
	AtAll    bool
	Received time.Time
	Body     []byte
}

// Reply is a scripted answer.
type Reply struct {
	Status  int // HTTP status; 0 means 200
	ErrCode int
	ErrMsg  string
}

// Limits DingTalk applies.
const (
	MaxBody       = 20000
	PerMinute     = 20
	BanDuration   = 10 * time.Minute
	SignatureSkew = time.Hour
)

// Server is a fake DingTalk robot API. Use it as an http.Handler (with
// Start) or through Transport for tests without sockets; the embedded
// Double injects faults (all four kinds) and counts requests, and
// MaxInWindow counts accepted messages per token.
type Server struct {
	*notifytest.Double

	script notifytest.Script[Reply]

	mu       sync.Mutex
	robots   map[string]Robot
	banned   map[string]time.Time // per token, ban end
	uuids    map[string]bool
	messages []Message
	replies  map[int]int // errcode -> count of answers with it
}

// New returns a server that knows the given robots.
func New(robots ...Robot) *Server {
	s := &Server{
		robots:  map[string]Robot{},
		banned:  map[string]time.Time{},
		uuids:   map[string]bool{},
		replies: map[int]int{},
	}
	s.Double = notifytest.New(s.answer)
	for _, r := range robots {
		s.robots[r.Token] = r
	}
	return s
}

// Start serves s on a loopback port until the test ends.
func (s *Server) Start(t interface{ Cleanup(func()) }) *httptest.Server {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// Script queues answers for the next requests to token, before any check.
func (s *Server) Script(token string, replies ...Reply) {
	s.script.Add(token, replies...)
}

// Messages returns the accepted messages, of one token or of all when
// token is "".
func (s *Server) Messages(token string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if token == "" || m.Token == token {
			out = append(out, m)
		}
	}
	return out
}

// Replies returns how many answers carried errcode code.
func (s *Server) Replies(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replies[code]
}

// answer is DingTalk's JSON reply to r.
func (s *Server) answer(r *http.Request, clock func() time.Time, calls *notifytest.Calls) notifytest.Answer {
	status, code, msg := s.handle(r, clock, calls)
	body, _ := json.Marshal(map[string]any{"errcode": code, "errmsg": msg})
	return notifytest.Answer{Status: status, Body: body}
}

type sendBody struct {
	MsgType  string `json:"msgtype"`
	Markdown *struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
	ActionCard *struct {
		Title     string `json:"title"`
		Text      string `json:"text"`
		SingleURL string `json:"singleURL"`
		Buttons   []struct {
			Title     string `json:"title"`
			ActionURL string `json:"actionURL"`
		} `json:"btns"`
	} `json:"actionCard"`
	Text *struct {
		Content string `json:"content"`
	} `json:"text"`
	At *struct {
		AtMobiles []string `json:"atMobiles"`
		IsAtAll   bool     `json:"isAtAll"`
	} `json:"at"`
	MsgUUID string `json:"msgUuid"`
}

// handle checks a request the way DingTalk does and returns the answer.
func (s *Server) handle(r *http.Request, clock func() time.Time, calls *notifytest.Calls) (status, code int, msg string) {
	defer func() {
		s.mu.Lock()
		s.replies[code]++
		s.mu.Unlock()
	}()
	q := r.URL.Query()
	token := q.Get("access_token")
	if reply, ok := s.script.Next(token); ok {
		return reply.Status, reply.ErrCode, reply.ErrMsg
	}
	s.mu.Lock()
	robot, ok := s.robots[token]
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		return http.StatusOK, 40035, "缺少参数 json"
	}
	if token == "" {
		return http.StatusOK, 40035, "缺少参数 access_token"
	}
	if !ok {
		return http.StatusOK, 300001, "token is not exist"
	}
	now := clock()
	if robot.Secret != "" {
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil {
			return http.StatusOK, 310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
		}
		if d := now.Sub(time.UnixMilli(ts)); d > SignatureSkew || d < -SignatureSkew {
			return http.StatusOK, 310000, "invalid timestamp"
		}
		want := dingtalk.Sign(robot.Secret, ts)
		if !hmac.Equal([]byte(q.Get("sign")), []byte(want)) {
			return http.StatusOK, 310000, "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中，签名是否正确"
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return http.StatusBadRequest, 40035, "缺少参数 json"
	}
	if len(body) > MaxBody {
		return http.StatusOK, 460101, "message too long, exceed 20000 bytes"
	}
	var m sendBody
	if err := json.Unmarshal(body, &m); err != nil {
		return http.StatusOK, 40035, "缺少参数 json"
	}
	var title, content string
	switch m.MsgType {
	case "markdown":
		if m.Markdown == nil || m.Markdown.Title == "" || m.Markdown.Text == "" {
			return http.StatusOK, 40035, "缺少参数 markdown"
		}
		title, content = m.Markdown.Title, m.Markdown.Text
	case "actionCard":
		if m.ActionCard == nil || m.ActionCard.Title == "" || m.ActionCard.Text == "" || (m.ActionCard.SingleURL == "") == (len(m.ActionCard.Buttons) == 0) {
			return http.StatusOK, 40035, "缺少参数 actionCard"
		}
		for _, b := range m.ActionCard.Buttons {
			if b.Title == "" || b.ActionURL == "" {
				return http.StatusOK, 40035, "缺少参数 actionCard.btns"
			}
		}
		title, content = m.ActionCard.Title, m.ActionCard.Text
	case "text":
		if m.Text == nil || m.Text.Content == "" {
			return http.StatusOK, 40035, "缺少参数 text"
		}
		content = m.Text.Content
	default:
		return http.StatusOK, 400105, "不支持的消息类型"
	}
	if robot.Keyword != "" && !strings.Contains(title, robot.Keyword) && !strings.Contains(content, robot.Keyword) {
		return http.StatusOK, 310000, "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if m.MsgUUID != "" && s.uuids[m.MsgUUID] {
		return http.StatusOK, 0, "ok"
	}
	if until, ok := s.banned[token]; ok && now.Before(until) {
		return http.StatusOK, 130101, "send too fast, exceed 20 times per minute"
	}
	if len(calls.Recent(token, now, time.Minute)) >= PerMinute {
		s.banned[token] = now.Add(BanDuration)
		return http.StatusOK, 130101, "send too fast, exceed 20 times per minute"
	}
	calls.Record(token, now)
	if m.MsgUUID != "" {
		s.uuids[m.MsgUUID] = true
	}
	msg2 := Message{Token: token, MsgType: m.MsgType, Title: title, Text: content, UUID: m.MsgUUID, Received: now, Body: body}
	if m.At != nil {
		msg2.AtMobile = m.At.AtMobiles
		msg2.AtAll = m.At.IsAtAll
		for _, mob := range m.At.AtMobiles {
			if strings.Contains(content, "@"+mob) {
				msg2.Pinged = append(msg2.Pinged, mob)
			}
		}
	}
	s.messages = append(s.messages, msg2)
	return http.StatusOK, 0, "ok"
}

// digestLineRE matches a digest line "N. … ×COUNT …".
var digestLineRE = regexp.MustCompile(`^\d+\. .*×(\d+)`)

// Tally counts, per marker found by re in a message text, the alerts the
// message carries: N for each digest line "… ×N", 1 for a full card.
func Tally(text string, re *regexp.Regexp) map[string]int {
	out := map[string]int{}
	card := ""
	for _, line := range strings.Split(text, "\n") {
		marker := re.FindString(line)
		if marker == "" {
			continue
		}
		if m := digestLineRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			out[marker] += n
		} else if card == "" {
			card = marker
		}
	}
	if len(out) == 0 && card != "" {
		out[card] = 1
	}
	return out
}

// Count returns how many alerts whose title contains marker the accepted
// messages carry: 1 for each full card, N for each digest line "… ×N".
func (s *Server) Count(marker string) int {
	total := 0
	for _, m := range s.Messages("") {
		total += CountIn(m.Text, marker)
	}
	return total
}

// CountIn counts the alerts with marker in their title that text carries.
func CountIn(text, marker string) int {
	total, card := 0, false
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		if m := digestLineRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		} else {
			card = true
		}
	}
	if total == 0 && card {
		return 1
	}
	return total
}

// String summarizes the server's state for test failure messages.
func (s *Server) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("dingtalktest: %d requests, %d messages, replies %v", s.Requests(), len(s.messages), s.replies)
}
