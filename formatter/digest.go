package formatter

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// DigestFacts are what a digest of any channel says about the alerts it
// carries, in plain text: each channel writes them in its own markup.
type DigestFacts struct {
	// Covered are the indexes of the items the digest carries, ascending.
	Covered []int
	// Mentions are everyone the covered items mention.
	Mentions Mentions
	// Worst is the covered alert that looks worst (Severity): it colours
	// the digest.
	Worst Alert
	// Heading says how many alerts and issues ("12 alerts in 3 issues").
	Heading string
	// Title is the heading, after "[project] " when all share one project.
	Title string
	// Levels counts the alerts by level, in level order, with emoji;
	// Projects by project, most first.
	Levels, Projects string
	// Span is the time of the first alert to the last; "" when none has a
	// time.
	Span string
	// Order is the groups, newest first: the order of the digest's lines.
	Order []*Group
	// Notes are the covered items' notes, each once, at most three.
	Notes []string
}

// maxDigestNotes bounds the notes a digest repeats: one per fallback
// reason, and a storm of them must not crowd out the issues.
const maxDigestNotes = 3

// Digest lays out what a digest of groups (of items, oldest first) shows,
// in lang, with times in zone (nil: UTC).
func Digest(items []Item, groups []*Group, lang string, zone *time.Location) DigestFacts {
	l := LabelsFor(lang)
	var d DigestFacts
	for _, g := range groups {
		d.Covered = append(d.Covered, g.Items...)
	}
	slices.Sort(d.Covered)
	levels, projects := map[string]int{}, map[string]int{}
	var first, last time.Time
	d.Worst = Alert{Action: "resolved"}
	for _, i := range d.Covered {
		it := items[i]
		a := it.Alert
		d.Mentions = d.Mentions.Union(it.Mentions)
		lv, _ := StyleOf(a)
		levels[lv]++
		projects[a.DisplayProject()]++
		if Severity(a) > Severity(d.Worst) {
			d.Worst = a
		}
		if !a.Time.IsZero() && (first.IsZero() || a.Time.Before(first)) {
			first = a.Time
		}
		if a.Time.After(last) {
			last = a.Time
		}
		if n := PlainLine(it.Note); n != "" && !slices.Contains(d.Notes, n) && len(d.Notes) < maxDigestNotes {
			d.Notes = append(d.Notes, n)
		}
	}
	d.Heading = l.DigestTitle(len(d.Covered), len(groups))
	d.Title = d.Heading
	if len(projects) == 1 {
		for p := range projects {
			if p = Shorten(PlainLine(p), 40); p != "" {
				d.Title = "[" + p + "] " + d.Heading
			}
		}
	}
	d.Levels = counts(levels, levelOrder, true)
	d.Projects = counts(projects, nil, false)
	if !first.IsZero() {
		d.Span = span(first, last, zone)
	}
	d.Order = slices.Clone(groups)
	slices.SortStableFunc(d.Order, func(a, b *Group) int { return b.Newest.Time.Compare(a.Newest.Time) })
	return d
}

// Severity ranks how bad an alert looks, 0 (resolved) to 5 (fatal): a
// regression or escalation counts as an error whatever the level,
// and a level Sentry made up as an error too.
func Severity(a Alert) int {
	lv, _ := StyleOf(a)
	n := 4
	switch lv {
	case "fatal", "critical":
		n = 5
	case "warning":
		n = 3
	case "info":
		n = 2
	case "debug":
		n = 1
	case "resolved":
		n = 0
	}
	if a.Worsened() {
		n = max(n, 4)
	}
	return n
}

var levelOrder = []string{"fatal", "critical", "error", "warning", "info", "debug", "resolved"}

// maxCounts bounds a counts line: a storm over many projects names the
// largest.
const maxCounts = 8

// counts is "a 3 · b 2": in order, or by count when order is nil, at most
// maxCounts; with emoji, each level after its emoji.
func counts(n map[string]int, order []string, emoji bool) string {
	keys := order
	if keys == nil {
		for k := range n {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if n[a] != n[b] {
				return n[b] - n[a]
			}
			return strings.Compare(a, b)
		})
	}
	var parts []string
	shown := 0
	for _, k := range keys {
		c, ok := n[k]
		if !ok {
			continue
		}
		if shown == maxCounts {
			parts = append(parts, "… +"+strconv.Itoa(len(n)-maxCounts))
			break
		}
		name := Shorten(PlainLine(k), 40)
		if name == "" {
			name = "-"
		}
		if emoji {
			name = levelStyleOf(k).Emoji + " " + name
		}
		parts = append(parts, name+" "+strconv.Itoa(c))
		shown++
	}
	return strings.Join(parts, " · ")
}

// span shows the time from first to last: the end without its date when
// both fall on one day.
func span(first, last time.Time, zone *time.Location) string {
	out := FormatTime(first, zone)
	if last.Sub(first) < time.Second {
		return out
	}
	if zone == nil {
		zone = time.UTC
	}
	layout := "15:04:05"
	if y, m, d := first.In(zone).Date(); !last.In(zone).Before(time.Date(y, m, d+1, 0, 0, 0, 0, zone)) {
		layout = "2006-01-02 15:04:05"
	}
	return out + " – " + last.In(zone).Format(layout)
}
