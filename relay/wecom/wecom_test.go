package wecom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom/wecomtest"
)

const key = "693a91f6-7a3c-4bc4-97a0-0ec2f1a5c0de"

func alert() formatter.Alert {
	return formatter.Alert{Resource: "event_alert", Action: "triggered", Title: "boom", Project: "api", Environment: "production",
		Level: "error", Link: "https://sentry.example.com/organizations/acme/issues/1/", IssueID: "1",
		Time: time.Date(2026, 11, 30, 8, 0, 3, 0, time.UTC)}
}

// setup starts a double that knows key and returns a receiver sending to it.
func setup(t *testing.T) (*wecomtest.Server, *wecom.Receiver) {
	t.Helper()
	srv := wecomtest.New(key)
	endpoint := srv.Start(t)
	r, err := wecom.New(wecom.Config{Key: key, APIURL: endpoint}, wecom.Options{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	return srv, r
}

func send(t *testing.T, r *wecom.Receiver, it formatter.Item) error {
	t.Helper()
	msg, err := r.Card(it)
	if err != nil {
		t.Fatal(err)
	}
	return r.Notify(context.Background(), msg, "k")
}

func TestNewValidatesConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  wecom.Config
		want string // error text; "" means valid
	}{
		{"url", wecom.Config{URL: wecom.DefaultURL + "?key=" + key}, ""},
		{"key", wecom.Config{Key: key}, ""},
		{"key file", wecom.Config{KeyFile: keyFile}, ""},
		{"key and api_url", wecom.Config{Key: key, APIURL: "http://127.0.0.1:9/cgi-bin/webhook/send"}, ""},
		{"nothing", wecom.Config{}, "url, key, key_file: set exactly one"},
		{"url and key", wecom.Config{URL: wecom.DefaultURL + "?key=" + key, Key: key}, "set exactly one"},
		{"url without key", wecom.Config{URL: wecom.DefaultURL}, "url: not a WeCom webhook URL"},
		{"DingTalk url", wecom.Config{URL: "https://oapi.dingtalk.com/robot/send?access_token=" + key}, "url: not a WeCom webhook URL"},
		{"not a url", wecom.Config{URL: "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + key}, "url: not a WeCom webhook URL"},
		{"bad key", wecom.Config{Key: "has space " + key}, `key: "…c0de" is not a WeCom webhook key`},
		{"missing key file", wecom.Config{KeyFile: filepath.Join(dir, "none")}, "key_file: "},
		{"api_url with query", wecom.Config{Key: key, APIURL: wecom.DefaultURL + "?key=" + key}, "api_url: not an http(s) URL without query"},
		{"api_url not http", wecom.Config{Key: key, APIURL: "ftp://example.com/send"}, "api_url: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := wecom.New(c.cfg, wecom.Options{Name: "ops"})
			if c.want == "" {
				if err != nil || r == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), key[:len(key)-4]) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestIdentityIsTheKey(t *testing.T) {
	byURL, _ := wecom.New(wecom.Config{URL: wecom.DefaultURL + "?key=" + key}, wecom.Options{})
	byKey, _ := wecom.New(wecom.Config{Key: key, APIURL: "http://gateway.example/cgi-bin/webhook/send"}, wecom.Options{})
	other, _ := wecom.New(wecom.Config{Key: "0" + key[1:]}, wecom.Options{})
	if byURL.Identity() != byKey.Identity() {
		t.Errorf("one robot, two identities: %q %q", byURL.Identity(), byKey.Identity())
	}
	if byURL.Identity() == other.Identity() {
		t.Error("two robots, one identity")
	}
}

func TestNotifyDelivers(t *testing.T) {
	srv, r := setup(t)
	for _, c := range []struct {
		name     string
		mentions formatter.Mentions
		msgType  string
		check    func(wecomtest.Message) bool
	}{
		{"markdown", formatter.Mentions{}, "markdown", func(m wecomtest.Message) bool {
			return strings.Contains(m.Content, "[boom](https://sentry.example.com/organizations/acme/issues/1/)")
		}},
		{"user ids in markdown", formatter.Mentions{UserIDs: []string{"zhangsan"}}, "markdown", func(m wecomtest.Message) bool {
			return strings.HasSuffix(m.Content, "<@zhangsan>")
		}},
		{"mobiles as text", formatter.Mentions{Mobiles: []string{"13800000000"}, UserIDs: []string{"lisi"}}, "text", func(m wecomtest.Message) bool {
			return strings.Join(m.MentionedMobileList, ",") == "13800000000" && strings.Join(m.MentionedList, ",") == "lisi" &&
				strings.Contains(m.Content, "https://sentry.example.com/organizations/acme/issues/1/")
		}},
		{"all as text", formatter.Mentions{All: true}, "text", func(m wecomtest.Message) bool {
			return strings.Join(m.MentionedList, ",") == "@all"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Messages())
			if err := send(t, r, formatter.Item{Alert: alert(), Mentions: c.mentions}); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("double accepted %d messages, want 1", len(msgs)-before)
			}
			if m := msgs[len(msgs)-1]; m.MsgType != c.msgType || !c.check(m) {
				t.Errorf("accepted %s message:\n%s\nmentioned %v %v", m.MsgType, m.Content, m.MentionedList, m.MentionedMobileList)
			}
		})
	}
}

func TestErrcodes(t *testing.T) {
	for _, c := range []struct {
		code    int
		verdict notify.Verdict
		wait    time.Duration
		hint    string
	}{
		{-1, notify.Retry, 0, "busy"},
		{45009, notify.Throttled, time.Minute, "20 messages a minute"},
		{93000, notify.Refused, 0, "url (or key, key_file) of receiver ops"},
		{40058, notify.Content, 0, "4096"},
		{45002, notify.Content, 0, "minimal"},
		{40033, notify.Content, 0, "characters"},
		{40008, notify.Content, 0, "message type"},
		{48002, notify.Refused, 0, "errcode 48002"},
	} {
		t.Run(c.hint, func(t *testing.T) {
			srv, r := setup(t)
			srv.Script(wecomtest.Reply{ErrCode: c.code, ErrMsg: "scripted"})
			err := send(t, r, formatter.Item{Alert: alert()})
			v, e := notify.VerdictOf(err)
			if e == nil {
				t.Fatalf("err = %v (%T), want *notify.Error", err, err)
			}
			if v != c.verdict || e.Code != strconv.Itoa(c.code) || e.Wait != c.wait || e.Receiver != "ops" || e.Detail != "scripted" {
				t.Errorf("got %v code %s wait %v receiver %s detail %q, want %v %d %v", v, e.Code, e.Wait, e.Receiver, e.Detail, c.verdict, c.code, c.wait)
			}
			if !strings.Contains(e.Hint, c.hint) {
				t.Errorf("hint %q, want it to mention %q", e.Hint, c.hint)
			}
			if wecom.Classify(c.code) != c.verdict {
				t.Errorf("Classify(%d) = %v", c.code, wecom.Classify(c.code))
			}
		})
	}
}

func TestDoubleEnforcesTheRateCountingFailures(t *testing.T) {
	srv, r := setup(t)
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	srv.Now = func() time.Time { return now }
	bad := &wecom.Message{MsgType: "news", Content: "x"}
	for i := range 5 {
		err := r.Notify(context.Background(), bad, "")
		if v, _ := notify.VerdictOf(err); v != notify.Content {
			t.Fatalf("bad msgtype %d: %v, want a content error", i, err)
		}
	}
	for i := range wecomtest.PerMinute - 5 {
		if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
			t.Fatalf("send %d: %v", i+6, err)
		}
	}
	err := send(t, r, formatter.Item{Alert: alert()})
	if v, e := notify.VerdictOf(err); v != notify.Throttled || e.Wait != wecom.ThrottleWait {
		t.Fatalf("21st request in a minute: %v, want throttled for a minute", err)
	}
	now = now.Add(wecom.ThrottleWait)
	if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	if n := srv.MaxInWindow(key, time.Minute); n != wecomtest.PerMinute+1 {
		t.Errorf("double counted %d requests in a minute, want %d (failed ones included)", n, wecomtest.PerMinute+1)
	}
}

func TestDoubleRefusesOversizedContent(t *testing.T) {
	srv, r := setup(t)
	for _, m := range []*wecom.Message{
		{MsgType: wecom.TypeMarkdown, Content: strings.Repeat("长", wecom.MaxMarkdownText/3+1)},
		{MsgType: wecom.TypeText, Content: strings.Repeat("a", wecom.MaxText+1)},
	} {
		err := r.Notify(context.Background(), m, "")
		if v, e := notify.VerdictOf(err); v != notify.Content || e.Code != "40058" {
			t.Errorf("%s of %d bytes: %v, want 40058", m.MsgType, len(m.Content), err)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("double accepted %d oversized messages", n)
	}
}

func TestUnknownKeyIsRefused(t *testing.T) {
	srv := wecomtest.New(key)
	endpoint := srv.Start(t)
	r, _ := wecom.New(wecom.Config{Key: "0" + key[1:], APIURL: endpoint}, wecom.Options{Name: "ops"})
	err := send(t, r, formatter.Item{Alert: alert()})
	if v, e := notify.VerdictOf(err); v != notify.Refused || e.Code != "93000" {
		t.Fatalf("unknown key: %v", err)
	}
}

// secretFree fails t when any text of err holds the key in any form.
func secretFree(t *testing.T, err error) {
	t.Helper()
	_, e := notify.VerdictOf(err)
	texts := []string{err.Error()}
	if e != nil {
		texts = append(texts, e.Detail, e.Hint)
		if e.Err != nil {
			texts = append(texts, e.Err.Error())
		}
	}
	for _, s := range texts {
		for _, form := range []string{key, url.QueryEscape(key), key[:len(key)-4]} {
			if strings.Contains(s, form) {
				t.Errorf("error text holds the key: %q", s)
			}
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply wecomtest.Reply
	}{
		{"errmsg echoing the URL", wecomtest.Reply{ErrCode: 93000, ErrMsg: "invalid webhook url", EchoURL: true}},
		{"gateway page echoing the URL", wecomtest.Reply{Status: 502, Raw: "<html>upstream failed for", EchoURL: true}},
		{"proxy 403 echoing the URL", wecomtest.Reply{Status: 403, Raw: "denied:", EchoURL: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, r := setup(t)
			srv.Script(c.reply)
			err := send(t, r, formatter.Item{Alert: alert()})
			if err == nil {
				t.Fatal("scripted failure succeeded")
			}
			secretFree(t, err)
			if !strings.Contains(err.Error()+errText(err), notify.Mask(key)) {
				t.Errorf("the echo should show the masked key, telling which robot: %v", err)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		endpoint := ts.URL + wecomtest.Path
		ts.Close()
		r, _ := wecom.New(wecom.Config{Key: key, APIURL: endpoint}, wecom.Options{Name: "ops"})
		err := send(t, r, formatter.Item{Alert: alert()})
		v, e := notify.VerdictOf(err)
		if v != notify.Retry || e == nil || e.Code != "network" || !strings.Contains(e.Hint, "refused") {
			t.Fatalf("closed port: %v (%+v)", err, e)
		}
		secretFree(t, err)
	})
}

func errText(err error) string {
	if _, e := notify.VerdictOf(err); e != nil && e.Err != nil {
		return e.Err.Error()
	}
	return ""
}

func TestReplyWithoutErrcode(t *testing.T) {
	for _, c := range []struct {
		status  int
		body    string
		verdict notify.Verdict
		hint    string
	}{
		{200, "<html>captive portal</html>", notify.Retry, "a running relay retries it"},
		{503, "", notify.Retry, "a running relay retries it"},
		{429, "slow down", notify.Throttled, "throttles"},
		{404, "not found", notify.Refused, "api_url of receiver ops"},
		{302, "", notify.Refused, "redirects"},
		{403, "denied", notify.Refused, "proxy"},
	} {
		srv, r := setup(t)
		srv.Script(wecomtest.Reply{Status: c.status, Raw: c.body + " "})
		err := send(t, r, formatter.Item{Alert: alert()})
		v, e := notify.VerdictOf(err)
		if e == nil || v != c.verdict || e.Code != "http_"+strconv.Itoa(c.status) || !strings.Contains(e.Hint, c.hint) {
			t.Errorf("HTTP %d: %v (%+v), want %v with a hint about %q", c.status, err, e, c.verdict, c.hint)
		}
	}
}

func TestFaultsAreRetried(t *testing.T) {
	for _, f := range []notifytest.Fault{notifytest.FaultBadGateway, notifytest.FaultReset} {
		srv, r := setup(t)
		srv.Faults(f, 1)
		err := send(t, r, formatter.Item{Alert: alert()})
		if v, e := notify.VerdictOf(err); v != notify.Retry || e == nil {
			t.Errorf("fault %d: %v, want a retry", f, err)
		}
		if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
			t.Errorf("after fault %d: %v", f, err)
		}
	}
}

func TestNoRedirects(t *testing.T) {
	var leaked bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = true
	}))
	defer other.Close()
	ts := httptest.NewServer(http.RedirectHandler(other.URL+"/steal", http.StatusTemporaryRedirect))
	defer ts.Close()
	r, _ := wecom.New(wecom.Config{Key: key, APIURL: ts.URL + wecomtest.Path}, wecom.Options{})
	err := send(t, r, formatter.Item{Alert: alert()})
	if err == nil || leaked {
		t.Errorf("redirect followed (err %v, reached the other host %v)", err, leaked)
	}
}

type foreign struct{}

func (foreign) Title() string { return "dingtalk" }

func TestForeignMessageIsRejected(t *testing.T) {
	srv, r := setup(t)
	err := r.Notify(context.Background(), foreign{}, "")
	if v, e := notify.VerdictOf(err); v != notify.Rejected || e.Hint == "" {
		t.Errorf("foreign message: %v", err)
	}
	if srv.Requests() != 0 {
		t.Error("a foreign message was sent")
	}
}

func TestContextCancelIsRetry(t *testing.T) {
	_, r := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg, _ := r.Card(formatter.Item{Alert: alert()})
	err := r.Notify(ctx, msg, "")
	if v, _ := notify.VerdictOf(err); v != notify.Retry || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled send: %v", err)
	}
}
