package email_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
)

var (
	tagRE  = regexp.MustCompile(`<[^>]*>`)
	hrefRE = regexp.MustCompile(`href="([^"]*)"`)
)

// tags are the distinct tags of html, their href values checked and
// replaced by a placeholder (links are the one attribute payload reaches).
func tags(t testing.TB, html string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, tag := range tagRE.FindAllString(html, -1) {
		tag = hrefRE.ReplaceAllStringFunc(tag, func(h string) string {
			u := hrefRE.FindStringSubmatch(h)[1]
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
				t.Errorf("link %q", u)
			}
			return `href="URL"`
		})
		out[tag] = true
	}
	return out
}

func hostile(s string) formatter.Alert {
	return formatter.Alert{
		Resource: "event_alert", Action: "triggered", Level: "error", Title: s, Subtitle: "s" + s, Message: "m" + s,
		Project: s, Environment: s, Location: s, Release: s, Rule: s, Link: "https://sentry.example.com/" + s,
		Evidence:     []formatter.Evidence{{Name: "n" + s, Value: s}},
		PullRequests: []formatter.Ref{{Title: s, URL: "https://github.com/" + s}},
		Time:         time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
	}
}

// FuzzHTMLIsInert renders cards, minimal cards and digests whose every
// field is fuzzed text: every tag of the result is one the same card of
// harmless text has, so payload text never became markup.
func FuzzHTMLIsInert(f *testing.F) {
	for _, s := range []string{"plain", `<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `</td></tr></table><a href="javascript:x">`,
		"<!-- x", "\u202etxt.exe", `{{.Title}}`, "&lt;b&gt;", "a\r\n\r\nb", `' style='x`} {
		f.Add(s)
	}
	r, err := email.New(email.Config{To: email.Addresses{"ops@example.com"}}, email.SMTP{Host: "h", Port: 25, From: "a@example.com"}, email.Options{Language: formatter.LangEN})
	if err != nil {
		f.Fatal(err)
	}
	benign := hostile("x")
	allowed := map[string]bool{}
	card, _ := r.Card(formatter.Item{Alert: benign, Note: "note"})
	digest, _ := r.Digest([]formatter.Item{{Alert: benign, Note: "note"}}, false)
	for _, html := range []string{card.(*email.Message).HTML, r.Minimal(formatter.Item{Alert: benign, Note: "note"}).(*email.Message).HTML, digest.(*email.Message).HTML} {
		for tag := range tags(f, html) {
			allowed[tag] = true
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		it := formatter.Item{Alert: hostile(s), Note: s}
		card, err := r.Card(it)
		if err != nil {
			t.Fatal(err)
		}
		digest, _ := r.Digest([]formatter.Item{it, it}, false)
		for _, m := range []*email.Message{card.(*email.Message), r.Minimal(it).(*email.Message), digest.(*email.Message)} {
			for tag := range tags(t, m.HTML) {
				if !allowed[tag] {
					t.Errorf("tag %q from payload text %q", tag, s)
				}
			}
			for _, out := range []string{m.HTML, m.Text, m.Subject} {
				if strings.ContainsAny(out, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069") {
					t.Errorf("a bidirectional control survived in %q", out)
				}
			}
			if strings.ContainsAny(m.Subject, "\r\n") {
				t.Errorf("subject %q breaks the header", m.Subject)
			}
		}
	})
}
