package stdwebhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook/stdwebhooktest"
)

var _ notify.Receiver = (*stdwebhook.Receiver)(nil)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// secret is whsec_ and the base64 of 32 bytes.
var secret = stdwebhook.SecretPrefix + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

var otherSecret = stdwebhook.SecretPrefix + base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))

// A notify key as the dispatcher makes them.
const key = "3f2a9c1e-77b0-4d2e-9a51-0c6f1b2d3e4f"

func alert() formatter.Alert {
	return formatter.Alert{
		Resource: "event_alert", Action: "triggered", Title: "TypeError: x is undefined", Project: "api",
		Environment: "prod", Level: "error", Link: "https://sentry.example.com/issues/42/",
		IssueID: "42", EventID: "e1", Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
	}
}

func item() formatter.Item { return formatter.Item{Alert: alert()} }

func newReceiver(t *testing.T, cfg stdwebhook.Config, opts stdwebhook.Options) *stdwebhook.Receiver {
	t.Helper()
	if cfg.Secret == "" && cfg.SecretFile == "" {
		cfg.Secret = secret
	}
	if opts.Name == "" {
		opts.Name = "hook"
	}
	r, err := stdwebhook.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func double(t *testing.T) (*stdwebhooktest.Server, string) {
	t.Helper()
	srv, err := stdwebhooktest.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	return srv, srv.Start(t)
}

func send(t *testing.T, r *stdwebhook.Receiver, it formatter.Item) error {
	t.Helper()
	msg, err := r.Card(it)
	if err != nil {
		t.Fatal(err)
	}
	return r.Notify(context.Background(), msg, key)
}

func TestSignMatchesSpecificationVector(t *testing.T) {
	// The example of the Standard Webhooks specification.
	k, err := stdwebhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := stdwebhook.Sign(k, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

// TestSignatureVerifiesWithReferenceImplementation checks a request as
// sent against the Standard Webhooks library for Go, on its own clock.
func TestSignatureVerifiesWithReferenceImplementation(t *testing.T) {
	var header http.Header
	var body []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		body, _ = readAll(r)
	}))
	defer ts.Close()
	r := newReceiver(t, stdwebhook.Config{URL: ts.URL}, stdwebhook.Options{})
	if err := send(t, r, item()); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, header); err != nil {
		t.Fatalf("reference implementation: %v (headers %v)", err, header)
	}
	if got := header.Get("webhook-id"); got != key {
		t.Errorf("webhook-id = %q, want the notify key %q", got, key)
	}
	other, _ := standardwebhooks.NewWebhook(otherSecret)
	if other.Verify(body, header) == nil {
		t.Error("the signature verifies with another secret too")
	}
	tampered := bytes.Replace(body, []byte("TypeError"), []byte("TypeErrox"), 1)
	if wh.Verify(tampered, header) == nil {
		t.Error("the signature verifies a changed body")
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// TestRetryKeepsIDAndSignsAfresh sends the same message twice, ten minutes
// apart, as the dispatcher retries: the endpoint's tolerance of 5 minutes
// would refuse a cached signature, and the repeated id lets it drop the
// second copy.
func TestRetryKeepsIDAndSignsAfresh(t *testing.T) {
	srv, endpoint := double(t)
	now := time.Now()
	srv.Now = func() time.Time { return now }
	r := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{Now: func() time.Time { return now }})
	msg, _ := r.Card(item())
	srv.Script(stdwebhooktest.Reply{Status: 503})
	if v, _ := notify.VerdictOf(r.Notify(context.Background(), msg, key)); v != notify.Retry {
		t.Fatalf("503: verdict %v, want Retry", v)
	}
	if err := r.Notify(context.Background(), msg, key); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	if err := r.Notify(context.Background(), msg, key); err != nil {
		t.Fatalf("retry ten minutes later: %v", err)
	}
	got := srv.Deliveries()
	if len(got) != 1 || srv.Repeats() != 1 {
		t.Fatalf("%d deliveries, %d repeats; want 1 and 1", len(got), srv.Repeats())
	}
	if got[0].ID != key {
		t.Errorf("id %q, want %q", got[0].ID, key)
	}
	// A clock off by more than the tolerance is refused: the double checks
	// the timestamp, so the fresh one above was not luck.
	r2 := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{Now: func() time.Time { return now.Add(-6 * time.Minute) }})
	err := r2.Notify(context.Background(), msg, "other-key")
	if v, e := notify.VerdictOf(err); v != notify.Refused || e.Code != "http_401" {
		t.Errorf("skewed clock: %v", err)
	}
	if srv.Requests() != 4 || srv.Statuses(http.StatusUnauthorized) != 1 || srv.Statuses(http.StatusServiceUnavailable) != 1 {
		t.Errorf("%d requests, %d answered 401, %d 503", srv.Requests(), srv.Statuses(401), srv.Statuses(503))
	}
}

