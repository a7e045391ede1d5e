package formatter

import (
	"strconv"
	"strings"
	"time"
)

// Summary is what a card says about one alert, in the card's language and
// before any markup, so every kind of receiver shows the same facts. Its
// strings are plain payload text: each receiver escapes them for its own
// markup.
type Summary struct {
	// Level is the level shown ("resolved" for resolutions), Style its look.
	Level string
	Style LevelStyle
	// Heading names what happened: "New issue", "Regression", "Uptime alert".
	Heading string
	Title   string
	// Link is the alert's Sentry page, "" when it is not a usable URL.
	Link     string
	Subtitle string
	// Facts are the labelled lines every card shows, in order.
	Facts []Fact
	// Extra are lines shown while room allows (an occurrence's evidence
	// that Sentry did not mark important).
	Extra []Fact
	// Refs are links the alert names, such as pull requests.
	Refs  []Ref
	Quote string
}

// Fact is one labelled line of a card.
type Fact struct {
	Label, Value string
}

// Summarize lays out what a card shows of a: its labels in lang, its
// times in zone (nil: UTC).
func Summarize(a Alert, lang string, zone *time.Location) Summary {
	l := LabelsFor(lang)
	level, st := StyleOf(a)
	title := a.Title
	if title == "" {
		title = "(no title)"
	}
	s := Summary{Level: level, Style: st, Heading: l.Heading(a), Title: title, Link: SafeURL(a.Link), Subtitle: a.Subtitle}
	add := func(label, value string) {
		if value = strings.TrimSpace(value); value != "" {
			s.Facts = append(s.Facts, Fact{label, value})
		}
	}
	for _, e := range a.Evidence {
		if e.Important {
			add(e.Name, e.Value)
		}
	}
	add(l.Project, a.DisplayProject())
	add(l.Environment, a.Environment)
	add(l.Level, NormalizeLevel(a.Level))
	add(l.Location, a.Location)
	add(l.Release, a.Release)
	add(l.Commit, a.Commit)
	add(l.Actor, a.Actor)
	add(l.Rule, a.Rule)
	add(l.Assignee, a.Assignee)
	if a.Events > 0 {
		add(l.Events, strconv.FormatInt(a.Events, 10))
	}
	if a.Users > 0 {
		add(l.Users, strconv.FormatInt(a.Users, 10))
	}
	add(l.Time, FormatTime(a.Time, zone))
	for _, e := range a.Evidence {
		v := strings.TrimSpace(e.Value)
		if e.Important || v == "" || strings.TrimSpace(e.Name) == "" || s.shows(v) {
			continue
		}
		s.Extra = append(s.Extra, Fact{e.Name, v})
	}
	for _, pr := range a.PullRequests {
		if u := SafeURL(pr.URL); u != "" {
			s.Refs = append(s.Refs, Ref{Title: firstText(pr.Title, u), URL: u})
		}
	}
	if msg := strings.TrimSpace(a.Message); msg != "" && msg != strings.TrimSpace(a.Title) && msg != strings.TrimSpace(a.Subtitle) {
		s.Quote = msg
	}
	return s
}

// shows reports whether a fact already says value (an occurrence's
// evidence often repeats the environment).
func (s *Summary) shows(value string) bool {
	for _, f := range s.Facts {
		if f.Value == value {
			return true
		}
	}
	return false
}

// FormatTime shows t in zone (nil: UTC); "" for the zero time.
func FormatTime(t time.Time, zone *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("2006-01-02 15:04:05 MST")
}

func firstText(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
