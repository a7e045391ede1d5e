package feishu_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu/feishutest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var shanghai = time.FixedZone("CST", 8*3600)

func receiver(t testing.TB, lang, keyword string) *feishu.Receiver {
	t.Helper()
	r, err := feishu.New(feishu.Config{URL: "https://open.feishu.cn" + feishutest.PathPrefix + token, Keyword: keyword},
		feishu.Options{Name: "ops", Language: lang, Zone: shanghai})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixtures parses the Sentry payloads the golden cards show.
func fixtures(t *testing.T) map[string]formatter.Alert {
	t.Helper()
	out := map[string]formatter.Alert{}
	for _, name := range []string{"event_alert.triggered.json", "event_alert.triggered.uptime.json", "issue.created.json",
		"issue.resolved.mock.json", "legacy_webhook.json", "metric_alert.critical.mock.json"} {
		w, err := sentry.Parse(sentrytest.Resource(name), sentrytest.Fixture(t, name), sentry.Options{SentryURL: "https://sentry.example.com", Received: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[strings.TrimSuffix(name, ".json")] = w.Alert
	}
	return out
}

// rich is an alert with everything a card can show.
func rich() formatter.Alert {
	a := alert()
	a.Resource, a.Action, a.Activity = "activity_alert", "triggered", "status_regression"
	a.Level = "warning"
	a.Title = "TypeError: Cannot read properties of undefined (reading 'id')"
	a.Subtitle = "checkout/cart.js in applyCoupon"
	a.Location = "checkout/cart.js:42 in applyCoupon"
	a.Release, a.Events, a.Users, a.Actor = "web@2.4.1", 1402, 311, "Li Lei"
	a.Evidence = []formatter.Evidence{{Name: "Region", Value: "cn-shanghai", Important: true}, {Name: "Duration", Value: "1.2 s"}}
	a.PullRequests = []formatter.Ref{{Title: "Guard coupon lookup", URL: "https://github.com/acme/web/pull/77"}}
	a.Message = "coupon is undefined when the cart\nwas restored from storage"
	return a
}

func TestGoldenCards(t *testing.T) {
	alerts := fixtures(t)
	alerts["rich"] = rich()
	names := make([]string, 0, len(alerts))
	for n := range alerts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		r := receiver(t, lang, "Sentry")
		var items []formatter.Item
		for _, name := range names {
			it := formatter.Item{Alert: alerts[name], Mentions: formatter.Mentions{UserIDs: []string{"ou_7d8a6e6df7621556ce0d21922b676706"}}}
			items = append(items, it)
			msg, err := r.Card(it)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+"."+lang, msg)
		}
		noted := formatter.Item{Alert: rich(), Mentions: formatter.Mentions{Mobiles: []string{"13800000000"}, All: true},
			Note: "DingTalk robot ops: errcode 310000 sign not match since 10:42"}
		golden(t, "rich.minimal."+lang, r.Minimal(noted))
		digest, covered := r.Digest(append(items, noted), false)
		if len(covered) != len(items)+1 {
			t.Errorf("digest of %d alerts covers %d", len(items)+1, len(covered))
		}
		golden(t, "digest."+lang, digest)
		plain, _ := r.Digest(items, true)
		golden(t, "digest.plain."+lang, plain)
	}
}

func golden(t *testing.T, name string, m notify.Message) {
	t.Helper()
	msg := m.(*feishu.Message)
	var buf bytes.Buffer
	if err := json.Indent(&buf, msg.JSON(), "", "  "); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&buf, "\n--- %d bytes: %s ---\n", len(msg.JSON()), msg.Title())
	// The lark_md texts as a reader sees them, next to the JSON sent.
	var card struct{ Card any }
	json.Unmarshal(msg.JSON(), &card)
	for _, s := range texts(card.Card) {
		buf.WriteString(html.UnescapeString(s) + "\n")
	}
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
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
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got ---\n%s", path, buf.String())
	}
}

// texts are the content strings of a decoded card, in order.
func texts(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["content"].(string); ok {
			out = append(out, c)
		}
		for _, k := range []string{"header", "title", "text", "elements", "fields", "actions"} {
			out = append(out, texts(v[k])...)
		}
	case []any:
		for _, c := range v {
			out = append(out, texts(c)...)
		}
	}
	return out
}

