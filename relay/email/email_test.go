package email_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email/emailtest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

var _ notify.Receiver = (*email.Receiver)(nil)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	user     = "alerts@example.com"
	password = "s3cr3t-P@ss:word"
	key      = "3f2a9c1e-77b0-4d2e-9a51-0c6f1b2d3e4f"
)

var now = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func alert() formatter.Alert {
	return formatter.Alert{
		Resource: "event_alert", Action: "triggered", Title: "TypeError: x is undefined", Project: "api",
		Environment: "prod", Level: "error", Link: "https://sentry.example.com/issues/42/", Location: "app.js:10",
		Message: "x is undefined\nat line 10", IssueID: "42", Time: now,
	}
}

// setup starts a server and a receiver that trusts its certificate.
func setup(t *testing.T, opts emailtest.Options, to ...string) (*emailtest.Server, *email.Receiver) {
	t.Helper()
	if opts.Username == "" && !opts.NoTLS {
		opts.Username, opts.Password = user, password
	}
	srv := emailtest.Start(t, opts)
	return srv, receiver(t, srv, srv.URL(), to...)
}

func receiver(t *testing.T, srv *emailtest.Server, smtpURL string, to ...string) *email.Receiver {
	t.Helper()
	server, err := email.ParseSMTPURL(smtpURL)
	if err != nil {
		t.Fatal(err)
	}
	server.From = "Sentry Relay <alerts@example.com>"
	if len(to) == 0 {
		to = []string{"ops@example.com"}
	}
	r, err := email.New(email.Config{To: to}, server, email.Options{
		Name: "mail", Language: formatter.LangEN, Now: func() time.Time { return now },
		TLS: &tls.Config{RootCAs: srv.RootCAs()}, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func send(t *testing.T, r *email.Receiver, it formatter.Item) error {
	t.Helper()
	msg, err := r.Card(it)
	if err != nil {
		t.Fatal(err)
	}
	return r.Notify(context.Background(), msg, key)
}

// parsed is a received mail taken apart with the standard library.
type parsed struct {
	header      mail.Header
	text, html  string
	subject     string
	contentType string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not RFC 5322: %v\n%s", err, data)
	}
	var p parsed
	p.header = m.Header
	if p.subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	p.contentType = mt
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		pt, pp, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil || !strings.EqualFold(pp["charset"], "utf-8") {
			t.Fatalf("part Content-Type %q (%v)", part.Header.Get("Content-Type"), err)
		}
		var body io.Reader = part
		if part.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			body = quotedprintable.NewReader(part)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		switch pt {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		}
	}
	if p.text == "" || p.html == "" {
		t.Fatalf("parts: text %d bytes, html %d bytes", len(p.text), len(p.html))
	}
	return p
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	srv, r := setup(t, emailtest.Options{}, "Ops <ops@example.com>, dev@example.com", "OPS@example.com")
	if err := send(t, r, formatter.Item{Alert: alert(), Note: "Fallback: ops could not deliver this"}); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("%d mails", len(got))
	}
	m := got[0]
	if !m.TLS || m.From != "alerts@example.com" || strings.Join(m.To, ",") != "ops@example.com,dev@example.com" {
		t.Errorf("envelope: tls %v from %q to %q", m.TLS, m.From, m.To)
	}
	p := parse(t, m.Data)
	for h, want := range map[string]string{
		"Message-Id":               "<relay." + key + "@example.com>",
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"Mime-Version":             "1.0",
	} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date %v (%v), want the injected clock %v", d, err, now)
	}
	from, _ := p.header.AddressList("From")
	to, _ := p.header.AddressList("To")
	if len(from) != 1 || from[0].Name != "Sentry Relay" || len(to) != 2 || to[0].Name != "Ops" {
		t.Errorf("From %v To %v", from, to)
	}
	if p.subject != "[api] TypeError: x is undefined" {
		t.Errorf("subject %q", p.subject)
	}
	for _, part := range []string{p.text, p.html} {
		for _, want := range []string{"TypeError: x is undefined", "Fallback: ops could not deliver this", "https://sentry.example.com/issues/42/", "app.js:10"} {
			if !strings.Contains(part, want) {
				t.Errorf("a part lacks %q:\n%s", want, part)
			}
		}
	}
	if !strings.Contains(p.html, `border-top:4px solid #E03E2F`) || !strings.Contains(p.html, `<a href="https://sentry.example.com/issues/42/" style="display:inline-block`) {
		t.Errorf("HTML lacks the level colour or the button:\n%s", p.html)
	}
}

