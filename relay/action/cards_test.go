package action

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/cardtest"
	sentrypayload "github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
)

// cardService makes links as the relay does for cards, on a fixed clock so
// they are the same every run.
func cardService(t *testing.T, lang string) *Service {
	t.Helper()
	svc, err := New(Config{PublicURL: publicURL, Key: testKey, SentryURL: "https://sentry.acme.example", AuthToken: testToken,
		Language: lang, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func parsed(t *testing.T, name string) formatter.Alert {
	t.Helper()
	w, err := sentrypayload.Parse(sentrytest.Resource(name), sentrytest.Fixture(t, name), sentrypayload.Options{Received: start})
	if err != nil {
		t.Fatal(err)
	}
	return w.Alert
}

// TestCardsWithActions: issue cards carry their action links (a line under
// the markdown card, buttons on an action card), digests a review link,
// metric alerts none; every link is the card's own and inert text stays
// inert. Golden files in testdata/golden/cards.
func TestCardsWithActions(t *testing.T) {
	zone, _ := time.LoadLocation("Asia/Shanghai")
	issueCard := parsed(t, "activity_alert.status_regression.json")
	metric := parsed(t, "metric_alert.critical.workflow.json")
	digest := []formatter.Item{{Alert: parsed(t, "event_alert.triggered.workflow.json")}, {Alert: issueCard}, {Alert: metric}}
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		svc := cardService(t, lang)
		cards := Cards{svc}
		for _, typ := range []string{formatter.TypeMarkdown, formatter.TypeActionCard} {
			r := &formatter.Renderer{Language: lang, Zone: zone, Keyword: "Sentry", Type: typ, Actions: cards}
			msg, err := r.Card(issueCard, formatter.Mentions{})
			if err != nil {
				t.Fatal(err)
			}
			links := cards.Links(issueCard)
			if len(links) != 4 {
				t.Fatalf("%d action links, want resolve, ignore 1h, ignore until escalating, open in DingTalk", len(links))
			}
			body := string(msg.JSON())
			for _, l := range links {
				if !strings.Contains(body, l.URL) {
					t.Errorf("%s %s card lacks %s", lang, typ, l.Title)
				}
			}
			want := cardtest.Want{Links: []string{formatter.SafeURL(issueCard.Link)}, Fonts: 1}
			for _, l := range links {
				want.Links = append(want.Links, l.URL)
			}
			if bad := cardtest.Check(msg.Text(), want); len(bad) > 0 {
				t.Errorf("%s %s: %v", lang, typ, bad)
			}
			goldenCard(t, "activity_alert."+typ+"."+lang, msg)
		}
		r := &formatter.Renderer{Language: lang, Zone: zone, Keyword: "Sentry", Actions: cards}
		m, _ := r.Card(metric, formatter.Mentions{})
		if strings.Contains(m.Text(), publicURL) {
			t.Errorf("a metric alert got action links:\n%s", m.Text())
		}
		d, covered := r.Digest(digest, false)
		if len(covered) != 3 || !strings.Contains(d.Text(), publicURL+"/action/") {
			t.Errorf("digest without its review link:\n%s", d.Text())
		}
		goldenCard(t, "digest."+lang, d)
	}
}

// TestActionLinksFitTheBudget: the action links are never cut, and the
// card stays under DingTalk's limit whatever the alert holds.
func TestActionLinksFitTheBudget(t *testing.T) {
	a := parsed(t, "event_alert.triggered.workflow.json")
	huge := strings.Repeat("错误 <x> ", 5000)
	a.Title, a.Message, a.Location, a.Environment = huge, huge, huge, huge
	cards := Cards{cardService(t, formatter.LangEN)}
	r := &formatter.Renderer{Keyword: "Sentry", Actions: cards}
	msg, _ := r.Card(a, formatter.Mentions{Mobiles: []string{"13800000000"}})
	if n := len(msg.JSON()); n > formatter.TargetBodyBytes {
		t.Errorf("card of %d bytes", n)
	}
	for _, l := range cards.Links(a) {
		if !strings.Contains(msg.Text(), l.URL) {
			t.Errorf("the cut took the %s link", l.Title)
		}
	}
	if !strings.HasSuffix(msg.Text(), "@13800000000") {
		t.Error("the mention was cut")
	}
	var items []formatter.Item
	for i := range 500 {
		b := a
		b.IssueID, b.Title = strings.Repeat("9", 10)+string(rune('0'+i%10)), "issue"
		items = append(items, formatter.Item{Alert: b})
	}
	d, _ := r.Digest(items, false)
	if n := len(d.JSON()); n > formatter.TargetBodyBytes || !strings.Contains(d.Text(), "/action/") {
		t.Errorf("digest of %d bytes, review link present: %v", n, strings.Contains(d.Text(), "/action/"))
	}
}

func goldenCard(t *testing.T, name string, msg formatter.Message) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(msg)
	buf.WriteString("\n--- text ---\n" + msg.Text() + "\n")
	path := filepath.Join("testdata", "golden", "cards", name+".golden")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, buf.String())
	}
}
