package formatter

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

func sampleAlert(i int) Alert {
	return Alert{
		Resource: "event_alert", Action: "triggered",
		Title:   fmt.Sprintf("ValueError: bad input %d", i),
		Project: "api", Environment: "production", Level: "error",
		Location: "app/views.py:12 in index", Release: "api@1.2.3", Rule: "New issue",
		Message: "bad input", Link: fmt.Sprintf("https://sentry.example.com/organizations/acme/issues/%d/", i),
		IssueID: fmt.Sprint(i), EventID: fmt.Sprintf("e%d", i),
		Time: time.Date(2026, 11, 22, 2, 3, 4, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
}

func TestCardContents(t *testing.T) {
	r := &Renderer{Keyword: "Sentry", Zone: shanghai}
	m := Mentions{Mobiles: []string{"13800000000", "+1-2025550123"}}
	msg, err := r.Card(sampleAlert(7), m)
	if err != nil {
		t.Fatal(err)
	}
	if msg.MsgType != TypeMarkdown || msg.Markdown == nil {
		t.Fatalf("msgtype %q, want markdown", msg.MsgType)
	}
	if want := "【Sentry】[api] ValueError: bad input 7"; msg.Markdown.Title != want {
		t.Errorf("title %q, want %q", msg.Markdown.Title, want)
	}
	text := strings.ReplaceAll(msg.Markdown.Text, zwsp, "")
	for _, want := range []string{
		"<font color=#E03E2F>🔴 ERROR</font>",
		"[ValueError: bad input 7](https://sentry.example.com/organizations/acme/issues/7/)",
		"- **项目:** api", "- **环境:** production", "- **级别:** error",
		"- **位置:** app/views.py:12 in index", "- **版本:** api@1.2.3", "- **规则:** New issue",
		"- **时间:** 2026-11-22 10:03:11 CST",
		"@13800000000 @+1-2025550123",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, msg.Markdown.Text)
		}
	}
	if msg.At == nil || len(msg.At.AtMobiles) != 2 {
		t.Errorf("at = %+v, want both mobiles", msg.At)
	}
	// The keyword must be in the text too: DingTalk may check either.
	if !strings.Contains(msg.Markdown.Text, "Sentry") {
		t.Errorf("text lacks the keyword")
	}
}

func TestCardEnglish(t *testing.T) {
	r := &Renderer{Language: LangEN}
	msg, _ := r.Card(sampleAlert(1), Mentions{})
	for _, want := range []string{"- **Project:** api", "- **Environment:** production", "Alert"} {
		if !strings.Contains(msg.Text(), want) {
			t.Errorf("text lacks %q:\n%s", want, msg.Text())
		}
	}
	if msg.At != nil {
		t.Errorf("at = %+v without mentions", msg.At)
	}
}

func TestCardKeywordNotRepeated(t *testing.T) {
	a := sampleAlert(1)
	a.Title = "Sentry crashed"
	r := &Renderer{Keyword: "Sentry"}
	msg, _ := r.Card(a, Mentions{})
	if strings.Contains(msg.Title(), "【Sentry】") {
		t.Errorf("title %q repeats a keyword it already has", msg.Title())
	}
}

func TestCardHostileTitleCannotInject(t *testing.T) {
	a := sampleAlert(1)
	a.Title = "x](https://evil.example) [click <font color=#00FF00>@13800000000</font>"
	a.Project = "# proj"
	a.Message = "## heading\n[link](https://evil.example)\n@all"
	a.Environment = "**prod**"
	r := &Renderer{}
	msg, _ := r.Card(a, Mentions{})
	text := msg.Text()
	if n := strings.Count(text, "]("); n != 1 {
		t.Errorf("text has %d links, want only the card's own:\n%s", n, text)
	}
	if strings.Contains(text, "evil.example)") && strings.Contains(text, "](https://evil") {
		t.Errorf("hostile link survived:\n%s", text)
	}
	if strings.Count(text, "<font") != 1 {
		t.Errorf("hostile <font> survived:\n%s", text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimPrefix(l, "> "), "#") && !strings.HasPrefix(l, "#### ") {
			t.Errorf("hostile heading survived: %q", l)
		}
	}
	if strings.Contains(text, "@1380") || strings.Contains(text, "@all") {
		t.Errorf("hostile mention survived:\n%s", text)
	}
}