// TestTimestampFollowsTheClock runs on virtual time through the double's
// Transport: each attempt is stamped with the clock at that attempt.
func TestTimestampFollowsTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := stdwebhooktest.New(secret)
		if err != nil {
			t.Fatal(err)
		}
		r := newReceiver(t, stdwebhook.Config{URL: "https://hooks.example.com" + stdwebhooktest.DefaultPath}, stdwebhook.Options{HTTP: &http.Client{Transport: srv.Transport()}})
		for i := range 2 {
			msg, _ := r.Card(item())
			if err := r.Notify(context.Background(), msg, fmt.Sprint("key-", i)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Minute)
		}
		d := srv.Deliveries()
		if len(d) != 2 || d[1].Timestamp.Sub(d[0].Timestamp) != 10*time.Minute {
			t.Fatalf("deliveries %+v", d)
		}
		srv.Script(stdwebhooktest.Reply{Reset: true})
		msg, _ := r.Card(item())
		if v, _ := notify.VerdictOf(r.Notify(context.Background(), msg, key)); v != notify.Retry {
			t.Errorf("reset through the transport: %v", v)
		}
	})
}

func TestNotifyOutcomes(t *testing.T) {
	for _, c := range []struct {
		name    string
		reply   *stdwebhooktest.Reply
		secret  string
		path    string
		maxBody int
		verdict notify.Verdict
		code    string
		wait    time.Duration
		detail  string
		ok      bool
	}{
		{name: "accepted", ok: true},
		{name: "204", reply: &stdwebhooktest.Reply{Status: 204}, ok: true},
		{name: "wrong secret", secret: otherSecret, verdict: notify.Refused, code: "http_401", detail: "no matching signature"},
		{name: "wrong path", path: "/other", verdict: notify.Refused, code: "http_404"},
		{name: "body over the endpoint's limit", maxBody: 100, verdict: notify.Content, code: "http_413"},
		{name: "422 with a reason", reply: &stdwebhooktest.Reply{Status: 422, Body: `{"error":"project api is archived"}`}, verdict: notify.Rejected, code: "http_422", detail: "project api is archived"},
		{name: "400", reply: &stdwebhooktest.Reply{Status: 400, Body: "bad"}, verdict: notify.Rejected, code: "http_400", detail: "bad"},
		{name: "429 with seconds", reply: &stdwebhooktest.Reply{Status: 429, Header: http.Header{"Retry-After": {"30"}}}, verdict: notify.Throttled, code: "http_429", wait: 30 * time.Second},
		{name: "429 without Retry-After", reply: &stdwebhooktest.Reply{Status: 429}, verdict: notify.Throttled, code: "http_429"},
		{name: "500", reply: &stdwebhooktest.Reply{Status: 500, Body: "<html>oops</html>"}, verdict: notify.Retry, code: "http_500", detail: "oops"},
		{name: "502", reply: &stdwebhooktest.Reply{Status: 502}, verdict: notify.Retry, code: "http_502"},
		{name: "408", reply: &stdwebhooktest.Reply{Status: 408}, verdict: notify.Retry, code: "http_408"},
		{name: "redirect", reply: &stdwebhooktest.Reply{Status: 302, Header: http.Header{"Location": {"https://elsewhere.example.com/hook?token=abc"}}}, verdict: notify.Refused, code: "http_302", detail: "redirect to https://elsewhere.example.com/…"},
		{name: "connection reset", reply: &stdwebhooktest.Reply{Reset: true}, verdict: notify.Retry, code: "network"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, endpoint := double(t)
			if c.reply != nil {
				srv.Script(*c.reply)
			}
			if c.maxBody > 0 {
				srv.MaxBody = c.maxBody
			}
			if c.path != "" {
				endpoint = strings.TrimSuffix(endpoint, srv.Path) + c.path
			}
			r := newReceiver(t, stdwebhook.Config{URL: endpoint, Secret: c.secret}, stdwebhook.Options{})
			err := send(t, r, item())
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			v, e := notify.VerdictOf(err)
			if e == nil {
				t.Fatalf("err = %v (%T), want *notify.Error", err, err)
			}
			if v != c.verdict || e.Code != c.code || e.Wait != c.wait {
				t.Errorf("verdict %v code %q wait %v, want %v %q %v (%v)", v, e.Code, e.Wait, c.verdict, c.code, c.wait, err)
			}
			if !strings.Contains(e.Detail, c.detail) {
				t.Errorf("detail %q does not say %q", e.Detail, c.detail)
			}
			if e.Hint == "" || e.Receiver != "hook" {
				t.Errorf("hint %q receiver %q", e.Hint, e.Receiver)
			}
		})
	}
}

