// Package formatter turns normalized Sentry alerts into DingTalk robot messages.
//
// Parsers of Sentry payloads (package formatter/sentry) produce an Alert; the
// Renderer turns one Alert into a card, several into a digest, and keeps every
// message under DingTalk's body size limit.
package formatter

import (
	"slices"
	"strings"
	"time"
)

// Alert is one Sentry notification, normalized across webhook families.
// It is what the queue stores, so it carries only what a card can show.
type Alert struct {
	// Resource is the Sentry-Hook-Resource (event_alert, issue, error,
	// metric_alert) or "legacy" for the WebHooks plugin.
	Resource string `json:"resource"`
	// Action is the webhook action: triggered, created, resolved, critical...
	Action string `json:"action,omitempty"`
	// Title is the issue title or the metric alert's description title.
	Title string `json:"title"`
	// Project is the project slug; ProjectName its display name when known.
	Project     string `json:"project,omitempty"`
	ProjectName string `json:"project_name,omitempty"`
	// Org is the organization slug when the payload reveals it.
	Org         string `json:"org,omitempty"`
	Environment string `json:"environment,omitempty"`
	// Level is fatal, error, warning, info or debug for events and issues;
	// critical, warning or resolved for metric alerts.
	Level    string `json:"level,omitempty"`
	Location string `json:"location,omitempty"`
	Release  string `json:"release,omitempty"`
	Rule     string `json:"rule,omitempty"`
	// Events and Users are the issue's counts; zero when the payload has none.
	Events int64 `json:"events,omitempty"`
	Users  int64 `json:"users,omitempty"`
	// Message is the log message, the exception value or the metric
	// description, already shortened by the parser.
	Message string `json:"message,omitempty"`
	// Link is the Sentry web page of the issue, event or metric alert.
	Link string `json:"link,omitempty"`
	Tags []Tag  `json:"tags,omitempty"`
	// Time is when the event happened, or when the relay received it.
	Time    time.Time `json:"time"`
	IssueID string    `json:"issue_id,omitempty"`
	ShortID string    `json:"short_id,omitempty"`
	EventID string    `json:"event_id,omitempty"`
	// Assignee is set for issue.assigned.
	Assignee string `json:"assignee,omitempty"`
	// RuleID is the opaque id of the rule, workflow or alert that fired
	// (Sentry's ids may exceed 32 bits, or be synthetic): what dedupe keys
	// use, never the rule's name.
	RuleID string `json:"rule_id,omitempty"`
	// Kind says what an issue-platform alert is about: KindUptime,
	// KindCron, or the occurrence's type id for other issue types; "" for
	// errors.
	Kind string `json:"kind,omitempty"`
	// Subtitle is an issue-platform occurrence's subtitle.
	Subtitle string `json:"subtitle,omitempty"`
	// Evidence are an occurrence's evidence lines, important ones first.
	Evidence []Evidence `json:"evidence,omitempty"`
	// Activity is the status change or Seer step of an activity alert
	// (status_regression, seer_root_cause_completed...).
	Activity string `json:"activity,omitempty"`
	// Actor is who made the change an activity alert reports.
	Actor string `json:"actor,omitempty"`
	// Commit is the commit an issue was resolved in.
	Commit string `json:"commit,omitempty"`
	// PullRequests are the pull requests an activity alert names.
	PullRequests []Ref `json:"pull_requests,omitempty"`
	// Settings are the alert-rule-action settings saved with the Sentry rule
	// that fired (route, mentions), keyed by field name.
	Settings map[string]string `json:"settings,omitempty"`
}

// Kinds of issue-platform alerts.
const (
	KindUptime = "uptime"
	KindCron   = "cron"
)

// Evidence is one line of an issue-platform occurrence's evidence.
type Evidence struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Important bool   `json:"important,omitempty"`
}

// Ref is a titled link, such as a pull request.
type Ref struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Tag is one Sentry event tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Mentions are the people a message @-mentions.
type Mentions struct {
	Mobiles []string `json:"mobiles,omitempty"`
	UserIDs []string `json:"user_ids,omitempty"`
	All     bool     `json:"all,omitempty"`
}

// Empty reports whether m mentions nobody.
func (m Mentions) Empty() bool {
	return len(m.Mobiles) == 0 && len(m.UserIDs) == 0 && !m.All
}

// Union returns everyone mentioned by m or o, each once, in first-seen order.
func (m Mentions) Union(o Mentions) Mentions {
	return Mentions{
		Mobiles: appendNew(m.Mobiles, o.Mobiles),
		UserIDs: appendNew(m.UserIDs, o.UserIDs),
		All:     m.All || o.All,
	}
}

func appendNew(dst, src []string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// GroupKey identifies the Sentry issue an alert belongs to, so a digest can
// collapse repeats of the same issue into one line.
func (a Alert) GroupKey() string {
	if a.IssueID != "" {
		return a.Resource + "\x00" + a.Project + "\x00" + a.IssueID
	}
	return a.Resource + "\x00" + a.Project + "\x00" + a.Title
}

// DisplayProject is the name a card shows for the project.
func (a Alert) DisplayProject() string {
	if a.Project != "" {
		return a.Project
	}
	return a.ProjectName
}

// Tag returns the value of the first tag named key.
func (a Alert) Tag(key string) string {
	for _, t := range a.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// Resolved reports whether the alert announces that a problem went away.
func (a Alert) Resolved() bool {
	return a.Action == "resolved" || strings.HasPrefix(a.Activity, "status_resolved")
}

// Worsened reports whether the alert announces that a problem came back or
// grew: such cards are red whatever the issue's level.
func (a Alert) Worsened() bool {
	return a.Activity == "status_regression" || a.Activity == "status_escalating"
}

// NormalizeLevel lowercases a Sentry level and maps aliases to the five
// event levels (plus the metric-alert states critical and resolved).
func NormalizeLevel(level string) string {
	l := strings.ToLower(strings.TrimSpace(level))
	switch l {
	case "warn":
		return "warning"
	case "err":
		return "error"
	case "critical", "fatal", "error", "warning", "info", "debug", "resolved", "":
		return l
	case "log", "sample":
		return "info"
	}
	return l
}
