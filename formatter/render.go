package formatter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Renderer turns alerts into DingTalk messages for one robot.
type Renderer struct {
	// Language of the labels: LangZH (default) or LangEN.
	Language string
	// Keyword is the robot's custom keyword; every message carries it as
	// 【Keyword】 in the title and the text unless already present.
	Keyword string
	// Type is TypeMarkdown (default) or TypeActionCard.
	Type string
	// Zone is the time zone of the times shown; nil means UTC.
	Zone *time.Location
	// Template, when set, replaces the built-in card title and text.
	Template *Template
}

// Item is one alert waiting for a robot, with the mentions its route chose.
type Item struct {
	Alert    Alert
	Mentions Mentions
}

// Limits on what a single card shows, so one field cannot crowd out the rest.
const (
	titleRunes   = 256
	heading      = 100
	fieldRunes   = 200
	messageRunes = 400
	lineRunes    = 90
)

func (r *Renderer) labels() *labels {
	if l, ok := labelSets[r.Language]; ok {
		return l
	}
	return labelSets[LangZH]
}

func (r *Renderer) zone() *time.Location {
	if r.Zone != nil {
		return r.Zone
	}
	return time.UTC
}

// FormatTime shows t in the renderer's zone.
func (r *Renderer) FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(r.zone()).Format("2006-01-02 15:04:05 MST")
}

// Card renders one alert as a full card.
func (r *Renderer) Card(a Alert, m Mentions) (Message, error) {
	if r.Template != nil {
		title, text, err := r.Template.Execute(r, a, m)
		if err != nil {
			return Message{}, err
		}
		return r.finish(title, text, a.Link, m), nil
	}
	return r.finish(r.cardTitle(a), r.cardText(a), a.Link, m), nil
}

// Minimal renders an alert without links, message, location or anything else
// DingTalk's content checks could object to; it is sent once after DingTalk
// refused the full card.
func (r *Renderer) Minimal(a Alert, m Mentions) Message {
	l := r.labels()
	level, st := styleOf(a)
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s %s %s\n\n", st.Emoji, strings.ToUpper(level), Escape(l.actionLabel(a)))
	b.WriteString(Escape(Shorten(a.Title, heading)))
	b.WriteString("\n\n")
	field(&b, l.Project, a.DisplayProject())
	field(&b, l.Environment, a.Environment)
	field(&b, l.Time, r.FormatTime(a.Time))
	msg := r.finish(r.cardTitle(a), b.String(), "", m)
	if msg.ActionCard != nil {
		// An action card without a target URL is rejected; fall back.
		msg = r.asMarkdown(msg, m)
	}
	return msg
}

func (r *Renderer) cardTitle(a Alert) string {
	title := Shorten(oneLine(a.Title), 64)
	if p := a.DisplayProject(); p != "" {
		title = "[" + oneLine(p) + "] " + title
	}
	return title
}

func (r *Renderer) cardText(a Alert) string {
	l := r.labels()
	level, st := styleOf(a)
	var b strings.Builder
	fmt.Fprintf(&b, "#### <font color=%s>%s %s</font> %s\n\n", st.Color, st.Emoji, strings.ToUpper(level), Escape(l.actionLabel(a)))
	title := a.Title
	if title == "" {
		title = "(no title)"
	}
	b.WriteString("**" + link(Shorten(title, titleRunes), a.Link) + "**\n\n")
	field(&b, l.Project, a.DisplayProject())
	field(&b, l.Environment, a.Environment)
	field(&b, l.Level, NormalizeLevel(a.Level))
	field(&b, l.Location, a.Location)
	field(&b, l.Release, a.Release)
	field(&b, l.Rule, a.Rule)
	field(&b, l.Assignee, a.Assignee)
	if a.Events > 0 {
		field(&b, l.Events, strconv.FormatInt(a.Events, 10))
	}
	if a.Users > 0 {
		field(&b, l.Users, strconv.FormatInt(a.Users, 10))
	}
	field(&b, l.Time, r.FormatTime(a.Time))
	if msg := strings.TrimSpace(a.Message); msg != "" && msg != strings.TrimSpace(a.Title) {
		b.WriteString("\n> " + strings.ReplaceAll(EscapeBlock(Shorten(msg, messageRunes)), "\n", "\n> ") + "\n")
	}
	return b.String()
}

// field writes "- **label:** value" when value is not empty.
func field(b *strings.Builder, label, value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		return
	}
	b.WriteString("- **" + label + ":** " + Escape(Shorten(value, fieldRunes)) + "\n")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
}

// finish adds the keyword and the mentions, fits the text into DingTalk's
// size limit and builds the message of the renderer's type.
func (r *Renderer) finish(title, text, link string, m Mentions) Message {
	msg, _ := r.finishCut(title, text, link, m)
	return msg
}