// TestAbandonedWaitIsRetried gives up on an endpoint that took the
// request and never answers, as a timeout does.
func TestAbandonedWaitIsRetried(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer ts.Close()
	defer close(release)
	r := newReceiver(t, stdwebhook.Config{URL: ts.URL}, stdwebhook.Options{})
	msg, _ := r.Card(item())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	err := r.Notify(ctx, msg, key)
	if v, e := notify.VerdictOf(err); v != notify.Retry || e == nil || e.Code != "network" || e.Hint == "" {
		t.Errorf("abandoned wait: %v", err)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	err = r.Notify(dctx, msg, key)
	if v, e := notify.VerdictOf(err); v != notify.Retry || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(e.Hint, "did not answer") {
		t.Errorf("deadline: %v", err)
	}
}

func TestUntrustedCertificateIsRefused(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ts.Close()
	r := newReceiver(t, stdwebhook.Config{URL: ts.URL}, stdwebhook.Options{})
	err := send(t, r, item())
	v, e := notify.VerdictOf(err)
	if v != notify.Refused || e == nil || e.Code != "tls" || !strings.Contains(e.Hint, "certificate") {
		t.Fatalf("self-signed endpoint: %v (%+v)", err, e)
	}
	trusted := newReceiver(t, stdwebhook.Config{URL: ts.URL}, stdwebhook.Options{HTTP: ts.Client()})
	if err := send(t, trusted, item()); err != nil {
		t.Errorf("with the endpoint's CA trusted: %v", err)
	}
}

func TestNoRedirects(t *testing.T) {
	var hit bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer target.Close()
	ts := httptest.NewServer(http.RedirectHandler(target.URL+"/x", http.StatusTemporaryRedirect))
	defer ts.Close()
	r := newReceiver(t, stdwebhook.Config{URL: ts.URL}, stdwebhook.Options{})
	err := send(t, r, item())
	if v, _ := notify.VerdictOf(err); v != notify.Refused || hit {
		t.Errorf("redirect: verdict %v, target reached %v", v, hit)
	}
}

// TestSecretsNeverLeak puts tokens in the URL's path, query and password,
// has the endpoint echo the request line, and looks for them in
// everything the receiver says.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		pathToken  = "T0KENinPATH0123456789"
		queryToken = "QueryTokenABCDEF987"
		password   = "pa55wordXYZ"
	)
	srv, endpoint := double(t)
	srv.Path = "/hooks/" + pathToken
	endpoint = strings.Replace(strings.TrimSuffix(endpoint, stdwebhooktest.DefaultPath), "://", "://user:"+password+"@", 1) + srv.Path + "?token=" + queryToken
	r := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var said []string
	for _, reply := range []stdwebhooktest.Reply{
		{Status: 400, Body: "rejected", Echo: true},
		{Status: 502, Body: "upstream " + queryToken + " " + pathToken + " " + password + " " + secret, Echo: true},
		{Status: 302, Header: http.Header{"Location": {"/hooks/" + pathToken + "/v2?token=" + queryToken}}},
		{Reset: true},
	} {
		srv.Script(reply)
		err := send(t, r, item())
		_, e := notify.VerdictOf(err)
		if e == nil {
			t.Fatalf("reply %+v: err %v", reply, err)
		}
		log.Error("send failed", "receiver", r, "err", err, "detail", e.Detail)
		said = append(said, err.Error(), e.Detail, e.Hint, fmt.Sprint(e.Err))
	}
	said = append(said, r.String(), r.Endpoint(), fmt.Sprintf("%v %+v %#v %s", r, r, r, r), logs.String())
	for _, s := range said {
		for _, secretPart := range []string{pathToken, queryToken, password, secret, strings.TrimPrefix(secret, "whsec_"), "0x30, 0x31, 0x32"} {
			if strings.Contains(s, secretPart) {
				t.Errorf("%q leaks %q", s, secretPart)
			}
		}
	}
	if !strings.Contains(strings.Join(said, "\n"), notify.Mask(queryToken)) {
		t.Errorf("the echoed request line lost the mask that tells which token it was: %q", said)
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdefSHRT"))
	for _, c := range []struct {
		name string
		cfg  stdwebhook.Config
		want string
	}{
		{"no url", stdwebhook.Config{Secret: secret}, "url: missing"},
		{"relative url", stdwebhook.Config{URL: "/hook", Secret: secret}, "url: not an absolute"},
		{"ftp url", stdwebhook.Config{URL: "ftp://example.com/hook", Secret: secret}, "url: not an absolute"},
		{"unparsable url with a token", stdwebhook.Config{URL: "https://exa mple.com/hook?token=SECRETTOKEN", Secret: secret}, "url: not an absolute"},
		{"fragment", stdwebhook.Config{URL: "https://example.com/hook#x", Secret: secret}, "fragment"},
		{"no secret", stdwebhook.Config{URL: "https://example.com/hook"}, "secret: missing"},
		{"secret not base64", stdwebhook.Config{URL: "https://example.com/hook", Secret: "whsec_not*base64*SECRETTOKEN"}, "secret: …OKEN is not whsec_"},
		{"short key", stdwebhook.Config{URL: "https://example.com/hook", Secret: short}, "decodes to 20 bytes"},
		{"secret and file", stdwebhook.Config{URL: "https://example.com/hook", Secret: secret, SecretFile: file}, "both set"},
		{"missing file", stdwebhook.Config{URL: "https://example.com/hook", SecretFile: filepath.Join(dir, "none")}, "secret_file:"},
		{"negative rate", stdwebhook.Config{URL: "https://example.com/hook", Secret: secret, RatePerMinute: -1}, "rate_per_minute: -1"},
		{"huge rate", stdwebhook.Config{URL: "https://example.com/hook", Secret: secret, RatePerMinute: 100000}, "rate_per_minute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := stdwebhook.New(c.cfg, stdwebhook.Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			for _, s := range []string{"SECRETTOKEN", strings.TrimPrefix(secret, "whsec_"), strings.TrimPrefix(short, "whsec_")} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks %q: %v", s, err)
				}
			}
		})
	}
	r := newReceiver(t, stdwebhook.Config{URL: "https://example.com/hook", SecretFile: file}, stdwebhook.Options{})
	if r.RatePerMinute() != stdwebhook.DefaultRatePerMinute {
		t.Errorf("default rate %d", r.RatePerMinute())
	}
	unprefixed := newReceiver(t, stdwebhook.Config{URL: "https://example.com/hook", Secret: strings.TrimPrefix(secret, "whsec_"), RatePerMinute: 5}, stdwebhook.Options{})
	if unprefixed.RatePerMinute() != 5 || unprefixed.Identity() != r.Identity() {
		t.Errorf("rate %d, identity differs: %v", unprefixed.RatePerMinute(), unprefixed.Identity() != r.Identity())
	}
	if newReceiver(t, stdwebhook.Config{URL: "https://example.com/other"}, stdwebhook.Options{}).Identity() == r.Identity() {
		t.Error("two endpoints share an identity")
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]notify.Verdict{
		301: notify.Refused, 302: notify.Refused, 307: notify.Refused, 308: notify.Refused,
		400: notify.Rejected, 401: notify.Refused, 403: notify.Refused, 404: notify.Refused,
		405: notify.Refused, 408: notify.Retry, 409: notify.Rejected, 410: notify.Refused,
		413: notify.Content, 415: notify.Rejected, 422: notify.Rejected, 429: notify.Throttled,
		500: notify.Retry, 502: notify.Retry, 503: notify.Retry, 504: notify.Retry, 599: notify.Retry,
		100: notify.Retry,
	} {
		v, hint := stdwebhook.Classify(status)
		if v != want || hint == "" {
			t.Errorf("Classify(%d) = %v, %q; want %v and a hint", status, v, hint, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		" 5 ":                           5 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"99999999999999999999999":       time.Hour,
		"86400":                         time.Hour,
		"Sun, 01 Mar 2026 10:02:00 GMT": 2 * time.Minute,
		"Sun, 01 Mar 2026 09:00:00 GMT": 0,
	} {
		if got := stdwebhook.RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "30", "Sun, 01 Mar 2026 10:02:00 GMT", "-1", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := stdwebhook.RetryAfter(v, now); d < 0 || d > time.Hour {
			t.Errorf("RetryAfter(%q) = %v", v, d)
		}
	})
}

