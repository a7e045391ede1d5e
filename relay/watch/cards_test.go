package watch

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestCardsGolden renders every card this package makes, in both
// languages, as the relay's renderer shows them, and checks that no message
// is long enough to be cut.
func TestCardsGolden(t *testing.T) {
	zone := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 8, 3, 14, 30, 0, 0, time.UTC)
	since := now.Add(-6*time.Hour - 15*time.Minute)
	const id = "9f2c4e1ab3d84f6e8c0a7b5d3e1f2a4c"
	// As long as a send error gets: Sentry's answer is cut to fit.
	sendErr := errors.New("Sentry answered HTTP 429: " + strings.Repeat(`{"detail":"event submission rejected with_reason: ProjectQuota"} `, 4))
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		t.Run(lang, func(t *testing.T) {
			c, err := NewCanary(CanaryConfig{
				DSN: testDSN("https://sentry.example.com"), Language: lang, Zone: zone,
				Now: func() time.Time { return now },
			}, &announcer{})
			if err != nil {
				t.Fatal(err)
			}
			q := NewQuiet(QuietConfig{After: 2 * time.Hour, Language: lang, Zone: zone, Now: func() time.Time { return since }}, &announcer{})
			cards := []struct {
				name  string
				alert formatter.Alert
			}{
				{"canary send failure", c.warning(ReasonSend, id, since, sendErr)},
				{"canary timeout", c.warning(ReasonTimeout, id, since, nil)},
				{"canary recovered", c.recovery(id, since, now.Add(-40*time.Second), now)},
				{"quiet", q.warning(now, since, false)},
				{"quiet since start", q.warning(now, since, true)},
				{"quiet recovered", q.recovery(now, since)},
			}
			r := &formatter.Renderer{Language: lang, Zone: zone}
			var b strings.Builder
			for _, card := range cards {
				if n := utf8.RuneCountInString(card.alert.Message); n > maxMessageRunes {
					t.Errorf("%s: message of %d runes would be cut", card.name, n)
				}
				msg, err := r.Card(card.alert, formatter.Mentions{})
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString("=== " + card.name + "\n" + msg.Title() + "\n\n" + msg.Text() + "\n")
			}
			golden := "testdata/cards." + lang + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("cards differ from %s (go test -update to accept):\n%s", golden, b.String())
			}
		})
	}
}

// TestMessagesFitTheCard tries the longest messages: a zone without an
// abbreviation, a timeout with every unit, the longest send error.
func TestMessagesFitTheCard(t *testing.T) {
	zone := time.FixedZone("", 5*3600+45*60)
	now := time.Date(2026, 12, 30, 23, 59, 59, 0, time.UTC)
	long := errors.New(strings.Repeat("x", 500))
	for _, lang := range []string{formatter.LangZH, formatter.LangEN} {
		c, err := NewCanary(CanaryConfig{
			DSN: testDSN("https://sentry.example.com"), Language: lang, Zone: zone,
			Timeout: 14*time.Minute + 59*time.Second, Now: func() time.Time { return now },
		}, &announcer{})
		if err != nil {
			t.Fatal(err)
		}
		q := NewQuiet(QuietConfig{Language: lang, Zone: zone}, &announcer{})
		id := strings.Repeat("f", 32)
		for _, a := range []formatter.Alert{
			c.warning(ReasonSend, id, now, long), c.warning(ReasonTimeout, id, now, nil),
			c.recovery(id, now.Add(-1000*time.Hour), now.Add(-59*time.Minute), now),
			q.warning(now, now.Add(-1000*time.Hour), false), q.warning(now, now.Add(-1000*time.Hour), true),
			q.recovery(now, now.Add(-1000*time.Hour)),
		} {
			if n := utf8.RuneCountInString(a.Message); n > maxMessageRunes {
				t.Errorf("%s %s: message of %d runes would be cut:\n%s", lang, a.Action, n, a.Message)
			}
			if utf8.RuneCountInString(a.Title) > 64 {
				t.Errorf("%s %s: title %q is cut in the chat list", lang, a.Action, a.Title)
			}
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		en, zh string
	}{
		{0, "0s", "0秒"},
		{400 * time.Millisecond, "0s", "0秒"},
		{5 * time.Second, "5s", "5秒"},
		{90 * time.Second, "1m30s", "1分钟30秒"},
		{15 * time.Minute, "15m", "15分钟"},
		{6 * time.Hour, "6h", "6小时"},
		{2*time.Hour + 15*time.Minute + 29*time.Second, "2h15m", "2小时15分钟"},
		{49*time.Hour + 30*time.Second, "49h1m", "49小时1分钟"},
	} {
		if got := wordsFor(formatter.LangEN).duration(tc.d); got != tc.en {
			t.Errorf("en %v: %q, want %q", tc.d, got, tc.en)
		}
		if got := wordsFor("fr").duration(tc.d); got != tc.zh {
			t.Errorf("zh %v: %q, want %q", tc.d, got, tc.zh)
		}
	}
}
