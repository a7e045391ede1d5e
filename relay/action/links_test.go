package action

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestLinks(t *testing.T) {
	for _, tc := range []struct {
		lang   string
		labels []string
	}{
		{"zh-CN", []string{"解决", "忽略 1 小时", "忽略直到升级", "在钉钉中打开"}},
		{"en", []string{"Resolve", "Ignore for 1 hour", "Ignore until it escalates", "Open in DingTalk"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Language = tc.lang })
			h.issue.URL = "https://sentry.example.com/organizations/acme/issues/4711/?referrer=alert&x=a b"
			links := h.svc.Links(h.issue)
			var labels []string
			for _, l := range links {
				labels = append(labels, l.Label)
			}
			if strings.Join(labels, "|") != strings.Join(tc.labels, "|") {
				t.Fatalf("labels %q, want %q", labels, tc.labels)
			}
			for i, k := range actions {
				token, ok := strings.CutPrefix(links[i].URL, publicURL+"/action/")
				if !ok {
					t.Fatalf("link %q is not under %s/action/", links[i].URL, publicURL)
				}
				c, err := open(testKey, token, start.Unix())
				if err != nil || c.kind != k || c.groups[0].org != "acme" || c.groups[0].ids[0] != 4711 || c.groups[0].origin != "" {
					t.Errorf("link %d opens as %+v, %v", i, c, err)
				}
				if c.expires != start.Add(DefaultTTL).Unix() {
					t.Errorf("link %d expires at %d, want now+168h", i, c.expires)
				}
			}
			want := "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fsentry.example.com%2Forganizations%2Facme%2Fissues%2F4711%2F%3Freferrer%3Dalert%26x%3Da+b&pc_slide=true"
			if got := links[3].URL; got != want {
				t.Errorf("Open in DingTalk = %q, want %q", got, want)
			}
		})
	}
}

func TestLinksLeftOut(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name  string
		issue Issue
		want  int
	}{
		{"short id instead of the numeric id", Issue{Org: "acme", ID: "BACKEND-12", URL: h.issue.URL}, 1},
		{"id with a leading zero", Issue{Org: "acme", ID: "0471", URL: h.issue.URL}, 1},
		{"no organisation", Issue{ID: "4711", URL: h.issue.URL}, 1},
		{"no web URL", Issue{Org: "acme", ID: "4711"}, 3},
		{"nothing", Issue{}, 0},
	} {
		if got := h.svc.Links(tc.issue); len(got) != tc.want {
			t.Errorf("%s: %d links, want %d: %v", tc.name, len(got), tc.want, got)
		}
	}
	if got := h.svc.Review([]Issue{{Org: "acme", ID: "x"}}); got != (Link{}) {
		t.Errorf("review of no actionable issue = %+v, want the zero Link", got)
	}
}

// TestLinkBudget makes links from the longest plausible values (a long
// public URL, Sentry's longest organisation slug, a Sentry origin carried in
// the link, the largest id) and from typical ones: card links stay small
// next to DingTalk's 20000-byte message budget.
func TestLinkBudget(t *testing.T) {
	longPublic := "https://sentry-dingtalk-relay.monitoring.example-company.com.cn" // 64 bytes
	h := newHarness(t, func(c *Config) { c.PublicURL = longPublic; c.SentryURL = "" })
	is := Issue{
		Org: strings.Repeat("o", 50),
		ID:  "18446744073709551615",
		URL: "https://sentry.monitoring.example-company.com.cn/organizations/o/issues/18446744073709551615/",
	}
	for _, l := range h.svc.Links(is)[:3] {
		t.Logf("longest %s link: %d bytes", l.Label, len(l.URL))
		if len(l.URL) > 300 {
			t.Errorf("%s link is %d bytes, budget 300: %s", l.Label, len(l.URL), l.URL)
		}
	}
	typical := newHarness(t, nil).svc.Links(Issue{Org: "acme", ID: "6123456789", URL: "https://sentry.example.com/organizations/acme/issues/6123456789/"})
	t.Logf("typical link (SENTRY_URL set): %d bytes", len(typical[0].URL))
	if len(typical[0].URL) > 150 {
		t.Errorf("typical link is %d bytes, budget 150", len(typical[0].URL))
	}
	var many []Issue
	for i := range maxReview + 20 {
		many = append(many, Issue{Org: "acme", ID: fmt.Sprint(6_100_000_000 + i*7919), URL: "https://sentry.example.com/x"})
	}
	review := newHarness(t, nil).svc.Review(many)
	t.Logf("review of %d issues: %d bytes", maxReview, len(review.URL))
	if len(review.URL) > 600 {
		t.Errorf("review link is %d bytes, budget 600", len(review.URL))
	}
	if review.Label != "查看这 100 个问题" {
		t.Errorf("review label %q: the link holds the first 100 issues", review.Label)
	}
}