func TestThrottledByEndpointRate(t *testing.T) {
	srv, endpoint := double(t)
	now := time.Now()
	srv.Now = func() time.Time { return now }
	srv.PerMinute = 2
	r := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{Now: func() time.Time { return now }})
	for i := range 3 {
		msg, _ := r.Card(item())
		err := r.Notify(context.Background(), msg, fmt.Sprintf("key-%d", i))
		if i < 2 {
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(10 * time.Second)
			continue
		}
		v, e := notify.VerdictOf(err)
		if v != notify.Throttled || e.Wait != 40*time.Second {
			t.Errorf("third request in a minute: %v, wait %v; want Throttled for 40s", err, e.Wait)
		}
	}
}

func TestMessageID(t *testing.T) {
	if got := stdwebhook.MessageID(key, nil); got != key {
		t.Errorf("a header-safe key is the id: %q", got)
	}
	evil := "a\r\nX-Injected: 1"
	if got := stdwebhook.MessageID(evil, nil); strings.ContainsAny(got, "\r\n: ") || got != stdwebhook.MessageID(evil, nil) {
		t.Errorf("unsafe key gave %q", got)
	}
	if a, b := stdwebhook.MessageID("", []byte("x")), stdwebhook.MessageID("", []byte("y")); a == b || a != stdwebhook.MessageID("", []byte("x")) {
		t.Errorf("ids without a key: %q %q", a, b)
	}
}

