package dingtalk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
)

const (
	token  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	secret = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
)

func TestSignMatchesReferenceVector(t *testing.T) {
	// Computed with DingTalk's documented algorithm (shared/reference/dingtalk.md).
	got := dingtalk.Sign("SEC0123456789abcdef", 1700000000000)
	if want := "TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if enc := url.QueryEscape(got); enc != "TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D" {
		t.Errorf("URL-encoded once = %q", enc)
	}
}

func card(keyword string) formatter.Message {
	r := &formatter.Renderer{Keyword: keyword}
	msg, _ := r.Card(formatter.Alert{Resource: "event_alert", Action: "triggered", Title: "boom", Project: "api", Level: "error", Link: "https://sentry.example.com/issues/1/"}, formatter.Mentions{Mobiles: []string{"13800000000"}})
	return msg
}

func setup(t *testing.T, robots ...dingtalktest.Robot) (*dingtalktest.Server, *dingtalk.Client, string) {
	srv := dingtalktest.New(robots...)
	ts := srv.Start(t)
	return srv, &dingtalk.Client{HTTP: notify.NewHTTPClient()}, ts.URL + "/robot/send"
}

func TestNotifyOutcomes(t *testing.T) {
	for _, c := range []struct {
		name        string
		server      dingtalktest.Robot
		robot       dingtalk.Robot
		keyword     string
		script      []dingtalktest.Reply
		fault       notifytest.Fault
		wantCode    int
		wantVerdict notify.Verdict
		wantRetry   bool
		ok          bool
	}{
		{name: "signed", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token, Secret: secret}, ok: true},
		{name: "keyword", server: dingtalktest.Robot{Token: token, Keyword: "SentryOps"}, robot: dingtalk.Robot{Token: token}, keyword: "SentryOps", ok: true},
		{name: "missing keyword", server: dingtalktest.Robot{Token: token, Keyword: "SentryOps"}, robot: dingtalk.Robot{Token: token}, wantCode: 310000, wantVerdict: notify.Refused},
		{name: "wrong secret", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token, Secret: "SECwrongwrongwrong"}, wantCode: 310000, wantVerdict: notify.Refused},
		{name: "no secret for a signing robot", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token}, wantCode: 310000, wantVerdict: notify.Refused},
		{name: "unknown token", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: "ffffffffffffffff"}, wantCode: 300001, wantVerdict: notify.Refused},
		{name: "busy", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: -1, ErrMsg: "系统繁忙"}}, wantCode: -1, wantVerdict: notify.Retry, wantRetry: true},
		{name: "throttled", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 130101, ErrMsg: "send too fast"}}, wantCode: 130101, wantVerdict: notify.Throttled, wantRetry: true},
		{name: "throttled, new code", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{Status: 400, ErrCode: 410100, ErrMsg: "发送速度太快而限流"}}, wantCode: 410100, wantVerdict: notify.Throttled, wantRetry: true},
		{name: "too long", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 460101}}, wantCode: 460101, wantVerdict: notify.Content},
		{name: "unsafe link", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{Status: 400, ErrCode: 430101}}, wantCode: 430101, wantVerdict: notify.Content},
		{name: "robot disabled", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 400102}}, wantCode: 400102, wantVerdict: notify.Refused},
		{name: "gateway 502", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, fault: notifytest.FaultBadGateway, wantVerdict: notify.Retry, wantRetry: true},
		{name: "connection reset", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, fault: notifytest.FaultReset, wantVerdict: notify.Retry, wantRetry: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, client, endpoint := setup(t, c.server)
			srv.Script(c.robot.Token, c.script...)
			if c.fault != 0 {
				srv.FaultShare(c.fault, 1)
			}
			robot := c.robot
			robot.Name, robot.URL = "robot-1", endpoint
			err := client.Send(context.Background(), robot, card(c.keyword).JSON())
			if c.ok {
				if err != nil {
					t.Fatalf("Notify: %v", err)
				}
				if n := len(srv.Messages(token)); n != 1 {
					t.Errorf("server accepted %d messages, want 1", n)
				}
				return
			}
			var e *dingtalk.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *dingtalk.Error", err, err)
			}
			retry := e.Verdict == notify.Retry || e.Verdict == notify.Throttled
			if e.Code != c.wantCode || e.Verdict != c.wantVerdict || retry != c.wantRetry {
				t.Errorf("code %d verdict %v retry %v, want %d %v %v (err %v)", e.Code, e.Verdict, retry, c.wantCode, c.wantVerdict, c.wantRetry, err)
			}
			for _, s := range []string{token, secret, robot.Secret} {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
			if dingtalk.Hint(err, robot) == "" {
				t.Errorf("no hint for %v", err)
			}
		})
	}
}

