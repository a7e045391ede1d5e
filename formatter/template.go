package formatter

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Template is a user-supplied Go text/template that replaces the built-in
// card. The file defines two templates, "title" and "text":
//
//	{{define "title"}}[{{.Alert.Project}}] {{.Alert.Title}}{{end}}
//	{{define "text"}}### {{.Emoji}} {{link .Alert.Title .Alert.Link}}{{end}}
//
// The keyword, the @-mentions and the size limit are applied afterwards, as
// for built-in cards.
type Template struct {
	name string
	tmpl *template.Template
	zone *time.Location
}

// TemplateData is what a card template sees as ".".
type TemplateData struct {
	// Alert is the normalized alert (see Alert for every field) with its
	// text already escaped for the card (Message keeps its line breaks,
	// Link and pull-request URLs are safe link targets), so a template
	// that places a field without escape cannot break the card.
	Alert Alert
	// Raw is the alert as Sentry sent it: never place its text in a card
	// without escape.
	Raw Alert
	// Mentions are the people this card @-mentions.
	Mentions Mentions
	// Level is the normalized level ("resolved" for resolutions).
	Level string
	// Emoji and Color are the level's emoji and #RRGGBB colour.
	Emoji, Color string
	// Action names what happened, in the card language ("New issue").
	Action string
	// Time is the alert time formatted in the relay's time zone.
	Time string
}

// ParseTemplate parses a card template and tries it on sample alerts of
// every webhook family, so a broken template fails at start-up with its
// line number rather than when an alert is sent. Times are shown in zone
// (nil: UTC).
func ParseTemplate(name, src string, zone *time.Location) (*Template, error) {
	t := template.New(name).Option("missingkey=error")
	t.Funcs(templateFuncs(zone))
	if _, err := t.Parse(src); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	for _, part := range []string{"title", "text"} {
		if t.Lookup(part) == nil {
			return nil, fmt.Errorf("template %s: no {{define %q}} block", name, part)
		}
	}
	tpl := &Template{name: name, tmpl: t, zone: zone}
	for _, a := range sampleAlerts() {
		if _, _, err := tpl.Execute(LangZH, a, Mentions{Mobiles: []string{"13800000000"}}); err != nil {
			return nil, err
		}
	}
	return tpl, nil
}

// Execute renders the title and the text of one alert, with the labels
// of lang.
func (t *Template) Execute(lang string, a Alert, m Mentions) (title, text string, err error) {
	level, st := StyleOf(a)
	data := TemplateData{
		Alert: templateView(a), Raw: a, Mentions: m, Level: level, Emoji: st.Emoji, Color: st.Color,
		Action: Escape(LabelsFor(lang).Heading(a)), Time: FormatTime(a.Time, t.zone),
	}
	var tb, xb bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&tb, "title", data); err != nil {
		return "", "", fmt.Errorf("template %w", err)
	}
	if err := t.tmpl.ExecuteTemplate(&xb, "text", data); err != nil {
		return "", "", fmt.Errorf("template %w", err)
	}
	return tb.String(), xb.String(), nil
}

func templateFuncs(zone *time.Location) template.FuncMap {
	return template.FuncMap{
		// escape makes user text safe inline; escapeBlock keeps line breaks.
		"escape":      Escape,
		"escapeBlock": EscapeBlock,
		// link renders [text](url) with both made safe.
		"link": link,
		// truncate shortens to n runes with an ellipsis.
		"truncate": func(n int, s string) string { return Shorten(s, n) },
		// time formats a time in RELAY_TIMEZONE; timeIn in another zone.
		"time": func(t time.Time) string { return FormatTime(t, zone) },
		"timeIn": func(zone string, t time.Time) (string, error) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return "", err
			}
			return t.In(loc).Format("2006-01-02 15:04:05 MST"), nil
		},
		"levelColor": func(level string) string { return levelStyleOf(level).Color },
		"levelEmoji": func(level string) string { return levelStyleOf(level).Emoji },
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"tag":        func(key string, a Alert) string { return a.Tag(key) },
	}
}

func levelStyleOf(level string) LevelStyle {
	_, st := StyleOf(Alert{Level: level})
	return st
}

// sampleAlerts are what a template is tried on at start-up: every family,
// with empty and full fields.
func sampleAlerts() []Alert {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	full := Alert{
		Resource: "event_alert", Action: "triggered", Title: "ValueError: bad", Project: "api",
		ProjectName: "API", Org: "acme", Environment: "production", Level: "error",
		Location: "app/views.py:12 in index", Release: "api@1.0", Rule: "New issue",
		Events: 3, Users: 2, Message: "bad", Link: "https://sentry.example.com/organizations/acme/issues/1/",
		Tags: []Tag{{Key: "browser", Value: "Chrome"}}, Time: t, IssueID: "1", ShortID: "API-1",
		EventID: "abc", Settings: map[string]string{"route": "default"},
	}
	return []Alert{
		full,
		{Resource: "issue", Action: "resolved", Title: "x", Time: t},
		{Resource: "metric_alert", Action: "critical", Title: "Critical: rule", Level: "critical"},
		{Resource: "legacy", Action: "triggered"},
	}
}

// templateView is a with every text field escaped the way the built-in
// card escapes it; escaping is idempotent, so templates that escape
// explicitly get the same text.
func templateView(a Alert) Alert {
	for _, f := range []*string{&a.Resource, &a.Action, &a.Title, &a.Project, &a.ProjectName, &a.Org,
		&a.Environment, &a.Level, &a.Location, &a.Release, &a.Rule, &a.IssueID, &a.ShortID, &a.EventID,
		&a.Assignee, &a.RuleID, &a.Kind, &a.Subtitle, &a.Activity, &a.Actor, &a.Commit} {
		*f = Escape(*f)
	}
	a.Message = EscapeBlock(a.Message)
	a.Link = SafeURL(a.Link)
	a.Tags = slices.Clone(a.Tags)
	for i := range a.Tags {
		a.Tags[i] = Tag{Key: Escape(a.Tags[i].Key), Value: Escape(a.Tags[i].Value)}
	}
	if a.Settings != nil {
		settings := make(map[string]string, len(a.Settings))
		for k, v := range a.Settings {
			settings[Escape(k)] = Escape(v)
		}
		a.Settings = settings
	}
	a.Evidence = slices.Clone(a.Evidence)
	for i, e := range a.Evidence {
		a.Evidence[i] = Evidence{Name: Escape(e.Name), Value: Escape(e.Value), Important: e.Important}
	}
	a.PullRequests = slices.Clone(a.PullRequests)
	for i, pr := range a.PullRequests {
		a.PullRequests[i] = Ref{Title: Escape(pr.Title), URL: SafeURL(pr.URL)}
	}
	return a
}