func decode(t testing.TB, msg notify.Message) stdwebhook.Payload {
	t.Helper()
	var p stdwebhook.Payload
	dec := json.NewDecoder(bytes.NewReader(msg.(*stdwebhook.Message).Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body: %v", err)
	}
	return p
}

func TestHugeFieldsAreBounded(t *testing.T) {
	a := alert()
	a.Message = strings.Repeat("\x01长", 500_000)
	a.Title = strings.Repeat("t", 100_000)
	for i := range 1000 {
		a.Tags = append(a.Tags, formatter.Tag{Key: fmt.Sprint("k", i), Value: strings.Repeat("\x02", 10_000)})
		a.Evidence = append(a.Evidence, formatter.Evidence{Name: "n", Value: strings.Repeat("\x03", 10_000)})
		a.PullRequests = append(a.PullRequests, formatter.Ref{Title: "pr", URL: "https://github.com/o/r/pull/1"})
	}
	r := newReceiver(t, stdwebhook.Config{URL: "https://example.com/hook"}, stdwebhook.Options{})
	msg, _ := r.Card(formatter.Item{Alert: a, Note: strings.Repeat("n", 10_000)})
	body := msg.(*stdwebhook.Message).Body()
	if len(body) > stdwebhook.MaxBodyBytes {
		t.Fatalf("card body %d bytes, limit %d", len(body), stdwebhook.MaxBodyBytes)
	}
	p := decode(t, msg)
	if got := []rune(p.Alerts[0].Title); len(got) != 512 || got[511] != '…' {
		t.Errorf("title kept %d runes", len(got))
	}
	if len(p.Alerts[0].Tags) > 50 || len(p.Alerts[0].Evidence) > 50 || len(p.Alerts[0].PullRequests) > 20 {
		t.Errorf("lists: %d tags %d evidence %d prs", len(p.Alerts[0].Tags), len(p.Alerts[0].Evidence), len(p.Alerts[0].PullRequests))
	}
	var items []formatter.Item
	for i := range 40 {
		b := a
		b.IssueID = fmt.Sprint(i)
		items = append(items, formatter.Item{Alert: b})
	}
	seen := map[int]int{}
	for rest := items; len(rest) > 0; {
		msg, covered := r.Digest(rest, false)
		if n := len(msg.(*stdwebhook.Message).Body()); n > stdwebhook.MaxBodyBytes {
			t.Fatalf("digest body %d bytes", n)
		}
		if len(covered) == 0 || len(decode(t, msg).Alerts) != len(covered) {
			t.Fatalf("covered %v", covered)
		}
		var left []formatter.Item
		in := map[int]bool{}
		for _, i := range covered {
			in[i] = true
		}
		for i, it := range rest {
			if in[i] {
				var id int
				fmt.Sscan(it.Alert.IssueID, &id)
				seen[id]++
			} else {
				left = append(left, it)
			}
		}
		if !in[0] {
			t.Fatal("the oldest alert was left for later")
		}
		rest = left
	}
	for i := range 40 {
		if seen[i] != 1 {
			t.Errorf("alert %d in %d digests", i, seen[i])
		}
	}
}

func TestDigest(t *testing.T) {
	srv, endpoint := double(t)
	r := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{Language: formatter.LangEN})
	var items []formatter.Item
	for i, issue := range []string{"1", "2", "1", "3", "1"} {
		a := alert()
		a.IssueID, a.Title = issue, "issue "+issue
		a.Time = a.Time.Add(time.Duration(i) * time.Minute)
		items = append(items, formatter.Item{Alert: a, Note: "Fallback: ops could not deliver this"})
	}
	msg, covered := r.Digest(items, false)
	if len(covered) != 5 {
		t.Fatalf("covered %v", covered)
	}
	if got := msg.Title(); got != "[api] 5 alerts · 3 issues" {
		t.Errorf("title %q", got)
	}
	if err := r.Notify(context.Background(), msg, key); err != nil {
		t.Fatal(err)
	}
	d := srv.Deliveries()
	if len(d) != 1 || d[0].Payload.Type != stdwebhook.TypeDigest || len(d[0].Payload.Alerts) != 5 {
		t.Fatalf("deliveries %+v", d)
	}
	for i, a := range d[0].Payload.Alerts {
		if a.Title != items[i].Alert.Title {
			t.Errorf("alert %d is %q: the body is not oldest first", i, a.Title)
		}
	}
	if d[0].Payload.Note != "Fallback: ops could not deliver this" {
		t.Errorf("note %q: the same note of several alerts is said once", d[0].Payload.Note)
	}
}

