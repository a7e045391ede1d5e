package formatter

import (
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
	// Actions, when set, gives issue cards their action links (one line
	// under the card, or buttons of an action card) and digests a link to
	// review their issues.
	Actions Actions
}

// Actions makes the links people act on issues with from a card (package
// relay/action makes them for the relay).
type Actions interface {
	// Links are the action links of an alert's card; none for an alert
	// with no issue to act on.
	Links(a Alert) []Ref
	// Review is a digest's link to a page listing the alerts' issues with
	// their actions; false when none of them has any.
	Review(as []Alert) (Ref, bool)
}

// Item is one alert waiting for a receiver, with the mentions its route
// chose.
type Item struct {
	Alert    Alert
	Mentions Mentions
	// Type overrides the receiver's message type for this alert ("" keeps
	// it): a route's msgtype.
	Type string
	// Note says why this receiver got an alert that was not its own (a
	// fallback); cards show it first.
	Note string
}

// Limits on what a single card shows, so one field cannot crowd out the rest.
const (
	titleRunes   = 256
	heading      = 100
	fieldRunes   = 200
	messageRunes = 400
	lineRunes    = 90
)

func (r *Renderer) labels() *Labels { return LabelsFor(r.Language) }

func (r *Renderer) zone() *time.Location {
	if r.Zone != nil {
		return r.Zone
	}
	return time.UTC
}

// FormatTime shows t in the renderer's zone.
func (r *Renderer) FormatTime(t time.Time) string {
	return FormatTime(t, r.Zone)
}

// Card renders one alert as a full card.
func (r *Renderer) Card(a Alert, m Mentions) (Message, error) {
	return r.Item(Item{Alert: a, Mentions: m})
}

// Item renders one waiting alert as a full card, of the item's message type
// when it has one, with its note first.
func (r *Renderer) Item(it Item) (Message, error) {
	if it.Type != "" {
		typed := *r
		typed.Type = it.Type
		r = &typed
	}
	a, m := it.Alert, it.Mentions
	if r.Template != nil {
		title, body, err := r.Template.Execute(r.Language, a, m)
		if err != nil {
			return Message{}, err
		}
		return r.finish(title, r.note(it.Note)+templated(body), a.Link, m, r.actionLinks(a)), nil
	}
	return r.finish(r.cardTitle(a), r.note(it.Note)+r.cardText(a), a.Link, m, r.actionLinks(a)), nil
}

// actionLinks are a's action links, when the renderer makes them.
func (r *Renderer) actionLinks(a Alert) []Ref {
	if r.Actions == nil {
		return nil
	}
	return r.Actions.Links(a)
}

// note is an item's note as the card's first line.
func (r *Renderer) note(note string) markup {
	if note == "" {
		return ""
	}
	return quote("↪ "+r.labels().Fallback+Shorten(note, fieldRunes)) + "\n\n"
}

// Minimal renders an alert without links, message, location or anything else
// DingTalk's content checks could object to; it is sent once after DingTalk
// refused the full card.
func (r *Renderer) Minimal(a Alert, m Mentions) Message {
	return r.MinimalItem(Item{Alert: a, Mentions: m})
}

// MinimalItem is Minimal of a waiting alert, with its note.
func (r *Renderer) MinimalItem(it Item) Message {
	a, m := it.Alert, it.Mentions
	s := Summarize(a, r.Language, r.Zone)
	l := r.labels()
	var c card
	c.put(r.note(it.Note))
	c.put("#### ", text(s.Style.Emoji+" "+strings.ToUpper(s.Level)), " ", text(s.Heading), "\n\n")
	c.put(text(Shorten(s.Title, heading)), "\n\n")
	for _, f := range []Fact{{l.Project, a.DisplayProject()}, {l.Environment, a.Environment}, {l.Time, r.FormatTime(a.Time)}} {
		if strings.TrimSpace(f.Value) != "" {
			c.fact(f)
		}
	}
	msg := r.finish(r.cardTitle(a), c.markup(), "", m, nil)
	if msg.ActionCard != nil {
		// An action card without a target URL is rejected; fall back.
		msg = r.asMarkdown(msg, m)
	}
	return msg
}

// cardTitle is the message title DingTalk shows in the chat list and the
// notification: plain text, not markdown.
func (r *Renderer) cardTitle(a Alert) string {
	title := Shorten(PlainLine(a.Title), 64)
	if p := a.DisplayProject(); p != "" {
		title = "[" + PlainLine(p) + "] " + title
	}
	return title
}

