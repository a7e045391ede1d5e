package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

// sentryAPI is a fake of Sentry's issue API: one issue, the token it
// accepts, the answer it gives, and every call it saw.
type sentryAPI struct {
	mu     sync.Mutex
	status string
	answer int // 0: answer normally
	calls  []string
}

func (s *sentryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path+" "+string(body))
	if r.Header.Get("Authorization") != "Bearer sntrys_integration_token" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.answer != 0 {
		w.WriteHeader(s.answer)
		return
	}
	if r.URL.Path != "/api/0/organizations/test-org/issues/1117540176/" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method == http.MethodPut {
		var req struct{ Status string }
		json.Unmarshal(body, &req)
		s.status = req.Status
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": "1117540176", "title": "ReferenceError: heck is not defined", "level": "error",
		"status": s.status, "project": map[string]string{"slug": "front-end"}})
}

func (s *sentryAPI) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

var resolveLink = regexp.MustCompile(`\[(?:Resolve|解决)\]\((http[^)]+)\)`)

// TestActFromTheCard: a card arrives with its action links; opening one
// changes nothing, confirming it resolves the issue with exactly one PUT,
// and forged, expired or refused links say so without calling Sentry.
func TestActFromTheCard(t *testing.T) {
	api := &sentryAPI{status: "unresolved"}
	sentrySrv := httptest.NewServer(api)
	defer sentrySrv.Close()
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	ts := dt.Start(t)
	addr := freeAddr(t)
	p := startRelayAt(t, t.TempDir(), addr, "DINGTALK_TOKENS="+tok1, "DINGTALK_API_URL="+ts.URL+"/robot/send", "RELAY_LANGUAGE=en",
		"RELAY_PUBLIC_URL=http://"+addr, "SENTRY_AUTH_TOKEN=sntrys_integration_token", "RELAY_ACTION_KEY="+strings.Repeat("k", 32),
		"RELAY_ACTION_TTL=6s", "SENTRY_URL="+sentrySrv.URL, "SENTRY_CLIENT_SECRET=cs")
	alert := func(event string) string {
		body := strings.Replace(string(sentrytest.Fixture(t, "event_alert.triggered.json")), "e4874d664c3540c1a32eab185f12c5ab", event, 1)
		n := len(dt.Messages(tok1))
		resp, err := http.DefaultClient.Do(sentrytest.Request("http://"+addr+"/sentry/webhook", "event_alert", "cs", []byte(body)))
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("webhook: %v %v", resp, err)
		}
		waitUntil(t, 10*time.Second, "the card", func() bool { return len(dt.Messages(tok1)) > n })
		m := resolveLink.FindStringSubmatch(dt.Messages(tok1)[n].Text)
		if m == nil {
			t.Fatalf("card without a Resolve link:\n%s", dt.Messages(tok1)[n].Text)
		}
		return m[1]
	}
	link := alert("aaaa0000aaaa0000aaaa0000aaaa0000")
	if !strings.Contains(dt.Messages(tok1)[0].Text, "[Open in DingTalk](dingtalk://dingtalkclient/page/link?url=") {
		t.Errorf("no Open in DingTalk link:\n%s", dt.Messages(tok1)[0].Text)
	}

	status, page := p.get(t, strings.TrimPrefix(link, "http://"+addr))
	if status != 200 || !strings.Contains(page, "ReferenceError: heck is not defined") || !strings.Contains(page, "<form") {
		t.Fatalf("page %d:\n%s", status, page)
	}
	if calls := api.seen(); len(calls) != 1 || !strings.HasPrefix(calls[0], "GET ") {
		t.Fatalf("opening the page made %v: it must only read", calls)
	}

	req, _ := http.NewRequest(http.MethodPost, link, strings.NewReader(""))
	req.Header.Set("Origin", "http://"+addr)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var puts []string
	for _, c := range api.seen() {
		if strings.HasPrefix(c, "PUT ") {
			puts = append(puts, c)
		}
	}
	if resp.StatusCode != 200 || len(puts) != 1 || !strings.HasSuffix(puts[0], `{"status":"resolved"}`) {
		t.Fatalf("confirming: %d, PUTs %v", resp.StatusCode, puts)
	}

	before := len(api.seen())
	u, _ := url.Parse(link)
	tampered := u.Path[:len(u.Path)-1] + map[bool]string{true: "A", false: "B"}[!strings.HasSuffix(u.Path, "A")]
	if status, _ := p.get(t, tampered); status != 403 {
		t.Errorf("tampered link: %d", status)
	}
	time.Sleep(7 * time.Second)
	if status, page := p.get(t, u.Path); status != 410 || !strings.Contains(page, "/organizations/test-org/issues/1117540176/") {
		t.Errorf("expired link: %d\n%s", status, page)
	}
	if after := len(api.seen()); after != before {
		t.Errorf("forged and expired links called Sentry: %v", api.seen()[before:])
	}

	for i, c := range []struct {
		status int
		want   string
	}{{401, "SENTRY_AUTH_TOKEN"}, {403, "Issue &amp; Event"}, {404, "no longer"}} {
		api.mu.Lock()
		api.answer = c.status
		api.mu.Unlock()
		link := alert(fmt.Sprintf("bbbb0000bbbb0000bbbb0000bbbb000%d", i))
		if _, page := p.get(t, strings.TrimPrefix(link, "http://"+addr)); !strings.Contains(page, c.want) {
			t.Errorf("Sentry answering %d: the page does not say so (%q):\n%s", c.status, c.want, page)
		}
	}
}