func TestTemplates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, r := setup(t, feishutest.Bot{Token: token}, feishu.Config{})
		for _, c := range []struct {
			a    formatter.Alert
			want string
		}{
			{formatter.Alert{Level: "fatal"}, "red"},
			{formatter.Alert{Level: "error"}, "red"},
			{formatter.Alert{Level: "warning"}, "orange"},
			{formatter.Alert{Level: "info"}, "blue"},
			{formatter.Alert{Level: "debug"}, "grey"},
			{formatter.Alert{Level: "error", Action: "resolved"}, "green"},
			{formatter.Alert{Level: "info", Resource: "activity_alert", Activity: "status_regression"}, "red"},
			{formatter.Alert{Level: "made-up"}, "red"},
		} {
			if err := send(t, r, formatter.Item{Alert: c.a}); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if got := msgs[len(msgs)-1].Template; got != c.want {
				t.Errorf("level %q action %q: template %q, want %q", c.a.Level, c.a.Action, got, c.want)
			}
		}
	})
}

func TestCardCarriesKeywordButtonAndMentions(t *testing.T) {
	srv, r := setup(t, feishutest.Bot{Token: token, Keyword: "告警"}, feishu.Config{Keyword: "告警"})
	m := formatter.Mentions{UserIDs: []string{"ou_abc", "bad id", "all"}, Mobiles: []string{"13800000000"}, All: true}
	if err := send(t, r, formatter.Item{Alert: alert(), Mentions: m}); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()[0]
	if got.Title != "【告警】[api] boom" {
		t.Errorf("header %q", got.Title)
	}
	if strings.Join(got.Buttons, ",") != alert().Link {
		t.Errorf("buttons %v", got.Buttons)
	}
	if strings.Join(got.At, ",") != "ou_abc,all" {
		t.Errorf("mentions %v, want ou_abc and all (ids only: mobiles cannot be mentioned)", got.At)
	}
	// A title that holds the keyword is not prefixed again.
	a := alert()
	a.Title = "告警: boom"
	msg, _ := r.Card(formatter.Item{Alert: a})
	if title := msg.Title(); title != "[api] 告警: boom" {
		t.Errorf("title with the keyword: %q", title)
	}
}

// hostile is an alert whose every field is huge and full of markup.
func hostile(seed string) formatter.Alert {
	big := strings.Repeat(seed, 3000)
	a := formatter.Alert{Resource: "event_alert", Action: "triggered", Title: big, Project: big, Environment: big, Level: big,
		Location: big, Release: big, Rule: big, Message: big, Subtitle: big, Actor: big, Commit: big, Assignee: big,
		Events: 1, Users: 1, Time: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
		Link: "https://sentry.example.com/issues/1/?q=" + strings.Repeat("x", 5000)}
	for i := range 60 {
		a.Evidence = append(a.Evidence, formatter.Evidence{Name: big, Value: big, Important: i%2 == 0})
		a.PullRequests = append(a.PullRequests, formatter.Ref{Title: big, URL: "https://github.com/a/b/pull/" + strconv.Itoa(i)})
	}
	return a
}

func TestHugeFieldsFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, sender := setup(t, feishutest.Bot{Token: token, Secret: secret, Keyword: "Sentry"}, feishu.Config{Secret: secret, Keyword: "Sentry"})
		r := receiver(t, formatter.LangZH, "Sentry")
		ids := make([]string, 200)
		for i := range ids {
			ids[i] = fmt.Sprintf("ou_%032d", i)
		}
		for _, seed := range []string{"<", "长", "😀", "[x](https://e.com)", "a", "&*_:"} {
			for _, m := range []formatter.Mentions{{}, {UserIDs: ids, All: true}} {
				items := []formatter.Item{{Alert: hostile(seed), Mentions: m}, {Alert: hostile(seed + "1"), Mentions: m}}
				card, _ := r.Card(items[0])
				digest, covered := r.Digest(items, false)
				if len(covered) == 0 {
					t.Fatalf("seed %q: a digest must carry at least one alert", seed)
				}
				for _, msg := range []notify.Message{card, r.Minimal(items[0]), digest} {
					body := msg.(*feishu.Message).JSON()
					if len(body) > feishu.TargetBody || !utf8.Valid(body) {
						t.Errorf("seed %q: %d bytes (target %d)", seed, len(body), feishu.TargetBody)
					}
					if err := sender.Notify(t.Context(), msg, ""); err != nil {
						t.Errorf("seed %q: the double refused it: %v", seed, err)
					}
					// A minute between sends keeps the double's rate out of the way.
					time.Sleep(time.Minute)
				}
			}
		}
		for _, got := range srv.Messages() {
			if len(got.Buttons) > 0 {
				t.Errorf("a link over %d bytes became a button", 1024)
			}
			if !strings.HasPrefix(got.Title, "【Sentry】") {
				t.Errorf("header %q lost the keyword", got.Title[:40])
			}
		}
		if n := len(srv.Messages()); n != 36 {
			t.Errorf("%d messages reached the double, want 36", n)
		}
	})
}