func (r *Renderer) cardText(a Alert) markup {
	s := Summarize(a, r.Language, r.Zone)
	var c card
	c.put("#### <font color=", markup(colorCode(s.Style.Color)), ">", text(s.Style.Emoji+" "+strings.ToUpper(s.Level)), "</font> ", text(s.Heading), "\n\n")
	c.put("**", linked(Shorten(s.Title, titleRunes), s.Link), "**\n\n")
	if s.Subtitle != "" {
		c.put(text(Shorten(s.Subtitle, fieldRunes)), "\n\n")
	}
	for _, f := range s.Facts {
		c.fact(f)
	}
	if len(s.Refs) > 0 {
		refs := make([]markup, len(s.Refs))
		for i, ref := range s.Refs {
			refs[i] = linked(Shorten(ref.Title, lineRunes), ref.URL)
		}
		c.put("- **", text(r.labels().PullRequests), ":** ", joinMarkup(refs, " · "), "\n")
	}
	if s.Quote != "" {
		c.put("\n", quote(Shorten(s.Quote, messageRunes)), "\n")
	}
	if len(s.Extra) > 0 {
		c.put("\n")
		for _, f := range s.Extra {
			c.fact(f)
		}
	}
	return c.markup()
}

// PlainLine makes payload text one line of plain text, as a message title
// is: control characters become spaces and bidi controls, which could
// reorder what is shown around them, become U+FFFD.
func PlainLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return ' '
		case isBidiControl(r):
			return '\uFFFD'
		}
		return r
	}, s)), " ")
}

// finish adds the keyword, the action links and the mentions, fits the
// text into DingTalk's size limit and builds the message of the renderer's
// type.
func (r *Renderer) finish(title string, body markup, link string, m Mentions, actions []Ref) Message {
	msg, _ := r.finishCut(title, body, link, m, actions)
	return msg
}

// finishCut is finish that also reports whether the text had to be cut.
// The action links and the mentions are never cut: the text makes room.
func (r *Renderer) finishCut(title string, body markup, link string, m Mentions, actions []Ref) (msg Message, cut bool) {
	title = r.keyworded(PlainLine(title))
	body = trimNewlines(body)
	if r.Keyword != "" && !strings.Contains(string(body), r.Keyword) {
		body = "【" + text(r.Keyword) + "】\n\n" + body
	}
	target := href(link)
	actionCard := r.Type == TypeActionCard && target != ""
	var tail markup
	if !actionCard {
		var links []markup
		for _, a := range actions {
			if l := actionLink(a.Title, a.URL); l != "" {
				links = append(links, l)
			}
		}
		if len(links) > 0 {
			tail = "\n\n" + joinMarkup(links, " · ")
		}
		tail += mentionText(m)
	}
	msg = Message{MsgType: TypeMarkdown, Markdown: &Markdown{Title: title}}
	if actionCard {
		msg = Message{MsgType: TypeActionCard, ActionCard: &ActionCard{Title: title, BtnOrientation: "0"}}
		buttons := []Button{{Title: r.labels().ViewInSentry, ActionURL: string(target)}}
		for _, a := range actions {
			if u := actionTarget(a.URL); u != "" {
				buttons = append(buttons, Button{Title: PlainLine(a.Title), ActionURL: string(u)})
			}
		}
		if len(buttons) == 1 {
			msg.ActionCard.SingleTitle, msg.ActionCard.SingleURL = buttons[0].Title, buttons[0].ActionURL
		} else {
			msg.ActionCard.Buttons = buttons
		}
	} else if !m.Empty() {
		msg.At = &At{AtMobiles: validMobiles(m.Mobiles), AtUserIDs: validUserIDs(m.UserIDs), IsAtAll: m.All}
	}
	budget := TargetBodyBytes - uuidReserve - len(msg.JSON()) - jsonLen(string(tail))
	if jsonLen(string(body)) > budget {
		body = fitJSON(body, budget-jsonLen("\n\n…")) + "\n\n…"
		cut = true
	}
	if actionCard {
		msg.ActionCard.Text = string(body + tail)
	} else {
		msg.Markdown.Text = string(body + tail)
	}
	return msg, cut
}

func (r *Renderer) asMarkdown(msg Message, m Mentions) Message {
	out := Message{MsgType: TypeMarkdown, Markdown: &Markdown{Title: msg.Title(), Text: msg.Text() + string(mentionText(m))}}
	if !m.Empty() {
		out.At = &At{AtMobiles: validMobiles(m.Mobiles), AtUserIDs: validUserIDs(m.UserIDs), IsAtAll: m.All}
	}
	return out
}

// fitJSON cuts markdown text until its JSON-encoded form fits in budget bytes.
func fitJSON(body markup, budget int) markup {
	s := string(body)
	for jsonLen(s) > budget && s != "" {
		over := jsonLen(s) - budget
		s = CutBytes(s, max(len(s)-over, 0))
	}
	return markup(s)
}

func (r *Renderer) keyworded(title string) string {
	if r.Keyword == "" || strings.Contains(title, r.Keyword) {
		return title
	}
	return "【" + PlainLine(r.Keyword) + "】" + title
}