// TestReviewPage lists a digest's issues with one Sentry call: rows with
// title and status, and per-issue action links that lead to working
// confirmation pages; a deleted issue says so.
func TestReviewPage(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Language = "en" })
	h.sentry.add(fakeIssue{Org: "acme", ID: "4712", Title: "Timeout in checkout", Project: "shop", Level: "warning", Status: "resolved"})
	issues := []Issue{h.issue, {Org: "acme", ID: "4712", URL: h.issue.URL}, {Org: "acme", ID: "4799", URL: h.issue.URL}, h.issue}
	link := h.svc.Review(issues)
	if link.Label != "Review these 3 issues" {
		t.Errorf("label %q", link.Label)
	}
	resp := h.get(link.URL)
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d:\n%s", resp.Status, resp.Body)
	}
	calls := h.sentry.callLog()
	if len(calls) != 1 || calls[0] != "GET /api/0/organizations/acme/issues/?group=4711&group=4712&group=4799&project=-1" {
		t.Errorf("Sentry calls %q, want one list call", calls)
	}
	for _, want := range []string{"Timeout in checkout", "BACKEND-4711", "Unresolved (ongoing)", "SHOP-4712", "Resolved", "#4799", h.svc.text.Missing} {
		if !strings.Contains(resp.Body, want) {
			t.Errorf("review page lacks %q:\n%s", want, resp.Body)
		}
	}
	actionLinks := regexp.MustCompile(`href="(`+regexp.QuoteMeta(publicURL)+`/action/[^"]+)"`).FindAllStringSubmatch(resp.Body, -1)
	// 4711 gets all three actions; 4712 is resolved, so it gets the two ignores.
	if len(actionLinks) != 5 {
		t.Fatalf("%d action links, want 5:\n%s", len(actionLinks), resp.Body)
	}
	if resp := h.post(actionLinks[0][1]); resp.Status != http.StatusOK || h.sentry.count(http.MethodPut) != 1 {
		t.Errorf("a row's link: status %d with %d PUTs", resp.Status, h.sentry.count(http.MethodPut))
	}
	if resp := h.post(link.URL); resp.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST to a review link: status %d, want 405", resp.Status)
	}
}