func TestCardDropsWhatDoesNotFitInOrder(t *testing.T) {
	r := receiver(t, formatter.LangEN, "")
	a := alert()
	for i := range 400 {
		a.Evidence = append(a.Evidence, formatter.Evidence{Name: fmt.Sprintf("extra-%03d", i), Value: strings.Repeat("v", 60)})
	}
	msg, _ := r.Card(formatter.Item{Alert: a, Mentions: formatter.Mentions{All: true}})
	body := string(msg.(*feishu.Message).JSON())
	if len(body) > feishu.TargetBody {
		t.Fatalf("%d bytes", len(body))
	}
	last := strings.LastIndex(body, "extra-")
	n, _ := strconv.Atoi(body[last+6 : last+9])
	if n < 50 || n >= 399 || strings.Count(body, "extra-") != n+1 {
		t.Errorf("kept extras 0..%d (%d of them): want a prefix, cut for room", n, strings.Count(body, "extra-"))
	}
	for _, want := range []string{`"content":"…"`, `"url":"` + a.Link, "<at id=all></at>", "**Project**"} {
		if !strings.Contains(body, want) {
			t.Errorf("card lacks %s", want)
		}
	}
}

// storm is n alerts of n/2 issues, oldest first, a second apart.
func storm(n int, m formatter.Mentions) []formatter.Item {
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	items := make([]formatter.Item, n)
	for i := range items {
		issue := i % (n / 2)
		a := alert()
		a.IssueID = strconv.Itoa(issue)
		a.Title = fmt.Sprintf("issue-%03d: 连接数据库超时 after retrying the primary", issue)
		a.Link = "https://sentry.example.com/organizations/acme/issues/" + a.IssueID + "/"
		a.Time = start.Add(time.Duration(i) * time.Second)
		items[i] = formatter.Item{Alert: a, Mentions: m}
	}
	return items
}

var lineRE = regexp.MustCompile(`(?m)^\d+&#46; .*issue-(\d{3}).* ×(\d+) · api · production · \d\d&#58;\d\d&#58;\d\d$`)

func TestDigestOfAStorm(t *testing.T) {
	r := receiver(t, formatter.LangEN, "")
	items := storm(1000, formatter.Mentions{UserIDs: []string{"ou_a"}})
	items[999].Mentions = formatter.Mentions{UserIDs: []string{"ou_late"}}
	msg, covered := r.Digest(items, false)
	body := string(msg.(*feishu.Message).JSON())
	if len(covered) == 0 || len(covered) == len(items) {
		t.Fatalf("covered %d of %d", len(covered), len(items))
	}
	if len(body) > feishu.TargetBody {
		t.Errorf("%d bytes", len(body))
	}
	seen := map[int]int{}
	for _, i := range covered {
		n, _ := strconv.Atoi(items[i].Alert.IssueID)
		seen[n]++
	}
	for issue := range len(seen) {
		if seen[issue] != 2 {
			t.Errorf("issue %d: %d of its 2 alerts covered", issue, seen[issue])
		}
	}
	var lines []string
	var decoded struct{ Card any }
	json.Unmarshal([]byte(body), &decoded)
	for _, s := range texts(decoded.Card) {
		lines = append(lines, lineRE.FindAllString(s, -1)...)
	}
	if len(lines) != len(seen) {
		t.Errorf("%d whole lines for %d issues", len(lines), len(seen))
	}
	rest := len(items) - len(covered)
	if !strings.Contains(body, strconv.Itoa(rest)+" more alerts follow") {
		t.Errorf("the digest does not say %d more follow", rest)
	}
	if strings.Contains(body, "ou_late") || !strings.Contains(body, "<at id=ou_a></at>") {
		t.Errorf("mentions are not the union of the covered alerts'")
	}
}

func TestPlainDigestHasNoLinks(t *testing.T) {
	msg, _ := receiver(t, formatter.LangZH, "").Digest(storm(6, formatter.Mentions{}), true)
	if body := string(msg.(*feishu.Message).JSON()); strings.Contains(body, "](") || strings.Contains(body, "https://") {
		t.Errorf("plain digest has links: %s", body)
	}
}

func TestDigestOfNothing(t *testing.T) {
	msg, covered := receiver(t, formatter.LangEN, "").Digest(nil, false)
	if len(covered) != 0 || !strings.Contains(msg.Title(), "0 alerts") {
		t.Errorf("empty digest: %v %q", covered, msg.Title())
	}
}

func TestMinimalHasNoLinks(t *testing.T) {
	msg := receiver(t, formatter.LangZH, "").Minimal(formatter.Item{Alert: rich(), Note: "see https://x.example"})
	body := string(msg.(*feishu.Message).JSON())
	if strings.Contains(body, "](") || strings.Contains(body, "https://") || strings.Contains(body, `"button"`) {
		t.Errorf("minimal card has links: %s", body)
	}
	if !strings.Contains(body, "↪ see") {
		t.Errorf("minimal card lost the note: %s", body)
	}
}