// mentionText is the "@mobile" tail DingTalk needs in the text, next to the
// at field, before it notifies anyone. Only well-formed mobiles and user
// ids are written: a mention is the one piece of a card that must stay
// active, so nothing else may pass for one.
func mentionText(m Mentions) markup {
	var parts []string
	for _, s := range validMobiles(m.Mobiles) {
		parts = append(parts, "@"+s)
	}
	for _, s := range validUserIDs(m.UserIDs) {
		parts = append(parts, "@"+s)
	}
	if m.All && len(parts) == 0 {
		parts = append(parts, "@all")
	}
	if len(parts) == 0 {
		return ""
	}
	return markup("\n\n" + strings.Join(parts, " "))
}

// colorCode is a #RRGGBB colour of the card's own table.
func colorCode(c string) string {
	if !colorRE.MatchString(c) {
		return "#E03E2F"
	}
	return c
}

// Group is the alerts of one issue inside a digest.
type Group struct {
	// Newest is the group's newest alert, the one its line shows.
	Newest Alert
	// Count is how many alerts the line stands for (its "×N").
	Count int
	// Items are the indexes of the group's items, oldest first.
	Items []int
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
	groups := GroupItems(items)
	lines := make([]markup, len(groups))
	prefix := len(strconv.Itoa(len(groups))) + len(". \n")
	budget := TargetBodyBytes - uuidReserve - 1024 // title, header, mentions: checked below
	n, used := 0, 0
	for i, g := range groups {
		lines[i] = r.digestLine(g, plain)
		cost := prefix + jsonLen(string(lines[i]))
		if used+cost > budget && n > 0 {
			break
		}
		used += cost
		n++
	}
	for {
		msg, covered, cut := r.digest(items, groups[:n], lines[:n], plain)
		if !cut || n == 1 {
			return msg, covered
		}
		n--
	}
}

// digest renders the chosen groups and reports whether it had to be cut.
func (r *Renderer) digest(items []Item, groups []*Group, lines []markup, plain bool) (Message, []int, bool) {
	l := r.labels()
	d := Digest(items, groups, r.Language, r.Zone)
	line := map[*Group]markup{}
	for i, g := range groups {
		line[g] = lines[i]
	}
	var c card
	for _, n := range d.Notes {
		c.put(r.note(n))
	}
	_, st := StyleOf(d.Worst)
	c.put("#### <font color=", markup(colorCode(st.Color)), ">", text(st.Emoji), "</font> ", text(d.Heading), "\n\n")
	c.put("- **", text(l.Levels), ":** ", text(d.Levels), "\n")
	c.put("- **", text(l.Projects), ":** ", text(d.Projects), "\n")
	if d.Span != "" {
		c.put("- **", text(l.Time), ":** ", text(d.Span), "\n")
	}
	c.put("\n")
	for i, g := range d.Order {
		c.put(text(strconv.Itoa(i+1)), ". ", line[g], "\n")
	}
	if rest := len(items) - len(d.Covered); rest > 0 {
		c.put("\n", text(l.MoreFollow(rest)), "\n")
	}
	var review []Ref
	if r.Actions != nil && !plain {
		as := make([]Alert, len(d.Covered))
		for i, idx := range d.Covered {
			as[i] = items[idx].Alert
		}
		if ref, ok := r.Actions.Review(as); ok {
			review = []Ref{ref}
		}
	}
	markdown := *r
	markdown.Type = TypeMarkdown // a digest has many links, not one button target
	msg, cut := markdown.finishCut(d.Title, c.markup(), "", d.Mentions, review)
	return msg, d.Covered, cut
}

// digestLine is one issue of a digest. The "×N" count is part of the
// contract: it tells how many alerts of that issue the line stands for.
func (r *Renderer) digestLine(g *Group, plain bool) markup {
	a := g.Newest
	_, st := StyleOf(a)
	title := Shorten(PlainLine(a.Title), lineRunes)
	if title == "" {
		title = "(no title)"
	}
	var c card
	c.put(text(st.Emoji), " ")
	if plain {
		c.put(text(title))
	} else {
		c.put(linked(title, a.Link))
	}
	c.put(" ×", text(strconv.Itoa(g.Count)))
	for _, s := range []string{a.DisplayProject(), a.Environment} {
		if s != "" {
			c.put(" · ", text(Shorten(s, 40)))
		}
	}
	if !a.Time.IsZero() {
		c.put(" · ", text(a.Time.In(r.zone()).Format("15:04:05")))
	}
	return c.markup()
}

// GroupItems collapses items (oldest first) of the same issue into groups,
// ordered by the oldest item of each so a long storm cannot starve early
// alerts.
func GroupItems(items []Item) []*Group {
	byKey := map[string]*Group{}
	var groups []*Group
	for i, it := range items {
		k := it.Alert.GroupKey()
		g, ok := byKey[k]
		if !ok {
			g = &Group{}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.Count++
		g.Items = append(g.Items, i)
		if g.Count == 1 || !it.Alert.Time.Before(g.Newest.Time) {
			g.Newest = it.Alert
		}
	}
	return groups
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
