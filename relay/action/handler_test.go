package action

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTamperedLinkPage sends every single-bit change of a card's link to the
// handler: each is a 403 page and Sentry is never called.
func TestTamperedLinkPage(t *testing.T) {
	h := newHarness(t, nil)
	link := h.link(kindResolve)
	token := strings.TrimPrefix(link, publicURL+pathPrefix)
	raw, err := encoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			target := publicURL + pathPrefix + encoding.EncodeToString(b)
			for _, resp := range []response{h.get(target), h.post(target)} {
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, h.svc.text.Forged) {
					t.Fatalf("byte %d bit %d: status %d, want 403 with %q", i, bit, resp.Status, h.svc.text.Forged)
				}
			}
		}
	}
	if calls := h.sentry.callLog(); len(calls) != 0 {
		t.Errorf("tampered links called Sentry: %v", calls)
	}
	if h.get(link).Status != http.StatusOK {
		t.Error("the untouched link does not work")
	}
}

// TestGetChangesNothing opens each action link: the page shows the issue as
// Sentry has it and one button, and Sentry is only read.
func TestGetChangesNothing(t *testing.T) {
	for _, k := range actions {
		t.Run(k.name(), func(t *testing.T) {
			h := newHarness(t, nil)
			resp := h.get(h.link(k))
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d:\n%s", resp.Status, resp.Body)
			}
			for _, want := range []string{
				html.EscapeString(`ZeroDivisionError: <b>division</b> by zero & "more"`),
				"backend", "BACKEND-4711", "错误", "未解决（持续）", "Li Lei",
				h.svc.text.Actions[k].Explain,
				`<form method="post"><button type="submit">` + h.svc.text.Actions[k].Label + `</button></form>`,
				h.svc.text.Footer,
			} {
				if !strings.Contains(resp.Body, want) {
					t.Errorf("page lacks %q:\n%s", want, resp.Body)
				}
			}
			if strings.Contains(resp.Body, "<b>division</b>") {
				t.Error("the issue title reached the page unescaped")
			}
			if got := h.sentry.callLog(); len(got) != 1 || got[0] != "GET /api/0/organizations/acme/issues/4711/" {
				t.Errorf("Sentry calls = %q, want exactly the issue's GET", got)
			}
			if h.sentry.get("acme", "4711").Status != "unresolved" {
				t.Error("GET changed the issue")
			}
		})
	}
}