func TestNewConfigErrors(t *testing.T) {
	good := Config{PublicURL: publicURL, Key: testKey, AuthToken: testToken}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no public URL", func(c *Config) { c.PublicURL = "" }, "RELAY_PUBLIC_URL"},
		{"relative public URL", func(c *Config) { c.PublicURL = "sentry-relay.example.com" }, "RELAY_PUBLIC_URL"},
		{"public URL with a query", func(c *Config) { c.PublicURL = publicURL + "?a=1" }, "RELAY_PUBLIC_URL"},
		{"short key", func(c *Config) { c.Key = testKey[:31] }, "RELAY_ACTION_KEY is 31 bytes, shorter than 32"},
		{"negative TTL", func(c *Config) { c.TTL = -time.Hour }, "RELAY_ACTION_TTL"},
		{"sub-second TTL", func(c *Config) { c.TTL = time.Millisecond }, "RELAY_ACTION_TTL"},
		{"bad Sentry URL", func(c *Config) { c.SentryURL = "ftp://sentry" }, "SENTRY_URL"},
		{"no token", func(c *Config) { c.AuthToken = " " }, "SENTRY_AUTH_TOKEN"},
		{"unknown language", func(c *Config) { c.Language = "fr" }, "RELAY_LANGUAGE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), string(testKey)) || strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	for _, edit := range []func(*Config){
		func(*Config) {},
		func(c *Config) {
			c.TTL = 3 * time.Second
			c.Language = "en"
			c.SentryURL = "https://sentry.example.com/"
		},
		func(c *Config) { c.PublicURL = "http://127.0.0.1:8080/relay/" },
	} {
		cfg := good
		edit(&cfg)
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

// TestSecretsNeverShown goes through every page with a wrong token and a
// failing Sentry: neither the token nor the key appears in any page, log
// line or metric.
func TestSecretsNeverShown(t *testing.T) {
	h := newHarness(t, nil)
	link := h.link(kindResolve)
	var bodies []string
	add := func(r response) { bodies = append(bodies, r.Body+fmt.Sprint(r.Header)) }
	add(h.get(link))
	add(h.post(link))
	add(h.get(link[:len(link)-3] + "AAA"))
	h.sentry.fail(http.StatusUnauthorized)
	add(h.get(link))
	add(h.post(h.link(kindIgnoreHour)))
	h.sentry.srv.Close()
	add(h.post(h.link(kindIgnoreEscalating)))
	add(h.get(h.svc.Review([]Issue{h.issue}).URL))

	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	everything := strings.Join(bodies, "\n") + h.logs.String() + fmt.Sprint(families)
	for name, secret := range map[string]string{"token": testToken, "token's tail": testToken[len(testToken)-8:], "key": string(testKey), "key's tail": string(testKey[len(testKey)-8:])} {
		if strings.Contains(everything, secret) {
			t.Errorf("the %s appears in a page, log or metric", name)
		}
	}
	if !strings.Contains(h.logs.String(), `"outcome":"sentry_unauthorized"`) {
		t.Errorf("the failures were not logged at all:\n%s", h.logs.String())
	}
}

// TestGoldenPages renders each kind of page in both languages and compares
// it with testdata/golden; go test -update rewrites them.
func TestGoldenPages(t *testing.T) {
	for _, lang := range []string{"zh-CN", "en"} {
		h := newHarness(t, func(c *Config) { c.Language = lang; c.Registerer = prometheus.NewRegistry() })
		h.sentry.add(fakeIssue{Org: "acme", ID: "4712", Title: "Timeout in checkout", Project: "shop", Level: "warning",
			Status: "ignored", Substatus: "archived_until_condition_met", IgnoreUntil: start.Add(30 * time.Minute), Assignee: "payments", AssigneeType: "team"})
		resolve, ignore := h.link(kindResolve), h.link(kindIgnoreHour)
		pages := map[string]func() response{
			"confirm": func() response { return h.get(resolve) },
			"done":    func() response { return h.post(resolve) },
			"already": func() response { return h.post(resolve) },
			"review": func() response {
				return h.get(h.svc.Review([]Issue{h.issue, {Org: "acme", ID: "4712"}, {Org: "acme", ID: "4799"}}).URL)
			},
			"forged":    func() response { return h.get(resolve[:len(resolve)-2] + "AA") },
			"not-found": func() response { return h.get(publicURL + "/action/") },
			"forbidden": func() response { h.sentry.fail(http.StatusForbidden); defer h.sentry.fail(0); return h.get(ignore) },
			"rate-limit": func() response {
				var r response
				for range actionsBurst + 1 {
					r = h.post(ignore)
				}
				return r
			},
			"expired": func() response { h.clock.Add(DefaultTTL); return h.get(resolve) },
		}
		for _, name := range []string{"confirm", "done", "already", "review", "forged", "not-found", "forbidden", "rate-limit", "expired"} {
			t.Run(lang+"/"+name, func(t *testing.T) {
				body := strings.ReplaceAll(pages[name]().Body, h.sentry.srv.URL, "https://sentry.example.com")
				golden(t, filepath.Join("testdata", "golden", lang+"-"+name+".html"), body)
			})
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, got)
	}
}

// TestReviewTwoOrganisations lists issues of two organisations: one list
// call each, every issue on the page.
func TestReviewTwoOrganisations(t *testing.T) {
	h := newHarness(t, nil)
	h.sentry.add(fakeIssue{Org: "beta", ID: "12", Title: "Beta crash", Project: "app", Level: "fatal", Status: "unresolved"})
	resp := h.get(h.svc.Review([]Issue{h.issue, {Org: "beta", ID: "12"}}).URL)
	calls := h.sentry.callLog()
	want := []string{
		"GET /api/0/organizations/acme/issues/?group=4711&project=-1",
		"GET /api/0/organizations/beta/issues/?group=12&project=-1",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("Sentry calls %q, want %q", calls, want)
	}
	for _, s := range []string{"Beta crash", "APP-12", "BACKEND-4711"} {
		if !strings.Contains(resp.Body, s) {
			t.Errorf("review page lacks %q", s)
		}
	}
}