func TestMinimalIsSmallAndValid(t *testing.T) {
	srv, endpoint := double(t)
	r := newReceiver(t, stdwebhook.Config{URL: endpoint}, stdwebhook.Options{})
	a := alert()
	a.Message = strings.Repeat("m", 1000)
	a.Tags = []formatter.Tag{{Key: "k", Value: "v"}}
	msg := r.Minimal(formatter.Item{Alert: a})
	p := decode(t, msg)
	if got := p.Alerts[0]; got.Message != "" || len(got.Tags) != 0 || got.Title != a.Title || got.Link != a.Link {
		t.Errorf("minimal alert %+v", got)
	}
	if err := r.Notify(context.Background(), msg, key); err != nil || len(srv.Deliveries()) != 1 {
		t.Errorf("minimal refused by the endpoint: %v", err)
	}
}

// TestGolden renders Sentry fixtures as a card and as a digest. A payload
// has no words of its own, so both languages give the same body.
func TestGolden(t *testing.T) {
	zone, _ := time.LoadLocation("Asia/Shanghai")
	var items []formatter.Item
	for _, name := range []string{"event_alert.triggered.json", "issue.created.json", "metric_alert.critical.mock.json"} {
		w, err := sentry.Parse(sentrytest.Resource(name), sentrytest.Fixture(t, name), sentry.Options{SentryURL: "https://sentry.example.com", Received: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		items = append(items, formatter.Item{Alert: w.Alert})
	}
	items[2].Note = "Fallback: robot ops could not deliver this (errcode 310000 since 10:42)"
	bodies := map[string][]byte{}
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		r := newReceiver(t, stdwebhook.Config{URL: "https://example.com/hook"}, stdwebhook.Options{Language: lang, Zone: zone})
		card, _ := r.Card(items[0])
		digest, covered := r.Digest(items, false)
		if len(covered) != len(items) {
			t.Fatalf("covered %v", covered)
		}
		for name, msg := range map[string]notify.Message{"card": card, "digest": digest} {
			body := msg.(*stdwebhook.Message).Body()
			if prev, ok := bodies[name]; ok && !bytes.Equal(prev, body) {
				t.Errorf("%s body depends on the language", name)
			}
			bodies[name] = body
			golden(t, name+"."+lang, msg)
		}
	}
}

func golden(t *testing.T, name string, msg notify.Message) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("title: " + msg.Title() + "\n")
	if err := json.Indent(&buf, msg.(*stdwebhook.Message).Body(), "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n")
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, buf.String())
	}
}