// TestConfirmActs submits each page's form: one read, exactly one PUT with
// the documented body, the result page, the audit line and the counter. A
// second confirmation finds the issue in that state and sends nothing.
func TestConfirmActs(t *testing.T) {
	for _, tc := range []struct {
		kind              kind
		body              string
		status, substatus string
		ignoreUntil       time.Time
		shown             string // the new state on the result page
	}{
		{kindResolve, `{"status":"resolved"}`, "resolved", "", time.Time{}, "<dd>已解决</dd>"},
		{kindIgnoreHour, `{"status":"ignored","statusDetails":{"ignoreDuration":60}}`, "ignored", "archived_until_condition_met", start.Add(time.Hour),
			"<dd>已忽略，直到 2026-03-01 09:00 UTC</dd>"},
		{kindIgnoreEscalating, `{"status":"ignored","substatus":"archived_until_escalating","statusDetails":{}}`, "ignored", "archived_until_escalating", time.Time{},
			"<dd>已忽略，直到升级</dd>"},
	} {
		t.Run(tc.kind.name(), func(t *testing.T) {
			h := newHarness(t, nil)
			link := h.link(tc.kind)
			page := h.get(link)
			if !strings.Contains(page.Body, `<form method="post">`) {
				t.Fatalf("no form on the page:\n%s", page.Body)
			}
			resp := h.post(link)
			if resp.Status != http.StatusOK || !strings.Contains(resp.Body, h.svc.text.Actions[tc.kind].Done) {
				t.Fatalf("status %d, want 200 with %q:\n%s", resp.Status, h.svc.text.Actions[tc.kind].Done, resp.Body)
			}
			if !strings.Contains(resp.Body, `href="`+h.sentry.srv.URL+`/organizations/acme/issues/4711/"`) {
				t.Errorf("the result page does not link to the issue:\n%s", resp.Body)
			}
			if !strings.Contains(resp.Body, tc.shown) {
				t.Errorf("the result page does not show %s:\n%s", tc.shown, resp.Body)
			}
			if n := h.sentry.count(http.MethodPut); n != 1 {
				t.Fatalf("%d PUTs, want 1", n)
			}
			if h.sentry.puts[0] != tc.body {
				t.Errorf("PUT body %s, want %s", h.sentry.puts[0], tc.body)
			}
			is := h.sentry.get("acme", "4711")
			if is.Status != tc.status || is.Substatus != tc.substatus || !is.IgnoreUntil.Equal(tc.ignoreUntil) {
				t.Errorf("issue is %s/%s until %v, want %s/%s until %v", is.Status, is.Substatus, is.IgnoreUntil, tc.status, tc.substatus, tc.ignoreUntil)
			}
			if got := h.counted(tc.kind.name(), "done"); got != 1 {
				t.Errorf("actions_total{done} = %v, want 1", got)
			}
			logs := h.logs.String()
			for _, want := range []string{`"msg":"issue action"`, `"org":"acme"`, `"issue":4711`, `"action":"` + tc.kind.name() + `"`,
				`"outcome":"done"`, `"client":"192.0.2.1"`, `"user_agent":"Mozilla/5.0 DingTalk/7.6.0"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("audit log lacks %s:\n%s", want, logs)
				}
			}

			again := h.post(link)
			if again.Status != http.StatusOK || !strings.Contains(again.Body, h.svc.text.Actions[tc.kind].Already) {
				t.Errorf("second confirmation: status %d, want 200 with %q:\n%s", again.Status, h.svc.text.Actions[tc.kind].Already, again.Body)
			}
			if n := h.sentry.count(http.MethodPut); n != 1 {
				t.Errorf("%d PUTs after confirming twice, want 1", n)
			}
			if got := h.counted(tc.kind.name(), "already"); got != 1 {
				t.Errorf("actions_total{already} = %v, want 1", got)
			}
			if shown := h.get(link); strings.Contains(shown.Body, "<form") {
				t.Errorf("the page offers a button for an issue already in that state:\n%s", shown.Body)
			}
		})
	}
}

// TestAlreadyInState decides per action whether the issue's current state is
// the one asked for.
func TestAlreadyInState(t *testing.T) {
	for _, tc := range []struct {
		name              string
		kind              kind
		status, substatus string
		ignoreUntil       time.Duration // from start; 0 for none
		already           bool
	}{
		{"resolve a resolved issue", kindResolve, "resolved", "", 0, true},
		{"resolve an ignored issue", kindResolve, "ignored", "archived_forever", 0, false},
		{"ignore an issue ignored for a while", kindIgnoreHour, "ignored", "archived_until_condition_met", 30 * time.Minute, true},
		{"ignore an issue whose ignore ran out", kindIgnoreHour, "ignored", "archived_until_condition_met", -time.Minute, false},
		{"ignore an issue ignored until escalating", kindIgnoreHour, "ignored", "archived_until_escalating", 0, false},
		{"escalating on escalating", kindIgnoreEscalating, "ignored", "archived_until_escalating", 0, true},
		{"escalating on ignored forever", kindIgnoreEscalating, "ignored", "archived_forever", 0, false},
		{"escalating on unresolved", kindIgnoreEscalating, "unresolved", "escalating", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			is := h.sentry.get("acme", "4711")
			is.Status, is.Substatus = tc.status, tc.substatus
			if tc.ignoreUntil != 0 {
				is.IgnoreUntil = start.Add(tc.ignoreUntil)
			}
			h.sentry.add(is)
			resp := h.post(h.link(tc.kind))
			puts := h.sentry.count(http.MethodPut)
			if tc.already && (puts != 0 || !strings.Contains(resp.Body, h.svc.text.Actions[tc.kind].Already)) {
				t.Errorf("%d PUTs, want none and the 'already' sentence:\n%s", puts, resp.Body)
			}
			if !tc.already && puts != 1 {
				t.Errorf("%d PUTs, want 1", puts)
			}
		})
	}
}

// TestSentryErrorsExplained makes Sentry fail in each way, on reading and on
// writing: the page says what happened in the page's language, nothing is
// retried, and the counter names the failure.
func TestSentryErrorsExplained(t *testing.T) {
	for _, lang := range []string{"zh-CN", "en"} {
		tx := textSets[lang]
		for _, tc := range []struct {
			name     string
			edit     func(*Config)
			fail     func(h *harness)
			status   int
			sentence string
			outcome  string
		}{
			{"wrong token", func(c *Config) { c.AuthToken = "sntrys_wrong" }, nil, http.StatusBadGateway, tx.SentryUnauthorized, "sentry_unauthorized"},
			{"no permission", nil, func(h *harness) { h.sentry.fail(http.StatusForbidden) }, http.StatusBadGateway, tx.SentryForbidden, "sentry_forbidden"},
			{"issue gone", nil, func(h *harness) { h.issue.ID = "999" }, http.StatusNotFound, tx.SentryGone, "not_found"},
			{"server error", nil, func(h *harness) { h.sentry.fail(http.StatusServiceUnavailable) }, http.StatusBadGateway, tx.SentryStatus(503), "sentry_error"},
			{"unreachable", nil, func(h *harness) { h.sentry.srv.Close() }, http.StatusBadGateway, tx.SentryUnreachable, "sentry_unreachable"},
		} {
			t.Run(lang+"/"+tc.name, func(t *testing.T) {
				h := newHarness(t, func(c *Config) {
					c.Language = lang
					if tc.edit != nil {
						tc.edit(c)
					}
				})
				if tc.fail != nil {
					tc.fail(h)
				}
				link := h.link(kindResolve)
				for _, resp := range []response{h.get(link), h.post(link)} {
					if resp.Status != tc.status || !strings.Contains(resp.Body, html.EscapeString(tc.sentence)) {
						t.Errorf("status %d, want %d with %q:\n%s", resp.Status, tc.status, tc.sentence, resp.Body)
					}
				}
				if calls := h.sentry.callLog(); len(calls) > 2 {
					t.Errorf("Sentry called %d times for one GET and one POST, want at most 2: %q", len(calls), calls)
				}
				if n := h.sentry.count(http.MethodPut); n != 0 {
					t.Errorf("%d PUTs after the read failed", n)
				}
				if got := h.counted("resolve", tc.outcome); got != 1 {
					t.Errorf("actions_total{%s} = %v, want 1", tc.outcome, got)
				}
			})
		}
	}
}

// failingPut passes reads through and loses every write's answer, as when
// Sentry takes the PUT and the connection drops before it answers.
type failingPut struct{ next http.RoundTripper }

func (f failingPut) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		resp, err := f.next.RoundTrip(r)
		if err == nil {
			resp.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: context.DeadlineExceeded}
	}
	return f.next.RoundTrip(r)
}

func TestUnansweredWriteIsNotRetried(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.HTTP = &http.Client{Transport: failingPut{http.DefaultTransport}} })
	resp := h.post(h.link(kindResolve))
	if resp.Status != http.StatusBadGateway || !strings.Contains(resp.Body, h.svc.text.SentryUncertain) {
		t.Errorf("status %d, want 502 with %q:\n%s", resp.Status, h.svc.text.SentryUncertain, resp.Body)
	}
	if n := h.sentry.count(http.MethodPut); n != 1 {
		t.Errorf("%d PUTs, want exactly 1", n)
	}
	if got := h.counted("resolve", "sentry_unreachable"); got != 1 {
		t.Errorf("actions_total{sentry_unreachable} = %v, want 1", got)
	}
}

// TestNoRedirects points Sentry's answer at another host: the default client
// does not follow, so the token never travels there.
func TestNoRedirects(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere++ }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirect.Close()
	h := newHarness(t, func(c *Config) { c.SentryURL = redirect.URL })
	resp := h.get(h.link(kindResolve))
	if resp.Status != http.StatusBadGateway || !strings.Contains(resp.Body, h.svc.text.SentryStatus(http.StatusFound)) {
		t.Errorf("status %d, want 502 with %q:\n%s", resp.Status, h.svc.text.SentryStatus(http.StatusFound), resp.Body)
	}
	if elsewhere != 0 {
		t.Errorf("the redirect was followed %d times", elsewhere)
	}
}

func TestUnreadableAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>login</html>"))
	}))
	defer srv.Close()
	h := newHarness(t, func(c *Config) { c.SentryURL = srv.URL })
	resp := h.get(h.link(kindResolve))
	if resp.Status != http.StatusBadGateway || !strings.Contains(resp.Body, h.svc.text.SentryBadAnswer) {
		t.Errorf("status %d, want 502 with %q:\n%s", resp.Status, h.svc.text.SentryBadAnswer, resp.Body)
	}
}

// TestExpiry uses a TTL of a few seconds: the link works until then; after,
// GET and POST answer 410 with the issue's Sentry link and call nothing.
func TestExpiry(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TTL = 3 * time.Second })
	h.clock.Add(250 * time.Millisecond)
	link := h.link(kindResolve)
	h.clock.Add(2*time.Second + 650*time.Millisecond)
	if resp := h.get(link); resp.Status != http.StatusOK {
		t.Fatalf("before the TTL ran out: status %d", resp.Status)
	}
	h.clock.Add(350 * time.Millisecond)
	calls := len(h.sentry.callLog())
	for _, resp := range []response{h.get(link), h.post(link)} {
		if resp.Status != http.StatusGone || !strings.Contains(resp.Body, h.svc.text.Expired) {
			t.Errorf("status %d, want 410 with %q:\n%s", resp.Status, h.svc.text.Expired, resp.Body)
		}
		if !strings.Contains(resp.Body, `href="`+h.sentry.srv.URL+`/organizations/acme/issues/4711/"`) {
			t.Errorf("the 410 page does not link to the issue:\n%s", resp.Body)
		}
	}
	if got := len(h.sentry.callLog()); got != calls {
		t.Errorf("expired link called Sentry %d times", got-calls)
	}
	if got := h.counted("resolve", "expired"); got != 1 {
		t.Errorf("actions_total{expired} = %v, want 1", got)
	}
}

// TestCrossSiteRefused confirms from other sites: refused before any Sentry
// call. The page's own form, and a proxy that rewrites Host, still work.
func TestCrossSiteRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]string
		host    string
		ok      bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", false},
		{"same-site fetch metadata", map[string]string{"Sec-Fetch-Site": "same-site"}, "", false},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, "", false},
		{"foreign origin behind a proxy", map[string]string{"Origin": "https://evil.example"}, "relay:8080", false},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": publicURL}, "", true},
		{"public origin behind a proxy", map[string]string{"Origin": publicURL}, "relay:8080", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := httptest.NewRequest(http.MethodPost, h.link(kindResolve), nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if tc.host != "" {
				r.Host = tc.host
			}
			resp := h.do(r)
			puts := h.sentry.count(http.MethodPut)
			if tc.ok && (resp.Status != http.StatusOK || puts != 1) {
				t.Errorf("status %d with %d PUTs, want 200 and 1:\n%s", resp.Status, puts, resp.Body)
			}
			if !tc.ok {
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, h.svc.text.CrossSite) {
					t.Errorf("status %d, want 403 with %q:\n%s", resp.Status, h.svc.text.CrossSite, resp.Body)
				}
				if calls := h.sentry.callLog(); len(calls) != 0 {
					t.Errorf("cross-site POST called Sentry: %q", calls)
				}
			}
		})
	}
}

// TestRateLimit gives one client five confirmations a minute: the sixth is a
// 429 that calls nothing; another client is unaffected, and the budget
// comes back with time.
func TestRateLimit(t *testing.T) {
	h := newHarness(t, nil)
	link := h.link(kindResolve)
	for i := range actionsBurst {
		if resp := h.post(link); resp.Status != http.StatusOK {
			t.Fatalf("confirmation %d: status %d", i+1, resp.Status)
		}
	}
	calls := len(h.sentry.callLog())
	resp := h.post(link)
	if resp.Status != http.StatusTooManyRequests || !strings.Contains(resp.Body, h.svc.text.RateLimited) {
		t.Fatalf("status %d, want 429 with %q:\n%s", resp.Status, h.svc.text.RateLimited, resp.Body)
	}
	if resp.Header.Get("Retry-After") != "12" {
		t.Errorf("Retry-After %q, want 12", resp.Header.Get("Retry-After"))
	}
	if got := len(h.sentry.callLog()); got != calls {
		t.Errorf("a limited confirmation called Sentry %d times", got-calls)
	}
	if got := h.counted("resolve", "rate_limited"); got != 1 {
		t.Errorf("actions_total{rate_limited} = %v, want 1", got)
	}
	if resp := h.get(link); resp.Status != http.StatusOK {
		t.Errorf("opening a page is not limited: status %d", resp.Status)
	}
	other := httptest.NewRequest(http.MethodPost, link, nil)
	other.RemoteAddr = "203.0.113.9:5555"
	if resp := h.do(other); resp.Status != http.StatusOK {
		t.Errorf("another client: status %d", resp.Status)
	}
	h.clock.Add(actionsEvery)
	if resp := h.post(link); resp.Status != http.StatusOK {
		t.Errorf("after %v: status %d", actionsEvery, resp.Status)
	}
}

func TestClientLimiterBounded(t *testing.T) {
	l := newClientLimiter(time.Minute, 1, 3)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if !l.allow(k, start) {
			t.Errorf("first action of %s refused", k)
		}
	}
	if l.len() != 3 {
		t.Errorf("remembers %d clients, want 3", l.len())
	}
	if l.allow("e", start) {
		t.Error("a remembered client got a second action")
	}
	if !l.allow("a", start) {
		t.Error("the evicted oldest client was not forgotten")
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7:40000":         "198.51.100.7",
		"[::ffff:198.51.100.7]:1":    "198.51.100.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1]:443":   "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":          "fe80::/64",
		"not an address":             "not an address",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPaths(t *testing.T) {
	h := newHarness(t, nil)
	link := h.link(kindResolve)
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{http.MethodGet, publicURL + "/action/", http.StatusNotFound},
		{http.MethodGet, link + "/more", http.StatusNotFound},
		{http.MethodGet, publicURL + "/other/x", http.StatusNotFound},
		{http.MethodGet, link + "?dd_nav=1", http.StatusOK},
		{http.MethodHead, link, http.StatusOK},
		{http.MethodPut, link, http.StatusMethodNotAllowed},
		{http.MethodDelete, link, http.StatusMethodNotAllowed},
	} {
		resp := h.do(httptest.NewRequest(tc.method, tc.target, nil))
		if resp.Status != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, resp.Status, tc.status)
		}
	}
	if n := h.sentry.count(http.MethodPut); n != 0 {
		t.Errorf("%d PUTs", n)
	}
}

var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// TestSecurityHeaders checks every kind of page for the headers that keep it
// out of caches, frames and Referers, and that the CSP's style hash is the
// page's own stylesheet.
func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TTL = time.Minute })
	link := h.link(kindResolve)
	pages := map[string]response{
		"200 confirm": h.get(link),
		"200 review":  h.get(h.svc.Review([]Issue{h.issue}).URL),
		"403 forged":  h.get(link[:len(link)-2] + "AA"),
		"403 csrf":    h.do(withHeader(httptest.NewRequest(http.MethodPost, link, nil), "Sec-Fetch-Site", "cross-site")),
		"404":         h.get(publicURL + "/action/a/b"),
		"405":         h.do(httptest.NewRequest(http.MethodPatch, link, nil)),
	}
	h.sentry.fail(http.StatusForbidden)
	pages["502 sentry"] = h.get(link)
	h.sentry.fail(0)
	for range actionsBurst + 1 {
		pages["429"] = h.post(link)
	}
	h.clock.Add(time.Minute)
	pages["410"] = h.get(link)
	want := map[string]string{
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Content-Type":           "text/html; charset=utf-8",
	}
	for name, resp := range pages {
		if !strings.HasPrefix(name, strconv.Itoa(resp.Status)) {
			t.Errorf("%s: status %d", name, resp.Status)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		policy := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(policy, d) {
				t.Errorf("%s: CSP %q lacks %s", name, policy, d)
			}
		}
		if strings.Contains(policy, "unsafe") || strings.Contains(policy, "script-src") {
			t.Errorf("%s: CSP %q allows more than it must", name, policy)
		}
		m := styleBlock.FindStringSubmatch(resp.Body)
		if m == nil || !strings.Contains(policy, "style-src 'sha256-"+styleHash(m[1])+"'") {
			t.Errorf("%s: CSP %q does not allow the page's stylesheet", name, policy)
		}
		if !strings.Contains(resp.Body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
			t.Errorf("%s: no viewport meta", name)
		}
		if strings.Contains(resp.Body, "<script") {
			t.Errorf("%s: page has a script", name)
		}
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

// TestOriginInLink leaves SENTRY_URL unset: the link carries the issue's
// Sentry origin and the pages call Sentry there.
func TestOriginInLink(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SentryURL = "" })
	link := h.link(kindResolve)
	c, err := open(testKey, strings.TrimPrefix(link, publicURL+pathPrefix), start.Unix())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.groups[0].origin; got != h.sentry.srv.URL {
		t.Errorf("link carries origin %q, want %q", got, h.sentry.srv.URL)
	}
	if resp := h.post(link); resp.Status != http.StatusOK || h.sentry.count(http.MethodPut) != 1 {
		t.Errorf("status %d with %d PUTs, want 200 and 1", resp.Status, h.sentry.count(http.MethodPut))
	}
	h.issue.URL = "javascript:alert(1)"
	if links := h.svc.Links(h.issue); len(links) != 0 {
		t.Errorf("an issue without an http(s) URL got links %v", links)
	}
}

func TestMetricsInitialised(t *testing.T) {
	h := newHarness(t, nil)
	if n := testutil.CollectAndCount(h.reg, "sentry_dingtalk_relay_actions_total"); n != len(actions)*len(outcomes) {
		t.Errorf("%d series, want every action × outcome = %d", n, len(actions)*len(outcomes))
	}
	if _, err := New(Config{PublicURL: publicURL, Key: testKey, AuthToken: testToken, Registerer: h.reg}); err == nil {
		t.Error("registering twice did not fail")
	}
}

func TestClientAddr(t *testing.T) {
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct", "203.0.113.9:5555", nil, "203.0.113.9"},
		{"direct, forged header", "203.0.113.9:5555", []string{"198.51.100.1"}, "203.0.113.9"},
		{"behind an ingress", "10.1.2.3:40000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"behind an ingress, client-sent entries first", "10.1.2.3:40000", []string{"1.1.1.1, 2.2.2.2", "198.51.100.7"}, "198.51.100.7"},
		{"loopback proxy", "127.0.0.1:40000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"proxy without the header", "10.1.2.3:40000", nil, "10.1.2.3"},
		{"garbage header", "10.1.2.3:40000", []string{"<script>"}, "10.1.2.3"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/action/x", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