func TestSignatureIsFreshPerRequest(t *testing.T) {
	srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token, Secret: secret})
	now := time.Now()
	client.Now = func() time.Time { return now }
	robot := dingtalk.Robot{Name: "robot-1", Token: token, Secret: secret, URL: endpoint}
	if err := client.Send(context.Background(), robot, card("").JSON()); err != nil {
		t.Fatal(err)
	}
	// Two hours later a cached signature would be refused as stale; the
	// server's clock moves with ours.
	now = now.Add(2 * time.Hour)
	srv.Now = func() time.Time { return now }
	if err := client.Send(context.Background(), robot, card("").JSON()); err != nil {
		t.Fatalf("second send two hours later: %v", err)
	}
	// A clock an hour and a half off is refused.
	client.Now = func() time.Time { return now.Add(-90 * time.Minute) }
	err := client.Send(context.Background(), robot, card("").JSON())
	var e *dingtalk.Error
	if !errors.As(err, &e) || e.Code != 310000 || !strings.Contains(dingtalk.Hint(err, robot), "clock") {
		t.Errorf("skewed clock: err %v hint %q", err, dingtalk.Hint(err, robot))
	}
}

func TestDoubleEnforcesRateAndBan(t *testing.T) {
	srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token})
	now := time.Unix(1_700_000_000, 0)
	srv.Now = func() time.Time { return now }
	robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: endpoint}
	for i := range 20 {
		if err := client.Send(context.Background(), robot, card("").JSON()); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	err := client.Send(context.Background(), robot, card("").JSON())
	var e *dingtalk.Error
	if !errors.As(err, &e) || e.Code != 130101 {
		t.Fatalf("21st send in a minute: %v, want 130101", err)
	}
	// Banned for 10 minutes, even once the minute has passed.
	now = now.Add(5 * time.Minute)
	if err := client.Send(context.Background(), robot, card("").JSON()); !errors.As(err, &e) || e.Code != 130101 {
		t.Fatalf("during the ban: %v", err)
	}
	now = now.Add(6 * time.Minute)
	if err := client.Send(context.Background(), robot, card("").JSON()); err != nil {
		t.Fatalf("after the ban: %v", err)
	}
}

func TestDoubleRejectsOversizedBody(t *testing.T) {
	srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token})
	robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: endpoint}
	msg := formatter.Message{MsgType: "markdown", Markdown: &formatter.Markdown{Title: "t", Text: strings.Repeat("长", 7000)}}
	err := client.Send(context.Background(), robot, msg.JSON())
	var e *dingtalk.Error
	if !errors.As(err, &e) || e.Code != 460101 || e.Verdict != notify.Content {
		t.Fatalf("21000-byte body: %v", err)
	}
	if len(srv.Messages("")) != 0 {
		t.Error("oversized message accepted")
	}
}

func TestDoubleDropsRepeatedUUID(t *testing.T) {
	srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token})
	robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: endpoint}
	msg := card("")
	msg.MsgUUID = "same"
	for range 3 {
		if err := client.Send(context.Background(), robot, msg.JSON()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Messages(token)); n != 1 {
		t.Errorf("%d messages for one msgUuid, want 1", n)
	}
}