func TestImplicitTLS(t *testing.T) {
	srv, r := setup(t, emailtest.Options{ImplicitTLS: true})
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatal(srv.URL())
	}
	if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages(); len(got) != 1 || !got[0].TLS {
		t.Fatalf("mails %+v", got)
	}
	parse(t, srv.Messages()[0].Data)
}

func TestVerdicts(t *testing.T) {
	for _, c := range []struct {
		name    string
		opts    emailtest.Options
		url     func(*emailtest.Server) string
		prepare func(*emailtest.Server)
		verdict notify.Verdict
		code    string
	}{
		{name: "mailbox unavailable", prepare: func(s *emailtest.Server) {
			s.FailRcpt("ops@example.com", 550, [3]int{5, 1, 1}, "Mailbox unavailable")
		}, verdict: notify.Rejected, code: "smtp_550"},
		{name: "greylisted", prepare: func(s *emailtest.Server) {
			s.FailRcpt("ops@example.com", 451, [3]int{4, 7, 1}, "Greylisted, try again later")
		}, verdict: notify.Retry, code: "smtp_451"},
		{name: "local error after data", prepare: func(s *emailtest.Server) {
			s.FailData(451, [3]int{4, 3, 0}, "Local error in processing")
		}, verdict: notify.Retry, code: "smtp_451"},
		{name: "too large", prepare: func(s *emailtest.Server) {
			s.FailData(552, [3]int{5, 3, 4}, "Message too big")
		}, verdict: notify.Content, code: "smtp_552"},
		{name: "spam", prepare: func(s *emailtest.Server) {
			s.FailData(554, [3]int{5, 7, 1}, "Message rejected as spam")
		}, verdict: notify.Rejected, code: "smtp_554"},
		{name: "wrong password", url: func(s *emailtest.Server) string {
			return strings.Replace(s.URL(), url(password), "wrong-password", 1)
		}, verdict: notify.Refused, code: "smtp_535"},
		{name: "no credentials where the server wants them", url: func(s *emailtest.Server) string {
			return "smtp://" + s.Addr()
		}, verdict: notify.Refused, code: "smtp_530"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, r := setup(t, c.opts)
			if c.url != nil {
				r = receiver(t, srv, c.url(srv))
			}
			if c.prepare != nil {
				c.prepare(srv)
			}
			err := send(t, r, formatter.Item{Alert: alert()})
			v, e := notify.VerdictOf(err)
			if e == nil {
				t.Fatalf("err = %v (%T), want *notify.Error", err, err)
			}
			if v != c.verdict || e.Code != c.code || e.Hint == "" || e.Receiver != "mail" {
				t.Errorf("verdict %v code %q hint %q, want %v %q (%v)", v, e.Code, e.Hint, c.verdict, c.code, err)
			}
			if len(srv.Messages()) != 0 {
				t.Error("the server took the mail")
			}
		})
	}
}

// url is s as it is written in a URL's user info.
func url(s string) string {
	return strings.NewReplacer("@", "%40", ":", "%3A").Replace(s)
}

func TestUntrustedCertificateIsRefused(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprint("implicit TLS ", implicit), func(t *testing.T) {
			srv := emailtest.Start(t, emailtest.Options{Username: user, Password: password, ImplicitTLS: implicit})
			server, _ := email.ParseSMTPURL(srv.URL())
			r, err := email.New(email.Config{To: email.Addresses{"ops@example.com"}}, server, email.Options{Name: "mail"})
			if err != nil {
				t.Fatal(err)
			}
			err = send(t, r, formatter.Item{Alert: alert()})
			v, e := notify.VerdictOf(err)
			if v != notify.Refused || e == nil || e.Code != "tls" || !strings.Contains(e.Hint, "certificate") {
				t.Fatalf("self-signed server: %v (%+v)", err, e)
			}
			if srv.AuthAttempts() != 0 {
				t.Error("the password went to a server whose certificate failed")
			}
		})
	}
}