// finishCut is finish that also reports whether the text had to be cut.
func (r *Renderer) finishCut(title, text, link string, m Mentions) (msg Message, cut bool) {
	title = r.keyworded(oneLine(title))
	text = strings.TrimRight(text, "\n")
	if r.Keyword != "" && !strings.Contains(text, r.Keyword) {
		text = "【" + Escape(r.Keyword) + "】\n\n" + text
	}
	actionCard := r.Type == TypeActionCard && SafeURL(link) != ""
	tail := ""
	if !actionCard {
		tail = mentionText(m)
	}
	msg = Message{MsgType: TypeMarkdown, Markdown: &Markdown{Title: title}}
	if actionCard {
		msg = Message{MsgType: TypeActionCard, ActionCard: &ActionCard{
			Title: title, BtnOrientation: "0",
			SingleTitle: r.labels().ViewInSentry, SingleURL: SafeURL(link),
		}}
	} else if !m.Empty() {
		msg.At = &At{AtMobiles: m.Mobiles, AtUserIDs: m.UserIDs, IsAtAll: m.All}
	}
	budget := TargetBodyBytes - uuidReserve - len(msg.JSON()) - jsonLen(tail)
	if jsonLen(text) > budget {
		text = fitJSON(text, budget-jsonLen("\n\n…")) + "\n\n…"
		cut = true
	}
	if actionCard {
		msg.ActionCard.Text = text + tail
	} else {
		msg.Markdown.Text = text + tail
	}
	return msg, cut
}

func (r *Renderer) asMarkdown(msg Message, m Mentions) Message {
	out := Message{MsgType: TypeMarkdown, Markdown: &Markdown{Title: msg.Title(), Text: msg.Text() + mentionText(m)}}
	if !m.Empty() {
		out.At = &At{AtMobiles: m.Mobiles, AtUserIDs: m.UserIDs, IsAtAll: m.All}
	}
	return out
}

// fitJSON cuts markdown text until its JSON-encoded form fits in budget bytes.
func fitJSON(text string, budget int) string {
	for jsonLen(text) > budget && text != "" {
		over := jsonLen(text) - budget
		text = CutBytes(text, max(len(text)-over, 0))
	}
	return text
}

func (r *Renderer) keyworded(title string) string {
	if r.Keyword == "" || strings.Contains(title, r.Keyword) {
		return title
	}
	return "【" + oneLine(r.Keyword) + "】" + title
}

// mentionText is the "@mobile" tail DingTalk needs in the text, next to the
// at field, before it notifies anyone.
func mentionText(m Mentions) string {
	if m.Empty() {
		return ""
	}
	var parts []string
	for _, s := range m.Mobiles {
		parts = append(parts, "@"+s)
	}
	for _, s := range m.UserIDs {
		parts = append(parts, "@"+s)
	}
	if m.All && len(parts) == 0 {
		parts = append(parts, "@all")
	}
	return "\n\n" + strings.Join(parts, " ")
}

// Test renders the message `sentry-dingtalk-relay test` sends.
func (r *Renderer) Test(now time.Time, robot string) Message {
	l := r.labels()
	text := fmt.Sprintf("#### %s %s\n\n%s\n\n- **%s:** %s\n", levelStyles["info"].Emoji, l.TestTitle, l.TestText, l.Time, r.FormatTime(now))
	if robot != "" {
		text += "- **robot:** " + Escape(robot) + "\n"
	}
	msg := r.finish("sentry-dingtalk-relay: "+l.TestTitle, text, "", Mentions{})
	return msg
}

// digestGroup is the alerts of one issue inside a digest.
type digestGroup struct {
	first  Alert // newest alert of the group, shown on its line
	count  int
	oldest int // index of the group's oldest item, for fairness
	newest time.Time
	items  []int
}

// Digest renders waiting alerts as one summary card: counts by level and
// project, then one line per issue (repeats collapsed as ×N), newest first.
// Items must be oldest first. When they do not all fit in one message, the
// issues waiting longest are taken first; covered lists the indexes of the
// items the message includes, and the rest belong in a later message. A
// digest is never cut: an alert is either on a line of it or not covered.
// With plain set, lines carry no links (the fallback after DingTalk refused
// the content).
func (r *Renderer) Digest(items []Item, plain bool) (msg Message, covered []int) {
	groups := groupItems(items)
	lines := make([]string, len(groups))
	prefix := len(fmt.Sprintf("%d. \n", len(groups)))
	budget := TargetBodyBytes - uuidReserve - 1024 // title, header, mentions: checked below
	n, used := 0, 0
	for i, g := range groups {
		lines[i] = r.digestLine(g, plain)
		cost := prefix + jsonLen(lines[i])
		if used+cost > budget && n > 0 {
			break
		}
		used += cost
		n++
	}
	for {
		msg, covered, cut := r.digest(items, groups[:n], lines[:n])
		if !cut || n == 1 {
			return msg, covered
		}
		n--
	}
}