func TestUnreadableReplies(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		class  notify.Verdict
		hint   string
	}{
		{"200 html", 200, "<html>proxy</html>", notify.Retry, "retries such sends by itself"},
		{"503", 503, "", notify.Retry, "retries such sends by itself"},
		{"404", 404, "not found", notify.Refused, "DINGTALK_API_URL"},
		{"403 proxy", 403, "denied", notify.Refused, "proxy"},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		client := &dingtalk.Client{HTTP: notify.NewHTTPClient()}
		robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: ts.URL}
		err := client.Send(context.Background(), robot, card("").JSON())
		ts.Close()
		var e *dingtalk.Error
		if !errors.As(err, &e) || e.Verdict != c.class {
			t.Errorf("%s: %v, want class %v", c.name, err, c.class)
			continue
		}
		if h := dingtalk.Hint(err, robot); !strings.Contains(h, c.hint) {
			t.Errorf("%s: hint %q, want it to mention %q", c.name, h, c.hint)
		}
	}
}

func TestNetworkErrorsNeverLeakToken(t *testing.T) {
	client := &dingtalk.Client{HTTP: notify.NewHTTPClient()}
	// A closed port: connection refused, with the URL in net/http's error.
	ts := httptest.NewServer(http.NotFoundHandler())
	addr := ts.URL
	ts.Close()
	robot := dingtalk.Robot{Name: "robot-1", Token: token, Secret: secret, URL: addr + "/robot/send"}
	err := client.Send(context.Background(), robot, card("").JSON())
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "sign=") {
		t.Errorf("error leaks the token or signature: %v", err)
	}
	if !strings.Contains(err.Error(), dingtalk.Mask(token)) {
		t.Errorf("error should name the robot by its masked token: %v", err)
	}
	if h := dingtalk.Hint(err, robot); !strings.Contains(h, "refused") {
		t.Errorf("hint %q", h)
	}
}

func TestNoRedirects(t *testing.T) {
	var leaked bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = strings.Contains(r.URL.RawQuery, token)
	}))
	defer other.Close()
	ts := httptest.NewServer(http.RedirectHandler(other.URL+"/steal", http.StatusTemporaryRedirect))
	defer ts.Close()
	client := &dingtalk.Client{HTTP: notify.NewHTTPClient()}
	err := client.Send(context.Background(), dingtalk.Robot{Name: "r", Token: token, URL: ts.URL}, card("").JSON())
	if err == nil || leaked {
		t.Errorf("redirect followed (err %v, token leaked %v)", err, leaked)
	}
}