// FuzzPayload puts arbitrary text in every field: the body stays valid
// JSON of the schema, carries the text (shortened, invalid UTF-8 replaced)
// and verifies with the reference implementation.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{"", "plain", `"}],"type":"x`, "\x00\xff\u2028<script>", strings.Repeat("长", 600)} {
		f.Add(s)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		f.Fatal(err)
	}
	r, err := stdwebhook.New(stdwebhook.Config{URL: "https://example.com/hook", Secret: secret}, stdwebhook.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := formatter.Alert{Resource: s, Action: s, Title: s, Project: s, Environment: s, Level: s, Location: s,
			Message: s, Link: s, Release: s, Rule: s, IssueID: s, Tags: []formatter.Tag{{Key: s, Value: s}},
			Evidence: []formatter.Evidence{{Name: s, Value: s}}, PullRequests: []formatter.Ref{{Title: s, URL: s}}}
		msg, _ := r.Card(formatter.Item{Alert: a, Note: s})
		body := msg.(*stdwebhook.Message).Body()
		p := decode(t, msg)
		want := formatter.Shorten(strings.ToValidUTF8(s, "\uFFFD"), 512)
		if got := p.Alerts[0]; got.Title != want || got.Tags[0].Value != want || got.Evidence[0].Value != want {
			t.Errorf("text changed: %q -> %q", want, got.Title)
		}
		if l := p.Alerts[0].Link; l != "" && !strings.HasPrefix(l, "http") {
			t.Errorf("link %q", l)
		}
		h := http.Header{}
		const ts = 1_700_000_000
		h.Set("webhook-id", key)
		h.Set("webhook-timestamp", fmt.Sprint(ts))
		k, _ := stdwebhook.ParseSecret(secret)
		h.Set("webhook-signature", stdwebhook.Sign(k, key, ts, body))
		if err := wh.VerifyIgnoringTimestamp(body, h); err != nil {
			t.Errorf("reference verification: %v", err)
		}
	})
}
