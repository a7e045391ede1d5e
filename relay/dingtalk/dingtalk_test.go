package dingtalk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
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
	return srv, &dingtalk.Client{HTTP: dingtalk.NewHTTPClient()}, ts.URL + "/robot/send"
}

func TestNotifyOutcomes(t *testing.T) {
	for _, c := range []struct {
		name      string
		server    dingtalktest.Robot
		robot     dingtalk.Robot
		keyword   string
		script    []dingtalktest.Reply
		fault     dingtalktest.Fault
		wantCode  int
		wantClass dingtalk.Class
		wantRetry bool
		ok        bool
	}{
		{name: "signed", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token, Secret: secret}, ok: true},
		{name: "keyword", server: dingtalktest.Robot{Token: token, Keyword: "SentryOps"}, robot: dingtalk.Robot{Token: token}, keyword: "SentryOps", ok: true},
		{name: "missing keyword", server: dingtalktest.Robot{Token: token, Keyword: "SentryOps"}, robot: dingtalk.Robot{Token: token}, wantCode: 310000, wantClass: dingtalk.ClassConfig},
		{name: "wrong secret", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token, Secret: "SECwrongwrongwrong"}, wantCode: 310000, wantClass: dingtalk.ClassConfig},
		{name: "no secret for a signing robot", server: dingtalktest.Robot{Token: token, Secret: secret}, robot: dingtalk.Robot{Token: token}, wantCode: 310000, wantClass: dingtalk.ClassConfig},
		{name: "unknown token", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: "ffffffffffffffff"}, wantCode: 300001, wantClass: dingtalk.ClassConfig},
		{name: "busy", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: -1, ErrMsg: "系统繁忙"}}, wantCode: -1, wantClass: dingtalk.ClassTransient, wantRetry: true},
		{name: "throttled", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 130101, ErrMsg: "send too fast"}}, wantCode: 130101, wantClass: dingtalk.ClassRateLimited, wantRetry: true},
		{name: "throttled, new code", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{Status: 400, ErrCode: 410100, ErrMsg: "发送速度太快而限流"}}, wantCode: 410100, wantClass: dingtalk.ClassRateLimited, wantRetry: true},
		{name: "too long", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 460101}}, wantCode: 460101, wantClass: dingtalk.ClassContent},
		{name: "unsafe link", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{Status: 400, ErrCode: 430101}}, wantCode: 430101, wantClass: dingtalk.ClassContent},
		{name: "robot disabled", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, script: []dingtalktest.Reply{{ErrCode: 400102}}, wantCode: 400102, wantClass: dingtalk.ClassConfig},
		{name: "gateway 502", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, fault: dingtalktest.FaultBadGateway, wantClass: dingtalk.ClassTransient, wantRetry: true},
		{name: "connection reset", server: dingtalktest.Robot{Token: token}, robot: dingtalk.Robot{Token: token}, fault: dingtalktest.FaultReset, wantClass: dingtalk.ClassTransient, wantRetry: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, client, endpoint := setup(t, c.server)
			srv.Script(c.robot.Token, c.script...)
			if c.fault != 0 {
				srv.Faults(c.fault, 1)
			}
			robot := c.robot
			robot.Name, robot.URL = "robot-1", endpoint
			retry, err := client.Notify(context.Background(), robot, card(c.keyword))
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
			if e.Code != c.wantCode || e.Class != c.wantClass || retry != c.wantRetry {
				t.Errorf("code %d class %v retry %v, want %d %v %v (err %v)", e.Code, e.Class, retry, c.wantCode, c.wantClass, c.wantRetry, err)
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
	if _, err := client.Notify(context.Background(), robot, card("")); err != nil {
		t.Fatal(err)
	}
	// Two hours later a cached signature would be refused as stale; the
	// server's clock moves with ours.
	now = now.Add(2 * time.Hour)
	srv.Now = func() time.Time { return now }
	if _, err := client.Notify(context.Background(), robot, card("")); err != nil {
		t.Fatalf("second send two hours later: %v", err)
	}
	// A clock an hour and a half off is refused.
	client.Now = func() time.Time { return now.Add(-90 * time.Minute) }
	_, err := client.Notify(context.Background(), robot, card(""))
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
		if _, err := client.Notify(context.Background(), robot, card("")); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	_, err := client.Notify(context.Background(), robot, card(""))
	var e *dingtalk.Error
	if !errors.As(err, &e) || e.Code != 130101 {
		t.Fatalf("21st send in a minute: %v, want 130101", err)
	}
	// Banned for 10 minutes, even once the minute has passed.
	now = now.Add(5 * time.Minute)
	if _, err := client.Notify(context.Background(), robot, card("")); !errors.As(err, &e) || e.Code != 130101 {
		t.Fatalf("during the ban: %v", err)
	}
	now = now.Add(6 * time.Minute)
	if _, err := client.Notify(context.Background(), robot, card("")); err != nil {
		t.Fatalf("after the ban: %v", err)
	}
}

func TestDoubleRejectsOversizedBody(t *testing.T) {
	srv, client, endpoint := setup(t, dingtalktest.Robot{Token: token})
	robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: endpoint}
	msg := formatter.Message{MsgType: "markdown", Markdown: &formatter.Markdown{Title: "t", Text: strings.Repeat("长", 7000)}}
	_, err := client.Notify(context.Background(), robot, msg)
	var e *dingtalk.Error
	if !errors.As(err, &e) || e.Code != 460101 || e.Class != dingtalk.ClassContent {
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
		if _, err := client.Notify(context.Background(), robot, msg); err != nil {
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
		class  dingtalk.Class
		hint   string
	}{
		{"200 html", 200, "<html>proxy</html>", dingtalk.ClassTransient, "retried"},
		{"503", 503, "", dingtalk.ClassTransient, "retried"},
		{"404", 404, "not found", dingtalk.ClassConfig, "DINGTALK_API_URL"},
		{"403 proxy", 403, "denied", dingtalk.ClassConfig, "proxy"},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		client := &dingtalk.Client{HTTP: dingtalk.NewHTTPClient()}
		robot := dingtalk.Robot{Name: "robot-1", Token: token, URL: ts.URL}
		_, err := client.Notify(context.Background(), robot, card(""))
		ts.Close()
		var e *dingtalk.Error
		if !errors.As(err, &e) || e.Class != c.class {
			t.Errorf("%s: %v, want class %v", c.name, err, c.class)
			continue
		}
		if h := dingtalk.Hint(err, robot); !strings.Contains(h, c.hint) {
			t.Errorf("%s: hint %q, want it to mention %q", c.name, h, c.hint)
		}
	}
}

func TestNetworkErrorsNeverLeakToken(t *testing.T) {
	client := &dingtalk.Client{HTTP: dingtalk.NewHTTPClient()}
	// A closed port: connection refused, with the URL in net/http's error.
	ts := httptest.NewServer(http.NotFoundHandler())
	addr := ts.URL
	ts.Close()
	robot := dingtalk.Robot{Name: "robot-1", Token: token, Secret: secret, URL: addr + "/robot/send"}
	_, err := client.Notify(context.Background(), robot, card(""))
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
	client := &dingtalk.Client{HTTP: dingtalk.NewHTTPClient()}
	_, err := client.Notify(context.Background(), dingtalk.Robot{Name: "r", Token: token, URL: ts.URL}, card(""))
	if err == nil || leaked {
		t.Errorf("redirect followed (err %v, token leaked %v)", err, leaked)
	}
}

func TestHints(t *testing.T) {
	signing := dingtalk.Robot{Name: "robot-3", Token: token, Secret: secret, Line: 3}
	plain := dingtalk.Robot{Name: "robot-2", Token: token, Line: 2}
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
	for code, want := range map[int]dingtalk.Class{
		-1: dingtalk.ClassTransient, 130101: dingtalk.ClassRateLimited, 410100: dingtalk.ClassRateLimited,
		310000: dingtalk.ClassConfig, 300001: dingtalk.ClassConfig, 300005: dingtalk.ClassConfig,
		400101: dingtalk.ClassConfig, 400106: dingtalk.ClassConfig, 460101: dingtalk.ClassContent,
		101002: dingtalk.ClassContent, 430101: dingtalk.ClassContent, 430104: dingtalk.ClassContent,
		12345: dingtalk.ClassConfig,
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