func TestHints(t *testing.T) {
	signing := dingtalk.Robot{Name: "robot-3", Token: token, Secret: secret, Where: "DINGTALK_TOKENS line 3", SecretWhere: "DINGTALK_SECRETS line 3"}
	plain := dingtalk.Robot{Name: "robot-2", Token: token, Where: "DINGTALK_TOKENS line 2", SecretWhere: "DINGTALK_SECRETS line 2"}
	named := dingtalk.Robot{Name: "ops", Token: token}
	for _, c := range []struct {
		robot dingtalk.Robot
		err   *dingtalk.Error
		want  string
	}{
		{plain, &dingtalk.Error{Code: 310000, Message: "keywords not in content"}, "set DINGTALK_KEYWORD"},
		{signing, &dingtalk.Error{Code: 310000, Message: "sign not match"}, "DINGTALK_SECRETS line 3 does not belong to DINGTALK_TOKENS line 3"},
		{signing, &dingtalk.Error{Code: 310000, Message: "description:机器人发送签名不匹配;solution:..."}, "DINGTALK_SECRETS line 3"},
		{plain, &dingtalk.Error{Code: 310000, Message: "sign not match"}, "put its SEC secret on DINGTALK_SECRETS line 2"},
		{plain, &dingtalk.Error{Code: 310000, Message: "description:ip 不在白名单中;solution:..."}, "IP whitelist"},
		{plain, &dingtalk.Error{Code: 310000, Message: "something new"}, "keyword"},
		{plain, &dingtalk.Error{Code: 300001, Message: "token is not exist"}, "token does not exist: was the robot removed?"},
		{named, &dingtalk.Error{Code: 300001}, "robot ops in the routes file"},
		{plain, &dingtalk.Error{Code: 300005}, "external"},
		{plain, &dingtalk.Error{Code: 130101}, "10 minutes"},
		{plain, &dingtalk.Error{Code: 460101}, "20000"},
		{plain, &dingtalk.Error{Code: 400102}, "disabled"},
		{plain, &dingtalk.Error{Code: 999999}, "undocumented"},
	} {
		if got := dingtalk.Hint(c.err, c.robot); !strings.Contains(got, c.want) {
			t.Errorf("Hint(%d %q) = %q, want it to contain %q", c.err.Code, c.err.Message, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for code, want := range map[int]notify.Verdict{
		-1: notify.Retry, 130101: notify.Throttled, 410100: notify.Throttled,
		310000: notify.Refused, 300001: notify.Refused, 300005: notify.Refused,
		400101: notify.Refused, 400106: notify.Refused, 460101: notify.Content,
		101002: notify.Content, 430101: notify.Content, 430104: notify.Content,
		12345: notify.Refused,
	} {
		if got := dingtalk.Classify(code); got != want {
			t.Errorf("Classify(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := dingtalk.RedactURL("https://oapi.dingtalk.com/robot/send?access_token=" + token + "&timestamp=1&sign=abc")
	if strings.Contains(got, token) || strings.Contains(got, "sign") || !strings.Contains(got, "access_token=…cdef") {
		t.Errorf("RedactURL = %q", got)
	}
}

// TestRepliesAreScrubbedOfSecrets: a gateway in front of DingTalk (or
// DingTalk itself) may quote the request line back, access token and
// signature included; nothing of it may reach an error, a log or a dead
// letter.
func TestRepliesAreScrubbedOfSecrets(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault notifytest.Fault
		reply *dingtalktest.Reply
	}{
		{name: "gateway echoes the request line", fault: notifytest.FaultEcho},
		{name: "errmsg quotes the token and secret", reply: &dingtalktest.Reply{ErrCode: 310000, ErrMsg: "sign not match for access_token=" + token + " secret " + secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token, Secret: secret})
			if c.fault != 0 {
				srv.FaultShare(c.fault, 1)
			}
			if c.reply != nil {
				srv.Script(token, *c.reply)
			}
			robot := dingtalk.Robot{Name: "robot-1", Token: token, Secret: secret, URL: endpoint}
			rcv := dingtalk.NewReceiver(robot, formatter.Renderer{}, client)
			err := rcv.Notify(context.Background(), card(""), "k")
			if err == nil {
				t.Fatal("the echoing reply was taken for a success")
			}
			_, ne := notify.VerdictOf(err)
			texts := []string{err.Error(), dingtalk.Hint(err, robot), fmt.Sprint(ne.Err), ne.Detail}
			for _, text := range texts {
				for _, s := range []string{token, secret, url.QueryEscape(secret)} {
					if strings.Contains(text, s) {
						t.Errorf("%q holds a secret", text)
					}
				}
				if strings.Contains(text, "sign=") && !strings.Contains(text, "sign=…") {
					t.Errorf("%q holds the signature", text)
				}
			}
			if !strings.Contains(strings.Join(texts, " "), dingtalk.Mask(token)) {
				t.Errorf("the scrubbed text no longer tells which robot: %q", texts)
			}
		})
	}
}

func TestReceiverVerdicts(t *testing.T) {
	for _, c := range []struct {
		reply   dingtalktest.Reply
		verdict notify.Verdict
		code    string
		wait    time.Duration
	}{
		{dingtalktest.Reply{ErrCode: 130101, ErrMsg: "send too fast"}, notify.Throttled, "130101", dingtalk.ParkFor},
		{dingtalktest.Reply{ErrCode: 310000, ErrMsg: "keywords not in content"}, notify.Refused, "310000", 0},
		{dingtalktest.Reply{ErrCode: 460101}, notify.Content, "460101", 0},
		{dingtalktest.Reply{ErrCode: -1}, notify.Retry, "-1", 0},
	} {
		srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token})
		srv.Script(token, c.reply)
		rcv := dingtalk.NewReceiver(dingtalk.Robot{Name: "robot-1", Token: token, URL: endpoint}, formatter.Renderer{}, client)
		err := rcv.Notify(context.Background(), card(""), "k")
		v, ne := notify.VerdictOf(err)
		if ne == nil || v != c.verdict || ne.Code != c.code || ne.Wait != c.wait || ne.Hint == "" {
			t.Errorf("reply %+v: %v (%+v), want verdict %v code %s wait %v and a hint", c.reply, err, ne, c.verdict, c.code, c.wait)
		}
	}
}
