package wecom_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom/wecomtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var shanghai = time.FixedZone("CST", 8*3600)

func receiver(t testing.TB, lang string) *wecom.Receiver {
	t.Helper()
	r, err := wecom.New(wecom.Config{Key: key}, wecom.Options{Name: "ops", Language: lang, Zone: shanghai})
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

// rich is an alert with everything a card can show: evidence, pull
// requests, a quote.
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

func TestGoldenMessages(t *testing.T) {
	alerts := fixtures(t)
	alerts["rich"] = rich()
	names := make([]string, 0, len(alerts))
	for n := range alerts {
		names = append(names, n)
	}
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		r := receiver(t, lang)
		var items []formatter.Item
		slices.Sort(names)
		for _, name := range names {
			it := formatter.Item{Alert: alerts[name], Mentions: formatter.Mentions{UserIDs: []string{"zhangsan"}}}
			items = append(items, it)
			msg, err := r.Card(it)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+"."+lang, msg)
		}
		pinged := formatter.Item{Alert: rich(), Mentions: formatter.Mentions{Mobiles: []string{"13800000000"}, All: true},
			Note: "DingTalk robot ops: errcode 310000 sign not match since 10:42"}
		msg, _ := r.Card(pinged)
		golden(t, "rich.text."+lang, msg)
		golden(t, "rich.minimal."+lang, r.Minimal(pinged))
		digest, covered := r.Digest(items, false)
		if len(covered) != len(items) {
			t.Errorf("digest of %d fixtures covers %d", len(items), len(covered))
		}
		golden(t, "digest."+lang, digest)
		textDigest, _ := r.Digest(append(items, pinged), true)
		golden(t, "digest.text.plain."+lang, textDigest)
	}
}

