package feishu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu/feishutest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
)

const (
	token  = "2f3c9a1e-8b7d-4c6e-9f0a-1b2c3d4e5f60"
	secret = "qW3eR5tY7uI9oP1aS2dF4g"
)

func alert() formatter.Alert {
	return formatter.Alert{Resource: "event_alert", Action: "triggered", Title: "boom", Project: "api", Environment: "production",
		Level: "error", Link: "https://sentry.example.com/organizations/acme/issues/1/", IssueID: "1",
		Time: time.Date(2026, 11, 30, 8, 0, 3, 0, time.UTC)}
}

// setup returns a double that knows bot and a receiver for it configured
// by cfg, talking to the double without sockets (so it also works inside
// testing/synctest bubbles, where the receiver's pacing waits on virtual
// time).
func setup(t *testing.T, bot feishutest.Bot, cfg feishu.Config) (*feishutest.Server, *feishu.Receiver) {
	t.Helper()
	srv := feishutest.New(bot)
	cfg.URL = "https://open.feishu.cn" + feishutest.PathPrefix + token
	r, err := feishu.New(cfg, feishu.Options{Name: "ops", HTTP: &http.Client{Transport: srv.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, r
}

func send(t *testing.T, r *feishu.Receiver, it formatter.Item) error {
	t.Helper()
	msg, err := r.Card(it)
	if err != nil {
		t.Fatal(err)
	}
	return r.Notify(context.Background(), msg, "k")
}

func TestSignMatchesReferenceVector(t *testing.T) {
	// printf '' | openssl dgst -sha256 -hmac "$(printf '1700000000\nSECdemo0123456789')" -binary | base64
	if got, want := feishu.Sign("SECdemo0123456789", 1700000000), "OwVY1o4jtY+KrWyBDuR3eNKZbwzYJawAd+W7mUYesSU="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	dir := t.TempDir()
	urlFile, secretFile := filepath.Join(dir, "url"), filepath.Join(dir, "secret")
	hook := "https://open.feishu.cn/open-apis/bot/v2/hook/" + token
	os.WriteFile(urlFile, []byte(hook+"\n"), 0o600)
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	for _, c := range []struct {
		name string
		cfg  feishu.Config
		want string
	}{
		{"feishu", feishu.Config{URL: hook}, ""},
		{"lark", feishu.Config{URL: "https://open.larksuite.com/open-apis/bot/v2/hook/" + token, Secret: secret, Keyword: "Sentry"}, ""},
		{"files", feishu.Config{URLFile: urlFile, SecretFile: secretFile}, ""},
		{"no url", feishu.Config{}, "url: required"},
		{"url and url_file", feishu.Config{URL: hook, URLFile: urlFile}, "url, url_file: set one"},
		{"v1 hook", feishu.Config{URL: "https://open.feishu.cn/open-apis/bot/hook/" + token}, "url: a v1 webhook"},
		{"not a hook", feishu.Config{URL: "https://open.feishu.cn/open-apis/im/v1/messages"}, "url: not a Feishu/Lark bot webhook URL"},
		{"no scheme", feishu.Config{URL: "open.feishu.cn/open-apis/bot/v2/hook/" + token}, "url: not a Feishu/Lark bot webhook URL"},
		{"query", feishu.Config{URL: hook + "?x=1"}, "url: not a Feishu/Lark bot webhook URL"},
		{"secret with space", feishu.Config{URL: hook, Secret: "abc " + secret}, `secret: "…dF4g" is not a Feishu signing secret`},
		{"secret and file", feishu.Config{URL: hook, Secret: secret, SecretFile: secretFile}, "secret, secret_file: set one"},
		{"missing file", feishu.Config{URL: hook, SecretFile: filepath.Join(dir, "none")}, "secret_file: "},
		{"keyword on two lines", feishu.Config{URL: hook, Keyword: "a\nb"}, "keyword: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := feishu.New(c.cfg, feishu.Options{})
			if c.want == "" {
				if err != nil || r == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error starting %q", err, c.want)
			}
			for _, s := range []string{token, secret, token[:len(token)-4], secret[:len(secret)-4]} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestIdentityIsTheToken(t *testing.T) {
	a, _ := feishu.New(feishu.Config{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/" + token}, feishu.Options{})
	b, _ := feishu.New(feishu.Config{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/" + token, Secret: secret}, feishu.Options{})
	c, _ := feishu.New(feishu.Config{URL: "https://open.feishu.cn/open-apis/bot/v2/hook/0" + token[1:]}, feishu.Options{})
	if a.Identity() != b.Identity() || a.Identity() == c.Identity() {
		t.Errorf("identities %q %q %q", a.Identity(), b.Identity(), c.Identity())
	}
}

func TestNotifyOutcomes(t *testing.T) {
	for _, c := range []struct {
		name    string
		bot     feishutest.Bot
		cfg     feishu.Config
		code    string
		verdict notify.Verdict
		hint    string
	}{
		{name: "plain", bot: feishutest.Bot{Token: token}},
		{name: "signed", bot: feishutest.Bot{Token: token, Secret: secret}, cfg: feishu.Config{Secret: secret}},
		{name: "keyword", bot: feishutest.Bot{Token: token, Keyword: "SentryOps"}, cfg: feishu.Config{Keyword: "SentryOps"}},
		{name: "signed with keyword", bot: feishutest.Bot{Token: token, Secret: secret, Keyword: "告警"}, cfg: feishu.Config{Secret: secret, Keyword: "告警"}},
		{name: "missing keyword", bot: feishutest.Bot{Token: token, Keyword: "SentryOps"}, code: "19024", verdict: notify.Refused, hint: "set keyword of receiver ops"},
		{name: "wrong keyword", bot: feishutest.Bot{Token: token, Keyword: "SentryOps"}, cfg: feishu.Config{Keyword: "Ops2"}, code: "19024", verdict: notify.Refused, hint: `keyword "Ops2"`},
		{name: "wrong secret", bot: feishutest.Bot{Token: token, Secret: secret}, cfg: feishu.Config{Secret: "wrongwrongwrong"}, code: "19021", verdict: notify.Refused, hint: "clock"},
		{name: "no secret for a signing bot", bot: feishutest.Bot{Token: token, Secret: secret}, code: "19021", verdict: notify.Refused, hint: "set secret of receiver ops"},
		{name: "unknown token", bot: feishutest.Bot{Token: "0" + token[1:]}, code: "19001", verdict: notify.Refused, hint: "url of receiver ops"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, r := setup(t, c.bot, c.cfg)
			err := send(t, r, formatter.Item{Alert: alert()})
			if c.code == "" {
				if err != nil {
					t.Fatalf("Notify: %v", err)
				}
				if n := len(srv.Messages()); n != 1 {
					t.Errorf("double accepted %d messages", n)
				}
				return
			}
			v, e := notify.VerdictOf(err)
			if e == nil || v != c.verdict || e.Code != c.code || !strings.Contains(e.Hint, c.hint) {
				t.Fatalf("err %v (%+v), want %v %s with a hint about %q", err, e, c.verdict, c.code, c.hint)
			}
			secretFree(t, err)
		})
	}
}

func TestCodes(t *testing.T) {
	for _, c := range []struct {
		code    int
		verdict notify.Verdict
		wait    time.Duration
		hint    string
	}{
		{19021, notify.Refused, 0, "signature"},
		{19024, notify.Refused, 0, "keyword"},
		{19001, notify.Refused, 0, "token"},
		{11232, notify.Throttled, time.Minute, "100 messages a minute, 5 a second"},
		{9499, notify.Content, 0, "minimal"},
		{19002, notify.Content, 0, "message type"},
		{19022, notify.Refused, 0, "IP allow-list"},
	} {
		srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
		srv.Script(feishutest.Reply{Code: c.code, Msg: "scripted"})
		err := send(t, r, formatter.Item{Alert: alert()})
		v, e := notify.VerdictOf(err)
		if e == nil || v != c.verdict || e.Code != strconv.Itoa(c.code) || e.Wait != c.wait || e.Detail != "scripted" || !strings.Contains(e.Hint, c.hint) {
			t.Errorf("code %d: %v (%+v), want %v wait %v hint about %q", c.code, err, e, c.verdict, c.wait, c.hint)
		}
		if feishu.Classify(c.code) != c.verdict {
			t.Errorf("Classify(%d) = %v", c.code, feishu.Classify(c.code))
		}
	}
}

func TestLegacyStatusCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
		srv.Script(feishutest.Reply{Code: 0, Msg: "success", Legacy: true}, feishutest.Reply{Code: 19024, Msg: "Key Words Not Found", Legacy: true},
			feishutest.Reply{Raw: `{"code":19021,"msg":"sign","StatusCode":0,"StatusMessage":"success"}`})
		if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
			t.Errorf("legacy success: %v", err)
		}
		if _, e := notify.VerdictOf(send(t, r, formatter.Item{Alert: alert()})); e == nil || e.Code != "19024" {
			t.Errorf("legacy failure: %+v", e)
		}
		if _, e := notify.VerdictOf(send(t, r, formatter.Item{Alert: alert()})); e == nil || e.Code != "19021" {
			t.Errorf("code must win over a legacy StatusCode 0: %+v", e)
		}
	})
}

func TestSignatureIsFreshPerRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// In the bubble both clocks are the virtual one.
		srv, r := setup(t, feishutest.Bot{Token: token, Secret: secret}, feishu.Config{Secret: secret})
		if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
			t.Fatal(err)
		}
		// Two hours later a cached signature would be refused.
		time.Sleep(2 * time.Hour)
		if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
			t.Fatalf("two hours later: %v", err)
		}
		// A server clock 90 minutes ahead refuses the signature.
		srv.Now = func() time.Time { return time.Now().Add(90 * time.Minute) }
		if _, e := notify.VerdictOf(send(t, r, formatter.Item{Alert: alert()})); e == nil || e.Code != "19021" || !strings.Contains(e.Hint, "clock") {
			t.Errorf("skewed clock: %+v", e)
		}
		// The receiver signs with the clock it is given.
		srv.Now = nil
		late, _ := feishu.New(feishu.Config{URL: "https://open.feishu.cn" + feishutest.PathPrefix + token, Secret: secret},
			feishu.Options{HTTP: &http.Client{Transport: srv.Transport()}, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		if _, e := notify.VerdictOf(send(t, late, formatter.Item{Alert: alert()})); e == nil || e.Code != "19021" {
			t.Errorf("signed two hours in the past: %+v", e)
		}
	})
}

func TestDoubleEnforcesPerMinuteAndPerSecond(t *testing.T) {
	srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	srv.Now = func() time.Time { return now }
	msg, _ := r.Card(formatter.Item{Alert: alert()})
	// Straight to the double: the receiver's own pacing would hide its limit.
	post := func() int {
		req := httptest.NewRequest(http.MethodPost, feishutest.PathPrefix+token, bytes.NewReader(msg.(*feishu.Message).JSON()))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var answer struct{ Code int }
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatal(err)
		}
		return answer.Code
	}
	for i := range feishutest.PerSecond {
		if code := post(); code != 0 {
			t.Fatalf("request %d in a second: code %d", i+1, code)
		}
	}
	if code := post(); code != 11232 {
		t.Fatalf("6th request in a second: code %d, want 11232", code)
	}
	// Then 4 a second, under the per-second limit, until the minute's 100
	// requests (the refused one counts) are used up.
	now = now.Add(time.Second)
	for i := feishutest.PerSecond + 1; i < feishutest.PerMinute; i++ {
		if code := post(); code != 0 {
			t.Fatalf("request %d of the minute: code %d", i+1, code)
		}
		now = now.Add(time.Second / 4)
	}
	if code := post(); code != 11232 {
		t.Errorf("101st request in a minute: code %d, want 11232", code)
	}
	now = now.Add(time.Minute)
	if code := post(); code != 0 {
		t.Errorf("a minute later: code %d", code)
	}
}

func TestNotifyPacesSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := feishutest.New(feishutest.Bot{Token: token})
		r, err := feishu.New(feishu.Config{URL: "https://open.feishu.cn" + feishutest.PathPrefix + token},
			feishu.Options{Name: "ops", HTTP: &http.Client{Transport: srv.Transport()}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range 20 {
			if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
				t.Fatalf("send %d: %v", i+1, err)
			}
		}
		if n := srv.MaxInWindow(token, time.Second); n > feishu.PacePerSecond {
			t.Errorf("%d sends in a second, want at most %d", n, feishu.PacePerSecond)
		}
		if took, want := time.Since(start), 19*time.Second/feishu.PacePerSecond; took < want {
			t.Errorf("20 sends took %v, want at least %v", took, want)
		}
	})
}

func TestPaceWaitHonoursTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := feishutest.New(feishutest.Bot{Token: token})
		r, _ := feishu.New(feishu.Config{URL: "https://open.feishu.cn" + feishutest.PathPrefix + token},
			feishu.Options{HTTP: &http.Client{Transport: srv.Transport()}})
		msg, _ := r.Card(formatter.Item{Alert: alert()})
		if err := r.Notify(t.Context(), msg, ""); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		err := r.Notify(ctx, msg, "")
		if v, _ := notify.VerdictOf(err); err == nil || v != notify.Retry {
			t.Errorf("a send that cannot get a slot before its deadline: %v", err)
		}
		if srv.Requests() != 1 {
			t.Errorf("%d requests, want 1", srv.Requests())
		}
	})
}

// secretFree fails t when any text of err holds the token or the secret.
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
		for _, form := range []string{token, secret, token[:len(token)-4], secret[:len(secret)-4]} {
			if strings.Contains(s, form) {
				t.Errorf("error text holds a secret: %q", s)
			}
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply feishutest.Reply
	}{
		{"msg echoing the URL", feishutest.Reply{Code: 19001, Msg: "token invalid", EchoURL: true}},
		{"gateway page echoing the URL", feishutest.Reply{Status: 502, Raw: "<html>upstream failed for", EchoURL: true}},
		{"proxy 403 echoing the URL", feishutest.Reply{Status: 403, Raw: "denied:", EchoURL: true}},
		{"msg echoing the secret", feishutest.Reply{Code: 19021, Msg: "bad sign for secret " + secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, r := setup(t, feishutest.Bot{Token: token, Secret: secret}, feishu.Config{Secret: secret})
			srv.Script(c.reply)
			err := send(t, r, formatter.Item{Alert: alert()})
			if err == nil {
				t.Fatal("scripted failure succeeded")
			}
			secretFree(t, err)
		})
	}
	t.Run("network error", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		base := ts.URL
		ts.Close()
		r, _ := feishu.New(feishu.Config{URL: base + feishutest.PathPrefix + token, Secret: secret}, feishu.Options{})
		err := send(t, r, formatter.Item{Alert: alert()})
		v, e := notify.VerdictOf(err)
		if v != notify.Retry || e == nil || e.Code != "network" || !strings.Contains(e.Hint, "refused") {
			t.Fatalf("closed port: %v", err)
		}
		if !strings.Contains(err.Error(), notify.Mask(token)) {
			t.Errorf("the error should name the bot by its masked token: %v", err)
		}
		secretFree(t, err)
	})
}