func TestCardActionCard(t *testing.T) {
	r := &Renderer{Type: TypeActionCard, Language: LangEN}
	msg, _ := r.Card(sampleAlert(3), Mentions{Mobiles: []string{"13800000000"}})
	if msg.MsgType != TypeActionCard || msg.ActionCard == nil {
		t.Fatalf("msgtype %q", msg.MsgType)
	}
	if msg.ActionCard.SingleURL != "https://sentry.example.com/organizations/acme/issues/3/" || msg.ActionCard.SingleTitle != "View in Sentry" {
		t.Errorf("button %q -> %q", msg.ActionCard.SingleTitle, msg.ActionCard.SingleURL)
	}
	if msg.At != nil || strings.Contains(msg.ActionCard.Text, "@1380") {
		t.Errorf("an action card cannot mention anyone: %+v", msg)
	}
	noLink := sampleAlert(3)
	noLink.Link = ""
	if msg, _ := r.Card(noLink, Mentions{}); msg.MsgType != TypeMarkdown {
		t.Errorf("without a link the card must fall back to markdown, got %q", msg.MsgType)
	}
}

func TestCardFitsDingTalkLimit(t *testing.T) {
	huge := strings.Repeat("错误信息 with \"quotes\" and <tags> ", 3000)
	a := sampleAlert(1)
	a.Title, a.Message, a.Location, a.Release, a.Rule, a.Environment = huge, huge, huge, huge, huge, huge
	r := &Renderer{Keyword: "Sentry"}
	msg, _ := r.Card(a, Mentions{Mobiles: []string{"13800000000"}})
	if n := len(msg.JSON()); n > TargetBodyBytes {
		t.Errorf("card body is %d bytes, want at most %d", n, TargetBodyBytes)
	}
	if !strings.HasSuffix(msg.Text(), "@13800000000") {
		t.Errorf("mentions lost when cutting")
	}
}

func TestTemplateCardFitsDingTalkLimit(t *testing.T) {
	r := &Renderer{Keyword: "Sentry"}
	tpl, err := ParseTemplate("big.tmpl", `{{define "title"}}{{.Alert.Title}}{{end}}{{define "text"}}{{range $i, $_ := .Alert.Tags}}{{link $.Alert.Title $.Alert.Link}} 中文中文中文
{{end}}{{end}}`, r.Zone)
	if err != nil {
		t.Fatal(err)
	}
	r.Template = tpl
	a := sampleAlert(1)
	for i := range 1000 {
		a.Tags = append(a.Tags, Tag{Key: fmt.Sprint(i), Value: "v"})
	}
	msg, err := r.Card(a, Mentions{Mobiles: []string{"13800000000"}})
	if err != nil {
		t.Fatal(err)
	}
	body := msg.JSON()
	if len(body) > TargetBodyBytes {
		t.Errorf("templated card is %d bytes", len(body))
	}
	text := msg.Text()
	if strings.Count(text, "[") != strings.Count(text, "](") {
		t.Errorf("the cut split a link")
	}
	if !strings.Contains(text, "@13800000000") {
		t.Errorf("mention lost")
	}
}

func TestMinimalCard(t *testing.T) {
	r := &Renderer{Keyword: "KW"}
	msg := r.Minimal(sampleAlert(2), Mentions{Mobiles: []string{"13800000000"}})
	if strings.Contains(msg.Text(), "](") || strings.Contains(msg.Text(), "http") {
		t.Errorf("minimal card has a link:\n%s", msg.Text())
	}
	if strings.Contains(msg.Text(), "app/views.py") {
		t.Errorf("minimal card has the location")
	}
	for _, want := range []string{"KW", "ValueError: bad input 2", "api", "@13800000000"} {
		if !strings.Contains(msg.Text(), want) {
			t.Errorf("minimal card lacks %q:\n%s", want, msg.Text())
		}
	}
}