func TestPlainTLSPortWithSMTPS(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: user, Password: password})
	r := receiver(t, srv, strings.Replace(srv.URL(), "smtp://", "smtps://", 1))
	err := send(t, r, formatter.Item{Alert: alert()})
	if v, e := notify.VerdictOf(err); v != notify.Refused || e.Code != "tls" || !strings.Contains(e.Hint, "smtp://") {
		t.Errorf("smtps:// to a STARTTLS port: %v (hint %q)", err, e.Hint)
	}
}

func TestPasswordIsNeverSentInClear(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: user, Password: password, NoTLS: true})
	r := receiver(t, srv, srv.URL())
	err := send(t, r, formatter.Item{Alert: alert()})
	if v, e := notify.VerdictOf(err); v != notify.Refused || e.Code != "auth" || !strings.Contains(e.Hint, "STARTTLS") {
		t.Errorf("server without TLS: %v", err)
	}
	if srv.AuthAttempts() != 0 {
		t.Error("the password was sent without TLS")
	}
}

func TestNoCredentialsNoTLS(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{NoTLS: true})
	r := receiver(t, srv, srv.URL())
	if err := send(t, r, formatter.Item{Alert: alert()}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages(); len(got) != 1 || got[0].TLS {
		t.Errorf("mails %+v", got)
	}
}