func TestReplyWithoutCode(t *testing.T) {
	for _, c := range []struct {
		status  int
		body    string
		verdict notify.Verdict
		hint    string
	}{
		{200, "<html>captive portal</html>", notify.Retry, "a running relay retries it"},
		{200, `{"data":{}}`, notify.Retry, "a running relay retries it"},
		{502, "", notify.Retry, "a running relay retries it"},
		{429, "slow down", notify.Throttled, "throttles"},
		{404, "not found", notify.Refused, "url of receiver ops"},
		{307, "", notify.Refused, "redirects"},
		{403, "denied", notify.Refused, "proxy"},
	} {
		srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
		srv.Script(feishutest.Reply{Status: c.status, Raw: c.body + " "})
		err := send(t, r, formatter.Item{Alert: alert()})
		v, e := notify.VerdictOf(err)
		if e == nil || v != c.verdict || e.Code != "http_"+strconv.Itoa(c.status) || !strings.Contains(e.Hint, c.hint) {
			t.Errorf("HTTP %d %q: %v (%+v), want %v with a hint about %q", c.status, c.body, err, e, c.verdict, c.hint)
		}
	}
}

func TestFaultsAreRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, f := range []notifytest.Fault{notifytest.FaultBadGateway, notifytest.FaultReset} {
			srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
			srv.Faults(f, 1)
			if v, e := notify.VerdictOf(send(t, r, formatter.Item{Alert: alert()})); v != notify.Retry || e == nil {
				t.Errorf("fault %d: %v", f, e)
			}
			if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
				t.Errorf("after fault %d: %v", f, err)
			}
		}
	})
}

func TestNoRedirects(t *testing.T) {
	var leaked bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked = true }))
	defer other.Close()
	ts := httptest.NewServer(http.RedirectHandler(other.URL+"/steal", http.StatusTemporaryRedirect))
	defer ts.Close()
	r, _ := feishu.New(feishu.Config{URL: ts.URL + feishutest.PathPrefix + token}, feishu.Options{})
	if err := send(t, r, formatter.Item{Alert: alert()}); err == nil || leaked {
		t.Errorf("redirect followed (err %v, reached the other host %v)", err, leaked)
	}
}

type foreign struct{}

func (foreign) Title() string { return "dingtalk" }

func TestForeignMessageIsRejected(t *testing.T) {
	srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
	if v, e := notify.VerdictOf(r.Notify(context.Background(), foreign{}, "")); v != notify.Rejected || e.Hint == "" {
		t.Errorf("foreign message: %v", e)
	}
	if srv.Requests() != 0 {
		t.Error("a foreign message was sent")
	}
}