func TestDigestCollapsesAndCounts(t *testing.T) {
	var items []Item
	// Issue 1 three times, issue 2 once, issue 3 twice (one warning).
	for i, issue := range []int{1, 2, 1, 3, 1, 3} {
		a := sampleAlert(issue)
		a.Time = a.Time.Add(time.Duration(i) * time.Minute)
		if i == 5 {
			a.Level = "warning"
		}
		items = append(items, Item{Alert: a, Mentions: Mentions{Mobiles: []string{fmt.Sprintf("1380000000%d", issue)}}})
	}
	r := &Renderer{Language: LangEN, Zone: time.UTC}
	msg, covered := r.Digest(items, false)
	if len(covered) != len(items) {
		t.Fatalf("covered %v, want all %d", covered, len(items))
	}
	text := msg.Text()
	for _, want := range []string{"6 alerts · 3 issues", "🔴 error 5", "🟠 warning 1", "api 6"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
	lines := digestLines(text)
	if len(lines) != 3 {
		t.Fatalf("digest has %d issue lines, want 3:\n%s", len(lines), text)
	}
	// Newest first: issue 3 (minute 5), issue 1 (minute 4), issue 2 (minute 1).
	for i, want := range []string{"bad input 3](", "bad input 1](", "bad input 2]("} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], want)
		}
	}
	for i, want := range []string{"×2", "×3", "×1"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want count %s", i+1, lines[i], want)
		}
	}
	// A digest mentions everyone its alerts would have.
	if msg.At == nil || len(msg.At.AtMobiles) != 3 {
		t.Errorf("at = %+v, want the union of 3 mobiles", msg.At)
	}
}

func digestLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if len(l) > 2 && l[0] >= '1' && l[0] <= '9' && strings.Contains(l, ". ") {
			out = append(out, l)
		}
	}
	return out
}

func TestDigestSplitsOnlyBySize(t *testing.T) {
	var items []Item
	for i := range 2000 {
		items = append(items, Item{Alert: sampleAlert(i)})
	}
	r := &Renderer{Keyword: "Sentry"}
	seen := map[int]bool{}
	rest := items
	messages := 0
	for len(rest) > 0 {
		msg, covered := r.Digest(rest, false)
		messages++
		if n := len(msg.JSON()); n > TargetBodyBytes {
			t.Fatalf("digest %d is %d bytes", messages, n)
		}
		if len(covered) == 0 {
			t.Fatal("digest covered nothing")
		}
		for _, i := range covered {
			if !strings.Contains(msg.Text(), rest[i].Alert.Title+"](") {
				t.Fatalf("covered alert %q is not on a line of the digest", rest[i].Alert.Title)
			}
		}
		var next []Item
		j := 0
		for i, it := range rest {
			if j < len(covered) && covered[j] == i {
				id := 0
				fmt.Sscan(it.Alert.IssueID, &id)
				if seen[id] {
					t.Fatalf("alert %d in two digests", id)
				}
				seen[id] = true
				j++
				continue
			}
			next = append(next, it)
		}
		if len(next) > 0 && !strings.Contains(msg.Text(), "more") && !strings.Contains(msg.Text(), "另有") {
			t.Errorf("a digest with more to follow does not say so")
		}
		// The oldest waiting alert always goes first.
		if covered[0] != 0 {
			t.Errorf("digest skipped the oldest alert")
		}
		rest = next
	}
	if len(seen) != 2000 {
		t.Errorf("%d alerts delivered, want 2000", len(seen))
	}
	// ~100 bytes a line: a message carries well over a hundred issues.
	if messages > 20 {
		t.Errorf("%d messages for 2000 issues: lines are too long", messages)
	}
	t.Logf("2000 distinct issues -> %d digest messages", messages)
}

func TestDigestPlainHasNoLinks(t *testing.T) {
	items := []Item{{Alert: sampleAlert(1)}, {Alert: sampleAlert(2)}}
	msg, covered := (&Renderer{}).Digest(items, true)
	if len(covered) != 2 || strings.Contains(msg.Text(), "](") {
		t.Errorf("plain digest covered %v with links:\n%s", covered, msg.Text())
	}
}

func TestMessageJSON(t *testing.T) {
	msg := Message{MsgType: TypeMarkdown, Markdown: &Markdown{Title: "t", Text: "<font color=#FF0000>x</font> & y"}, MsgUUID: "u"}
	var back map[string]any
	if err := json.Unmarshal(msg.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg.JSON()), `\u003c`) {
		t.Errorf("JSON escapes HTML: %s", msg.JSON())
	}
	if back["msgUuid"] != "u" {
		t.Errorf("msgUuid missing: %s", msg.JSON())
	}
}

// BenchmarkDigest renders the first digest of 1,000 waiting alerts of 200
// issues: what a robot's worker does once per message in a storm.
func BenchmarkDigest(b *testing.B) {
	var items []Item
	for i := range 1000 {
		a := sampleAlert(i % 200)
		items = append(items, Item{Alert: a, Mentions: Mentions{Mobiles: []string{"13800000000"}}})
	}
	r := &Renderer{Keyword: "Sentry"}
	b.ReportAllocs()
	for b.Loop() {
		if _, covered := r.Digest(items, false); len(covered) == 0 {
			b.Fatal("nothing covered")
		}
	}
}