// TestGreeting has a server answer the connection with a reply code, as a
// busy or unwelcoming server does before any command.
func TestGreeting(t *testing.T) {
	for greeting, want := range map[string]notify.Verdict{
		"421 4.3.2 Service not available, try later": notify.Retry,
		"554 5.7.1 No SMTP service for you":          notify.Refused,
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, greeting+"\r\n")
			conn.Close()
		}()
		srv := emailtest.Start(t, emailtest.Options{})
		r := receiver(t, srv, "smtp://"+l.Addr().String())
		err = send(t, r, formatter.Item{Alert: alert()})
		l.Close()
		v, e := notify.VerdictOf(err)
		if v != want || e == nil || e.Code != "smtp_"+greeting[:3] || e.Hint == "" || !strings.Contains(e.Detail, greeting[10:]) {
			t.Errorf("greeting %q: %v (%+v), want %v", greeting, err, e, want)
		}
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := emailtest.Start(t, emailtest.Options{})
	r := receiver(t, srv, "smtp://"+url(user)+":"+url(password)+"@"+addr)
	err = send(t, r, formatter.Item{Alert: alert()})
	if v, e := notify.VerdictOf(err); v != notify.Retry || e.Code != "network" || !strings.Contains(e.Hint, "refused") {
		t.Errorf("closed port: %v (%+v)", err, e)
	}
	if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), url(password)) {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestPasswordNeverLeaks has the server echo the credentials it got and
// looks for the password in everything the receiver says or logs.
func TestPasswordNeverLeaks(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: user, Password: password + "x", EchoCredentials: true})
	server, err := email.ParseSMTPURL(strings.Replace(srv.URL(), url(password+"x"), url(password), 1))
	if err != nil {
		t.Fatal(err)
	}
	if server.Password != password {
		t.Fatalf("password %q", server.Password)
	}
	server.From = user
	r, err := email.New(email.Config{To: email.Addresses{"ops@example.com"}}, server, email.Options{Name: "mail", TLS: &tls.Config{RootCAs: srv.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	sendErr := send(t, r, formatter.Item{Alert: alert()})
	_, e := notify.VerdictOf(sendErr)
	if e == nil || e.Code != "smtp_535" || !strings.Contains(e.Detail, "bad credentials") {
		t.Fatalf("err %v", sendErr)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Error("send failed", "receiver", r, "smtp", server, "err", sendErr, "detail", e.Detail)
	said := []string{sendErr.Error(), e.Detail, e.Hint, fmt.Sprint(e.Err), logs.String(),
		fmt.Sprintf("%v %+v %#v %s", server, server, server, server), fmt.Sprintf("%v %+v %#v %s", r, r, r, r)}
	for _, s := range said {
		if strings.Contains(s, password) || strings.Contains(s, url(password)) {
			t.Errorf("%q shows the password", s)
		}
	}
	if !strings.Contains(e.Detail, notify.Mask(password)) {
		t.Errorf("detail %q lost the mask", e.Detail)
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want email.SMTP
	}{
		{"smtp://mail.example.com", email.SMTP{Host: "mail.example.com", Port: 587}},
		{"smtps://mail.example.com", email.SMTP{Host: "mail.example.com", Port: 465, ImplicitTLS: true}},
		{"smtp://u%40x.com:p%3Ass%40@mail.example.com:25", email.SMTP{Host: "mail.example.com", Port: 25, Username: "u@x.com", Password: "p:ss@"}},
		{" smtp://u@[::1]:2525/ ", email.SMTP{Host: "::1", Port: 2525, Username: "u"}},
	} {
		got, err := email.ParseSMTPURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSMTPURL(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if s, _ := email.ParseSMTPURL("smtp://u%40x.com:p%3Ass%40@mail.example.com:25"); s.String() != "smtp://u%40x.com@mail.example.com:25" {
		t.Errorf("String = %q", s.String())
	}
	for in, want := range map[string]string{
		"":                                   "scheme must be",
		"http://u:SECRETPW@mail.example.com": "scheme must be",
		"smtp://u:SECRETPW@":                 "no host",
		"smtp://u:SECRETPW@mail:0":           "port",
		"smtp://u:SECRETPW@mail:99999":       "port",
		"smtp://u:SECRETPW@mail:x":           "not a URL",
		"smtp://u:SECRETPW@mail/path":        "nothing may follow",
		"smtp://u:SECRETPW@mail?tls=1":       "nothing may follow",
		"smtp://:SECRETPW@mail":              "without a user name",
		"smtp://u:SECRET PW@ma il":           "not a URL",
		"smtp://u:SECRETPW%zz@mail":          "not a URL",
	} {
		_, err := email.ParseSMTPURL(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "RELAY_SMTP_URL: ") {
			t.Errorf("ParseSMTPURL(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func FuzzParseSMTPURL(f *testing.F) {
	const marker = "Pa55w0rdMARK"
	for _, s := range [][2]string{{"smtp://u:", "@host:25"}, {"smtps://", "@h"}, {"smtp://u:x", "%zz@h"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		s, err := email.ParseSMTPURL(prefix + marker + suffix)
		if err != nil {
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error shows the input: %v", err)
			}
			return
		}
		if s.Port < 1 || s.Port > 65535 || s.Host == "" {
			t.Errorf("parsed %+v", s)
		}
		if s.Password != "" && len(s.Password) >= 4 && !strings.Contains(s.Host+s.Username, s.Password) {
			for _, out := range []string{s.String(), fmt.Sprintf("%v %+v %#v", s, s, s)} {
				if strings.Contains(out, s.Password) {
					t.Errorf("%q shows the password %q", out, s.Password)
				}
			}
		}
	})
}

func TestNewValidates(t *testing.T) {
	server := email.SMTP{Host: "mail.example.com", Port: 587, Username: "alerts@example.com", Password: password}
	many := make(email.Addresses, 101)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@example.com", i)
	}
	for _, c := range []struct {
		name   string
		cfg    email.Config
		server email.SMTP
		want   string
	}{
		{"no recipients", email.Config{}, server, "to: missing"},
		{"empty entry", email.Config{To: email.Addresses{"a@example.com", " "}}, server, "to: entry 2 is empty"},
		{"not an address", email.Config{To: email.Addresses{"ops at example"}}, server, `to: "ops at example" is not a mail address`},
		{"too many", email.Config{To: many}, server, "to: 101 addresses, at most 100"},
		{"no SMTP", email.Config{To: email.Addresses{"a@example.com"}}, email.SMTP{}, "RELAY_SMTP_URL: not set"},
		{"no sender", email.Config{To: email.Addresses{"a@example.com"}}, email.SMTP{Host: "h", Port: 25, Username: "apikey", Password: password}, "RELAY_SMTP_FROM: not set"},
		{"bad sender", email.Config{To: email.Addresses{"a@example.com"}}, email.SMTP{Host: "h", Port: 25, From: "nobody"}, `RELAY_SMTP_FROM: "nobody"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := email.New(c.cfg, c.server, email.Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	r, err := email.New(email.Config{To: email.Addresses{"B@example.com, a@example.com"}}, server, email.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.MessageID(key); got != "relay."+key+"@example.com" {
		t.Errorf("sender defaults to the user name: Message-ID %q", got)
	}
	other, _ := email.New(email.Config{To: email.Addresses{"a@example.com", "b@EXAMPLE.com"}}, email.SMTP{Host: "other", Port: 25, From: "x@y.org"}, email.Options{})
	if other.Identity() != r.Identity() {
		t.Errorf("the same recipients are not the same identity: %q %q", other.Identity(), r.Identity())
	}
}

func TestMessageID(t *testing.T) {
	_, r := setup(t, emailtest.Options{})
	if a, b := r.MessageID(key), r.MessageID(key); a != b || a != "relay."+key+"@example.com" {
		t.Errorf("ids %q %q", a, b)
	}
	evil := r.MessageID("a>\r\nBcc: x@y")
	if !regexp.MustCompile(`^relay\.[0-9a-f]{32}@example\.com$`).MatchString(evil) {
		t.Errorf("unsafe key gave %q", evil)
	}
	if r.MessageID("k1") == r.MessageID("k2") {
		t.Error("two keys, one id")
	}
}

func TestAddressesFromYAML(t *testing.T) {
	for doc, want := range map[string]int{"to: ops@example.com": 1, "to: [a@example.com, b@example.com]": 2, "to:\n  - a@example.com\n": 1, "to:": 0} {
		var cfg email.Config
		if err := yamlUnmarshal(doc, &cfg); err != nil || len(cfg.To) != want {
			t.Errorf("%q: %v %v", doc, cfg.To, err)
		}
	}
	var cfg email.Config
	if err := yamlUnmarshal("to: {a: b}", &cfg); err == nil {
		t.Error("a map taken as addresses")
	}
}

func yamlUnmarshal(doc string, v any) error { return yaml.Unmarshal([]byte(doc), v) }

func TestDigest(t *testing.T) {
	srv, r := setup(t, emailtest.Options{})
	var items []formatter.Item
	for i, issue := range []string{"1", "2", "1", "3", "1"} {
		a := alert()
		a.IssueID, a.Title = issue, "issue "+issue
		a.Link = "https://sentry.example.com/issues/" + issue + "/"
		a.Time = now.Add(time.Duration(i) * time.Minute)
		items = append(items, formatter.Item{Alert: a})
	}
	msg, covered := r.Digest(items, false)
	if len(covered) != 5 || msg.Title() != "[api] 5 alerts · 3 issues" {
		t.Fatalf("covered %v title %q", covered, msg.Title())
	}
	if err := r.Notify(context.Background(), msg, key); err != nil {
		t.Fatal(err)
	}
	p := parse(t, srv.Messages()[0].Data)
	if i1, i3 := strings.Index(p.text, "issue 1 ×3"), strings.Index(p.text, "issue 3 ×1"); i1 < 0 || i3 < 0 || i1 > i3 {
		t.Errorf("rows are not one per issue, newest first:\n%s", p.text)
	}
	if strings.Count(p.html, `href="https://sentry.example.com/issues/`) != 3 {
		t.Errorf("html rows:\n%s", p.html)
	}
	plain, _ := r.Digest(items, true)
	if m := plain.(*email.Message); strings.Contains(m.HTML, "href=") || strings.Contains(m.Text, "https://") {
		t.Errorf("a plain digest has links:\n%s\n%s", m.HTML, m.Text)
	}
}

func TestDigestSplitsBySize(t *testing.T) {
	_, r := setup(t, emailtest.Options{})
	var items []formatter.Item
	for i := range 600 {
		a := alert()
		a.IssueID = fmt.Sprint(i)
		a.Title = fmt.Sprintf("issue %d %s", i, strings.Repeat("<&>", 60))
		a.Time = now.Add(time.Duration(i) * time.Second)
		items = append(items, formatter.Item{Alert: a})
	}
	seen := map[string]int{}
	mails := 0
	for rest := items; len(rest) > 0; mails++ {
		msg, covered := r.Digest(rest, false)
		m := msg.(*email.Message)
		if len(m.HTML) > email.MaxHTMLBytes || len(covered) == 0 || covered[0] != 0 {
			t.Fatalf("html %d bytes, covered %v", len(m.HTML), covered)
		}
		in := map[int]bool{}
		for _, i := range covered {
			in[i] = true
			seen[rest[i].Alert.IssueID]++
		}
		if len(covered) < len(rest) && !strings.Contains(m.Text, fmt.Sprintf("%d more alerts follow", len(rest)-len(covered))) {
			t.Errorf("a cut digest does not say more follow")
		}
		var left []formatter.Item
		for i, it := range rest {
			if !in[i] {
				left = append(left, it)
			}
		}
		rest = left
	}
	if mails < 2 || len(seen) != 600 {
		t.Errorf("%d mails, %d issues seen", mails, len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("issue %s in %d mails", id, n)
		}
	}
}

func TestHugeFieldsAreBounded(t *testing.T) {
	_, r := setup(t, emailtest.Options{})
	a := alert()
	a.Title = strings.Repeat("<", 100_000)
	a.Message = strings.Repeat("\"&", 100_000)
	a.Location, a.Release, a.Rule = strings.Repeat("'", 10_000), strings.Repeat("<", 10_000), strings.Repeat(">", 10_000)
	for range 200 {
		a.Evidence = append(a.Evidence, formatter.Evidence{Name: strings.Repeat("<", 1000), Value: strings.Repeat("&", 10_000)})
	}
	msg, _ := r.Card(formatter.Item{Alert: a, Note: strings.Repeat("n", 10_000)})
	m := msg.(*email.Message)
	if len(m.HTML) > email.MaxHTMLBytes {
		t.Errorf("card HTML %d bytes, limit %d", len(m.HTML), email.MaxHTMLBytes)
	}
	if !strings.Contains(m.HTML, `href="https://sentry.example.com/issues/42/"`) {
		t.Error("the compact card lost its link")
	}
	if len([]rune(m.Subject)) > 200 {
		t.Errorf("subject %d runes", len([]rune(m.Subject)))
	}
}

func TestMinimal(t *testing.T) {
	srv, r := setup(t, emailtest.Options{})
	msg := r.Minimal(formatter.Item{Alert: alert()})
	m := msg.(*email.Message)
	for _, s := range []string{m.HTML, m.Text} {
		if strings.Contains(s, "https://") || strings.Contains(s, "at line 10") || strings.Contains(s, "app.js") {
			t.Errorf("minimal mail carries a link, the message or the location:\n%s", s)
		}
		if !strings.Contains(s, "TypeError: x is undefined") || !strings.Contains(s, "prod") {
			t.Errorf("minimal mail lacks the title or the environment:\n%s", s)
		}
	}
	if err := r.Notify(context.Background(), msg, key); err != nil {
		t.Fatal(err)
	}
	parse(t, srv.Messages()[0].Data)
}

// TestGolden renders Sentry fixtures as a card and a digest in both
// languages; -update rewrites the files, which are reviewed like code.
func TestGolden(t *testing.T) {
	zone, _ := time.LoadLocation("Asia/Shanghai")
	var items []formatter.Item
	for _, name := range []string{"event_alert.triggered.json", "issue.created.json", "metric_alert.critical.mock.json"} {
		w, err := sentry.Parse(sentrytest.Resource(name), sentrytest.Fixture(t, name), sentry.Options{SentryURL: "https://sentry.example.com", Received: now})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		items = append(items, formatter.Item{Alert: w.Alert})
	}
	items[2].Note = "Fallback: robot ops could not deliver this (errcode 310000 since 10:42)"
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		server := email.SMTP{Host: "mail.example.com", Port: 587, From: "alerts@example.com"}
		r, err := email.New(email.Config{To: email.Addresses{"ops@example.com"}}, server, email.Options{Language: lang, Zone: zone})
		if err != nil {
			t.Fatal(err)
		}
		card, err := r.Card(items[0])
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "card."+lang, card)
		golden(t, "fallback."+lang, must(r.Card(items[2])))
		digest, covered := r.Digest(items, false)
		if len(covered) != len(items) {
			t.Fatalf("covered %v", covered)
		}
		golden(t, "digest."+lang, digest)
	}
}

func must(m notify.Message, err error) notify.Message {
	if err != nil {
		panic(err)
	}
	return m
}

func golden(t *testing.T, name string, msg notify.Message) {
	t.Helper()
	m := msg.(*email.Message)
	for ext, content := range map[string]string{"txt": "Subject: " + m.Subject + "\n\n" + m.Text, "html": m.HTML} {
		path := filepath.Join("testdata", "golden", name+"."+ext)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if string(want) != content {
			t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, content)
		}
	}
}