func golden(t *testing.T, name string, m notify.Message) {
	t.Helper()
	msg := m.(*wecom.Message)
	var buf bytes.Buffer
	if err := json.Indent(&buf, msg.JSON(), "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n--- " + msg.MsgType + " (" + strconv.Itoa(len(msg.Content)) + " bytes): " + msg.Title() + " ---\n" + msg.Content + "\n")
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

func TestColourWords(t *testing.T) {
	r := receiver(t, formatter.LangEN)
	for _, c := range []struct {
		a    formatter.Alert
		want string
	}{
		{formatter.Alert{Level: "fatal"}, "warning"},
		{formatter.Alert{Level: "error"}, "warning"},
		{formatter.Alert{Level: "warning"}, "warning"},
		{formatter.Alert{Level: "info"}, "info"},
		{formatter.Alert{Level: "debug"}, "comment"},
		{formatter.Alert{Level: "error", Action: "resolved"}, "info"},
		{formatter.Alert{Level: "info", Resource: "activity_alert", Activity: "status_regression"}, "warning"},
		{formatter.Alert{Level: "made-up"}, "warning"},
	} {
		msg, _ := r.Card(formatter.Item{Alert: c.a})
		if content := msg.(*wecom.Message).Content; !strings.Contains(content, `<font color="`+c.want+`">`) {
			t.Errorf("level %q action %q: %s, want colour %s", c.a.Level, c.a.Action, content, c.want)
		}
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
	srv, sender := setup(t)
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	// A minute per request keeps the double's rate limit out of the way.
	srv.Now = func() time.Time { now = now.Add(time.Minute); return now }
	r := receiver(t, formatter.LangZH)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%060d", i)
	}
	for _, seed := range []string{"<", "长", "😀", "[x](https://e.com)", "a", "&`*_"} {
		for _, m := range []formatter.Mentions{{}, {UserIDs: ids}, {Mobiles: []string{"13800000000"}}} {
			a := hostile(seed)
			items := []formatter.Item{{Alert: a, Mentions: m}, {Alert: hostile(seed + "1"), Mentions: m}}
			card, _ := r.Card(items[0])
			digest, covered := r.Digest(items, false)
			if len(covered) == 0 {
				t.Fatalf("seed %q: a digest must carry at least one alert", seed)
			}
			for _, msg := range []notify.Message{card, r.Minimal(items[0]), digest} {
				w := msg.(*wecom.Message)
				limit := wecom.MaxMarkdownText
				if w.MsgType == wecom.TypeText {
					limit = wecom.MaxText
				}
				if len(w.Content) > limit || !utf8.ValidString(w.Content) {
					t.Errorf("seed %q %s: %d bytes (limit %d), valid UTF-8 %v", seed, w.MsgType, len(w.Content), limit, utf8.ValidString(w.Content))
				}
				if bytes.Contains(w.JSON(), []byte(`\u`)) {
					t.Errorf("seed %q: JSON has \\u escapes, which WeCom refuses (40033)", seed)
				}
				if err := sender.Notify(t.Context(), w, ""); err != nil {
					t.Errorf("seed %q %s: the double refused it: %v", seed, w.MsgType, err)
				}
			}
			if w := card.(*wecom.Message); w.MsgType == wecom.TypeMarkdown && len(m.UserIDs) > 0 && !strings.Contains(w.Content, "<@user") {
				t.Errorf("seed %q: the mentions were crowded out", seed)
			}
		}
	}
	if n := len(srv.Messages()); n == 0 {
		t.Error("nothing reached the double")
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

var lineRE = regexp.MustCompile(`(?m)^\d+\. .*issue-(\d{3}).* ×(\d+) · api · production · \d\d:\d\d:\d\d$`)

func TestDigestOfAStorm(t *testing.T) {
	for _, m := range []formatter.Mentions{{UserIDs: []string{"zhangsan"}}, {Mobiles: []string{"13800000000"}}} {
		r := receiver(t, formatter.LangEN)
		items := storm(400, m)
		items[399].Mentions = items[399].Mentions.Union(formatter.Mentions{UserIDs: []string{"late"}})
		msg, covered := r.Digest(items, false)
		w := msg.(*wecom.Message)
		if len(covered) == 0 || len(covered) == len(items) {
			t.Fatalf("covered %d of %d: a storm this size fits neither nothing nor everything", len(covered), len(items))
		}
		// The issues waiting longest go first, each with all its alerts.
		seen := map[int]int{}
		for _, i := range covered {
			n, _ := strconv.Atoi(items[i].Alert.IssueID)
			seen[n]++
		}
		for issue := range len(seen) {
			if seen[issue] != 2 {
				t.Errorf("issue %d: %d of its 2 alerts covered; covered issues %v", issue, seen[issue], seen)
			}
		}
		lines := lineRE.FindAllStringSubmatch(w.Content, -1)
		if len(lines) != len(seen) {
			t.Errorf("%d whole lines for %d issues:\n%s", len(lines), len(seen), w.Content)
		}
		for _, l := range lines {
			if l[2] != "2" {
				t.Errorf("line %q counts ×%s, want ×2", l[0], l[2])
			}
		}
		rest := len(items) - len(covered)
		if !strings.Contains(w.Content, strconv.Itoa(rest)+" more alerts follow") {
			t.Errorf("the digest does not say %d more follow:\n%s", rest, w.Content)
		}
		limit := wecom.MaxMarkdownText
		if w.MsgType == wecom.TypeText {
			limit = wecom.MaxText
		}
		if len(w.Content) > limit {
			t.Errorf("%d bytes over the %d limit", len(w.Content), limit)
		}
		if strings.Contains(w.Content, "<@late>") || strings.Contains(strings.Join(w.MentionedList, ","), "late") {
			t.Error("the digest mentions someone only an alert it does not carry mentions")
		}
		// What was left goes in the next digest, and nothing twice.
		var restItems []formatter.Item
		for i := range items {
			if !slices.Contains(covered, i) {
				restItems = append(restItems, items[i])
			}
		}
		next, _ := r.Digest(restItems, false)
		if nw := next.(*wecom.Message); !strings.Contains(nw.Content, "issue-"+fmt.Sprintf("%03d", len(seen))) {
			t.Errorf("the next digest does not start with the next issue:\n%s", nw.Content)
		}
	}
}

func TestDigestMentionsTheUnion(t *testing.T) {
	r := receiver(t, formatter.LangZH)
	items := storm(4, formatter.Mentions{UserIDs: []string{"a"}})
	items[1].Mentions = formatter.Mentions{UserIDs: []string{"b", "a"}}
	msg, _ := r.Digest(items, false)
	if w := msg.(*wecom.Message); w.MsgType != wecom.TypeMarkdown || !strings.HasSuffix(w.Content, "<@a> <@b>") {
		t.Errorf("markdown digest mentions: %s", w.Content)
	}
	items[2].Mentions = formatter.Mentions{Mobiles: []string{"13800000000"}}
	msg, _ = r.Digest(items, false)
	if w := msg.(*wecom.Message); w.MsgType != wecom.TypeText || strings.Join(w.MentionedList, ",") != "a,b" || strings.Join(w.MentionedMobileList, ",") != "13800000000" {
		t.Errorf("text digest mentions: %+v", w)
	}
}

func TestPlainDigestHasNoLinks(t *testing.T) {
	r := receiver(t, formatter.LangZH)
	for _, m := range []formatter.Mentions{{}, {All: true}} {
		msg, _ := r.Digest(storm(6, m), true)
		if c := msg.(*wecom.Message).Content; strings.Contains(c, "](") || strings.Contains(c, "https://") {
			t.Errorf("plain digest has links:\n%s", c)
		}
	}
}

func TestInvalidMentionsAreDropped(t *testing.T) {
	r := receiver(t, formatter.LangZH)
	msg, _ := r.Card(formatter.Item{Alert: alert(), Mentions: formatter.Mentions{UserIDs: []string{"ok_1", "bad>id", "-lead", ""}, Mobiles: []string{"138 0000 0000"}}})
	w := msg.(*wecom.Message)
	if w.MsgType != wecom.TypeMarkdown {
		t.Errorf("an invalid mobile made a text message")
	}
	if !strings.HasSuffix(w.Content, "\n<@ok_1>") {
		t.Errorf("mentions: %q", w.Content)
	}
}

func TestCardShowsTheNoteFirst(t *testing.T) {
	r := receiver(t, formatter.LangEN)
	for _, m := range []formatter.Mentions{{}, {All: true}} {
		msg, _ := r.Card(formatter.Item{Alert: alert(), Mentions: m, Note: "Fallback: ops could not deliver this"})
		if c := msg.(*wecom.Message).Content; !strings.HasPrefix(c, "> ↪ Fallback") && !strings.HasPrefix(c, "↪ Fallback") {
			t.Errorf("note is not first:\n%s", c)
		}
	}
}

func TestDigestSingleAlertFitsTheDouble(t *testing.T) {
	srv := wecomtest.New(key)
	endpoint := srv.Start(t)
	r, _ := wecom.New(wecom.Config{Key: key, APIURL: endpoint}, wecom.Options{})
	msg, covered := r.Digest(storm(2, formatter.Mentions{}), false)
	if len(covered) != 2 {
		t.Fatalf("covered %v", covered)
	}
	if err := r.Notify(t.Context(), msg, ""); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages()[0].Content; !strings.Contains(got, "×2") {
		t.Errorf("digest: %s", got)
	}
}

func TestDigestOfNothing(t *testing.T) {
	msg, covered := receiver(t, formatter.LangEN).Digest(nil, false)
	if len(covered) != 0 || !strings.Contains(msg.(*wecom.Message).Content, "0 alerts") {
		t.Errorf("empty digest: %v %q", covered, msg.(*wecom.Message).Content)
	}
}