// digest renders the chosen groups and reports whether it had to be cut.
func (r *Renderer) digest(items []Item, groups []*digestGroup, lines []string) (Message, []int, bool) {
	l := r.labels()
	var m Mentions
	var covered []int
	for _, g := range groups {
		for _, i := range g.items {
			m = m.Union(items[i].Mentions)
			covered = append(covered, i)
		}
	}
	slices.Sort(covered)
	levels := map[string]int{}
	projects := map[string]int{}
	var first, last time.Time
	worst := "resolved"
	for _, i := range covered {
		a := items[i].Alert
		lv, _ := styleOf(a)
		levels[lv]++
		projects[a.DisplayProject()]++
		if severity(lv) > severity(worst) {
			worst = lv
		}
		if first.IsZero() || a.Time.Before(first) {
			first = a.Time
		}
		if a.Time.After(last) {
			last = a.Time
		}
	}
	// Lines newest first.
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return groups[b].newest.Compare(groups[a].newest) })

	var b strings.Builder
	st := levelStyles[worst]
	fmt.Fprintf(&b, "#### <font color=%s>%s</font> %s\n\n", st.Color, st.Emoji, l.DigestTitle(len(covered), len(groups)))
	b.WriteString("- **" + l.Levels + ":** " + countsLine(levels, levelOrder(), true) + "\n")
	b.WriteString("- **" + l.Projects + ":** " + countsLine(projects, nil, false) + "\n")
	if !first.IsZero() {
		b.WriteString("- **" + l.Time + ":** " + r.FormatTime(first))
		if last.Sub(first) >= time.Second {
			layout := "15:04:05"
			if y1, m1, d1 := first.In(r.zone()).Date(); !last.In(r.zone()).Before(time.Date(y1, m1, d1+1, 0, 0, 0, 0, r.zone())) {
				layout = "2006-01-02 15:04:05"
			}
			b.WriteString(" – " + last.In(r.zone()).Format(layout))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for i, gi := range order {
		fmt.Fprintf(&b, "%d. %s\n", i+1, lines[gi])
	}
	if rest := len(items) - len(covered); rest > 0 {
		b.WriteString("\n" + l.MoreFollow(rest) + "\n")
	}
	title := l.DigestTitle(len(covered), len(groups))
	if len(projects) == 1 {
		for p := range projects {
			if p != "" {
				title = "[" + p + "] " + title
			}
		}
	}
	r2 := *r
	r2.Type = TypeMarkdown // a digest has many links, not one button target
	msg, cut := r2.finishCut(title, b.String(), "", m)
	return msg, covered, cut
}

// digestLine is one issue of a digest. The "×N" count is part of the
// contract: it tells how many alerts of that issue the line stands for.
func (r *Renderer) digestLine(g *digestGroup, plain bool) string {
	a := g.first
	_, st := styleOf(a)
	title := Shorten(oneLine(a.Title), lineRunes)
	if title == "" {
		title = "(no title)"
	}
	var b strings.Builder
	b.WriteString(st.Emoji + " ")
	if plain {
		b.WriteString(Escape(title))
	} else {
		b.WriteString(link(title, a.Link))
	}
	fmt.Fprintf(&b, " ×%d", g.count)
	for _, s := range []string{a.DisplayProject(), a.Environment} {
		if s != "" {
			b.WriteString(" · " + Escape(Shorten(s, 40)))
		}
	}
	if !g.newest.IsZero() {
		b.WriteString(" · " + g.newest.In(r.zone()).Format("15:04:05"))
	}
	return b.String()
}

// groupItems collapses items of the same issue, ordered by the oldest item
// of each group so a long storm cannot starve early alerts.
func groupItems(items []Item) []*digestGroup {
	byKey := map[string]*digestGroup{}
	var groups []*digestGroup
	for i, it := range items {
		k := it.Alert.GroupKey()
		g, ok := byKey[k]
		if !ok {
			g = &digestGroup{oldest: i}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.count++
		g.items = append(g.items, i)
		if g.count == 1 || !it.Alert.Time.Before(g.newest) {
			g.first = it.Alert
			g.newest = it.Alert.Time
		}
	}
	return groups
}

func levelOrder() []string {
	return []string{"fatal", "critical", "error", "warning", "info", "debug", "resolved"}
}

func severity(level string) int {
	switch level {
	case "fatal", "critical":
		return 5
	case "error":
		return 4
	case "warning":
		return 3
	case "info":
		return 2
	case "debug":
		return 1
	}
	return 0
}

// countsLine renders "a 3 · b 2", in the given order or by count.
func countsLine(counts map[string]int, order []string, emoji bool) string {
	keys := order
	if keys == nil {
		for k := range counts {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return strings.Compare(a, b)
		})
	}
	var parts []string
	for _, k := range keys {
		n, ok := counts[k]
		if !ok {
			continue
		}
		name := k
		if name == "" {
			name = "-"
		}
		name = Escape(Shorten(name, 40))
		if emoji {
			name = levelStyles[k].Emoji + " " + name
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, n))
		if len(parts) == 8 && len(keys) > 8 {
			parts = append(parts, fmt.Sprintf("… +%d", len(keys)-8))
			break
		}
	}
	return strings.Join(parts, " · ")
}
