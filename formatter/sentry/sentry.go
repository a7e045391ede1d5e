// Package sentry parses the webhooks Sentry sends, of every family, into
// formatter.Alert.
//
// Integration Platform webhooks carry a Sentry-Hook-Resource header
// (event_alert, issue, error, metric_alert, comment, installation, seer...);
// the legacy WebHooks plugin sends none and has project_slug and event at the
// top level of its body.
package sentry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// ResourceLegacy is the resource name given to legacy WebHooks plugin payloads.
const ResourceLegacy = "legacy"

// Options are the settings parsing needs besides the payload.
type Options struct {
	// SentryURL is the base URL of Sentry, used to build links that a
	// payload lacks (issue.* webhooks other than created).
	SentryURL string
	// Received is when the webhook arrived; it is the alert time when the
	// payload has none.
	Received time.Time
}

// Webhook is a parsed Sentry webhook.
type Webhook struct {
	Alert formatter.Alert
	// DedupeKey identifies the Sentry delivery, so a repeat of it within the
	// dedupe window is not sent again.
	DedupeKey string
}

// IgnoredError means the request is a well-formed Sentry webhook that
// produces no card (installation, comment, unknown resource or action).
type IgnoredError struct{ Reason string }

func (e *IgnoredError) Error() string { return "ignored: " + e.Reason }

// InvalidError means the body is not JSON or not a Sentry payload.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

func ignored(format string, args ...any) error {
	return &IgnoredError{Reason: fmt.Sprintf(format, args...)}
}

// IsIgnored reports whether err is an IgnoredError and returns its reason.
func IsIgnored(err error) (string, bool) {
	var ie *IgnoredError
	if errors.As(err, &ie) {
		return ie.Reason, true
	}
	return "", false
}

// Actions the relay turns into cards, per resource. Anything else is
// acknowledged and ignored, as Sentry adds resources and actions over time.
var cardActions = map[string][]string{
	"event_alert":    {"triggered"},
	"activity_alert": {"triggered"},
	"issue":          {"created", "resolved", "assigned", "ignored", "archived", "unresolved"},
	"error":          {"created"},
	"metric_alert":   {"critical", "warning", "resolved", "open"},
}

// CardActions returns the resources that make cards and their actions
// (the legacy plugin's as resource "legacy").
func CardActions() map[string][]string {
	out := map[string][]string{ResourceLegacy: {"triggered"}}
	for r, acts := range cardActions {
		out[r] = slices.Clone(acts)
	}
	return out
}

// noCard are the resources the relay acknowledges without a card, and why.
var noCard = map[string]string{
	"installation":     "installation webhooks produce no card",
	"comment":          "comment webhooks produce no card",
	"seer":             "seer webhooks are not forwarded (use an Automation's activity alerts for Seer's findings)",
	"preprod_artifact": "build artifact webhooks produce no card",
	"size_analysis":    "build size webhooks produce no card",
}

// KnownResources are the Sentry-Hook-Resource values the relay understands
// (some of them produce no card).
var KnownResources = []string{"event_alert", "activity_alert", "issue", "error", "metric_alert", "comment",
	"installation", "seer", "preprod_artifact", "size_analysis", ResourceLegacy}

// Limits on what an alert keeps of a payload: the queue stores alerts, so
// no field, however large in the payload, may make a large record.
const (
	maxTitle    = 512
	maxField    = 256
	maxMessage  = 1000
	maxTags     = 25
	maxTagText  = 128
	maxSettings = 16
	maxName     = 64
	maxEvidence = 12
	maxRefs     = 8
	maxLink     = 2048
)

// Parse parses the body of a Sentry webhook. resource is the
// Sentry-Hook-Resource header, or "" for the legacy WebHooks plugin.
// It returns an *InvalidError for a body that is not a Sentry payload and an
// *IgnoredError for a webhook that produces no card.
func Parse(resource string, body []byte, opts Options) (Webhook, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Webhook{}, invalid("empty body")
	}
	if opts.Received.IsZero() {
		opts.Received = time.Now()
	}
	if resource == "" {
		return parseLegacy(body, opts)
	}
	resource = strings.ToLower(strings.TrimSpace(resource))
	var p integrationPayload
	if err := decode(body, &p); err != nil {
		return Webhook{}, err
	}
	action := p.Action.String()
	// Even an ignored webhook tells what it was, for metrics and logs.
	seen := Webhook{Alert: formatter.Alert{Resource: resource, Action: action}}
	if reason, ok := noCard[resource]; ok {
		return seen, ignored("%s", reason)
	}
	actions, known := cardActions[resource]
	if !known {
		return seen, ignored("unknown resource %q", shortText(resource))
	}
	if action == "" {
		return Webhook{}, invalid("%s webhook has no action", resource)
	}
	if !slices.Contains(actions, action) {
		return seen, ignored("%s action %q produces no card", resource, shortText(action))
	}
	if p.Data == nil {
		return Webhook{}, invalid("%s webhook has no data object", resource)
	}
	org := p.Installation.Organization.Slug.String()
	var w Webhook
	switch resource {
	case "event_alert":
		ruleID := ""
		if p.Data.IssueAlert != nil {
			ruleID = p.Data.IssueAlert.ID.String()
		}
		switch {
		case p.Data.Event.identified():
			w = fromEvent(p.Data.Event, opts)
			w.DedupeKey = dedupeKey("event_alert", w.Alert.EventID, ruleID)
		case p.Data.Issue.identified():
			w = fromIssue(p.Data.Issue, org, opts)
			w.DedupeKey = dedupeKey("event_alert:issue", w.Alert.IssueID, ruleID, p.Data.Issue.LastSeen.String())
		default:
			return Webhook{}, invalid("event_alert webhook has neither data.event nor data.issue")
		}
		w.Alert.Rule = p.Data.rule()
		w.Alert.RuleID = ruleID
		if p.Data.IssueAlert != nil {
			w.Alert.Settings = p.Data.IssueAlert.Settings
		}
	case "activity_alert":
		if !p.Data.Issue.identified() {
			return Webhook{}, invalid("activity_alert webhook has no data.issue")
		}
		if p.Data.Activity == nil || p.Data.Activity.Type == "" {
			return Webhook{}, invalid("activity_alert webhook has no data.activity.type")
		}
		kind := p.Data.Activity.Type.String()
		if strings.HasPrefix(kind, "seer_") && strings.HasSuffix(kind, "_started") {
			return seen, ignored("activity %q: Seer started a step; its result comes as its own alert", shortText(kind))
		}
		w = fromActivity(p.Data, org, opts)
	case "error":
		if !p.Data.Error.identified() {
			return Webhook{}, invalid("error webhook has no data.error")
		}
		w = fromEvent(p.Data.Error, opts)
		w.DedupeKey = dedupeKey("error", w.Alert.EventID)
	case "issue":
		if !p.Data.Issue.identified() {
			return Webhook{}, invalid("issue webhook has no data.issue")
		}
		w = fromIssue(p.Data.Issue, org, opts)
		w.DedupeKey = dedupeKey("issue", w.Alert.IssueID, action)
		if a := p.Data.Assignee; a != nil {
			w.Alert.Assignee = assigneeName(a.Name, a.Email)
		}
		if w.Alert.Assignee == "" && action == "assigned" && p.Data.Issue.AssignedTo != nil {
			w.Alert.Assignee = assigneeName(p.Data.Issue.AssignedTo.Name, p.Data.Issue.AssignedTo.Email)
		}
	case "metric_alert":
		if !p.Data.MetricAlert.identified() {
			return Webhook{}, invalid("metric_alert webhook has no data.metric_alert")
		}
		w = fromMetric(p.Data, action, org, opts)
	}
	w.Alert.Resource = resource
	w.Alert.Action = action
	if w.Alert.Org == "" {
		w.Alert.Org = org
	}
	bound(&w, body)
	return w, nil
}

// bound fills what every family needs and bounds every field.
func bound(w *Webhook, body []byte) {
	a := &w.Alert
	a.Title = shorten(a.Title, maxTitle)
	if a.Title == "" {
		a.Title = shorten(firstNonEmpty(a.Message, a.Location, a.ShortID, "Sentry "+a.Resource), maxTitle)
	}
	a.Level = formatter.NormalizeLevel(a.Level)
	for _, f := range []*string{&a.Project, &a.ProjectName, &a.Org, &a.Environment, &a.Level, &a.Location,
		&a.Release, &a.Rule, &a.IssueID, &a.ShortID, &a.EventID, &a.Assignee, &a.RuleID, &a.Kind,
		&a.Subtitle, &a.Activity, &a.Actor, &a.Commit} {
		*f = shorten(*f, maxField)
	}
	a.Message = shorten(a.Message, maxMessage)
	a.Link = safeLink(a.Link)
	a.Tags = a.Tags[:min(len(a.Tags), maxTags)]
	for i := range a.Tags {
		a.Tags[i].Key = shorten(a.Tags[i].Key, maxTagText)
		a.Tags[i].Value = shorten(a.Tags[i].Value, maxTagText)
	}
	if len(a.Settings) > 0 {
		bounded := make(map[string]string, min(len(a.Settings), maxSettings))
		for _, k := range slices.Sorted(maps.Keys(a.Settings)) {
			if len(bounded) == maxSettings {
				break
			}
			bounded[shorten(k, maxName)] = shorten(a.Settings[k], maxField)
		}
		a.Settings = bounded
	}
	a.Evidence = a.Evidence[:min(len(a.Evidence), maxEvidence)]
	for i := range a.Evidence {
		a.Evidence[i].Name = shorten(a.Evidence[i].Name, maxName)
		a.Evidence[i].Value = shorten(a.Evidence[i].Value, maxField)
	}
	a.PullRequests = slices.DeleteFunc(a.PullRequests, func(r formatter.Ref) bool { return safeLink(r.URL) == "" })
	a.PullRequests = a.PullRequests[:min(len(a.PullRequests), maxRefs)]
	for i := range a.PullRequests {
		a.PullRequests[i] = formatter.Ref{Title: shorten(a.PullRequests[i].Title, maxTagText), URL: safeLink(a.PullRequests[i].URL)}
	}
	// A delivery without the ids that identify it is deduplicated by its
	// exact bytes: Sentry sends the same body when it retries.
	if w.DedupeKey == "" {
		sum := sha256.Sum256(body)
		w.DedupeKey = a.Resource + ":body:" + hex.EncodeToString(sum[:16])
	}
}

type integrationPayload struct {
	Action       text `json:"action"`
	Installation struct {
		Organization struct {
			Slug text `json:"slug"`
		} `json:"organization"`
	} `json:"installation"`
	Data *integrationData `json:"data"`
}

type integrationData struct {
	Event         *event `json:"event"`
	Error         *event `json:"error"`
	Issue         *issue `json:"issue"`
	TriggeredRule text   `json:"triggered_rule"`
	IssueAlert    *struct {
		ID       text     `json:"id"`
		Title    text     `json:"title"`
		Settings settings `json:"settings"`
	} `json:"issue_alert"`
	Activity *activity `json:"activity"`
	// Alert is an activity alert's Automation (a workflow).
	Alert *struct {
		ID       text     `json:"id"`
		Title    text     `json:"title"`
		WebURL   text     `json:"web_url"`
		Settings settings `json:"settings"`
	} `json:"alert"`
	MetricAlert      *metricAlert `json:"metric_alert"`
	DescriptionText  text         `json:"description_text"`
	DescriptionTitle text         `json:"description_title"`
	WebURL           text         `json:"web_url"`
	Assignee         *struct {
		Name  text `json:"name"`
		Email text `json:"email"`
	} `json:"assignee"`
}

func (d *integrationData) rule() string {
	if r := d.TriggeredRule.String(); r != "" {
		return r
	}
	if d.IssueAlert != nil {
		return d.IssueAlert.Title.String()
	}
	return ""
}

// event is data.event / data.error of the Integration Platform and the
// event of the legacy plugin (modern and Sentry 8/9 shapes).
type event struct {
	EventID     text        `json:"event_id"`
	ID          text        `json:"id"`
	IssueID     text        `json:"issue_id"`
	GroupID     text        `json:"group_id"`
	Title       text        `json:"title"`
	Culprit     text        `json:"culprit"`
	Location    text        `json:"location"`
	Level       text        `json:"level"`
	Message     text        `json:"message"`
	Logentry    logentry    `json:"logentry"`
	Environment text        `json:"environment"`
	Release     text        `json:"release"`
	Datetime    timestamp   `json:"datetime"`
	Timestamp   timestamp   `json:"timestamp"`
	Received    timestamp   `json:"received"`
	Tags        tags        `json:"tags"`
	Metadata    metadata    `json:"metadata"`
	Exception   exceptions  `json:"exception"`
	Stacktrace  *stacktrace `json:"stacktrace"`
	Threads     threads     `json:"threads"`
	URL         text        `json:"url"`
	WebURL      text        `json:"web_url"`
	// Occurrence is set for issue-platform events: uptime, cron and
	// other issue types the workflow engine alerts on.
	Occurrence *occurrence `json:"occurrence"`

	// Sentry 8/9 interface keys.
	Sentry9Exception  exceptions  `json:"sentry.interfaces.Exception"`
	Sentry9Stacktrace *stacktrace `json:"sentry.interfaces.Stacktrace"`
	Sentry9Message    logentry    `json:"sentry.interfaces.Message"`
}

// identified reports whether the event is there and says which it is: a
// payload with a field of the wrong type decodes to an empty one.
func (e *event) identified() bool {
	return e != nil && (e.EventID != "" || e.ID != "" || e.title() != "")
}

func (e *event) exceptions() []exception {
	if len(e.Exception.Values) > 0 {
		return e.Exception.Values
	}
	return e.Sentry9Exception.Values
}

func (e *event) title() string {
	if t := e.Title.String(); t != "" {
		return t
	}
	if t := e.Metadata.Title.String(); t != "" {
		return t
	}
	if ex := e.exceptions(); len(ex) > 0 {
		last := ex[len(ex)-1]
		if v := last.Value.String(); v != "" && last.Type != "" {
			return last.Type.String() + ": " + v
		}
	}
	return e.message()
}

func (e *event) message() string {
	for _, s := range []text{e.Logentry.Formatted, e.Logentry.Message, e.Message, e.Sentry9Message.Formatted, e.Sentry9Message.Message} {
		if s.String() != "" {
			return s.String()
		}
	}
	if ex := e.exceptions(); len(ex) > 0 {
		if v := ex[len(ex)-1].Value.String(); v != "" {
			return v
		}
	}
	return e.Metadata.Value.String()
}

// location is the culprit, else the last in-app frame of the last exception,
// else the stack of a bare stacktrace or of the crashed thread.
func (e *event) location() string {
	if c := e.Culprit.String(); c != "" {
		return c
	}
	if ex := e.exceptions(); len(ex) > 0 {
		if l := ex[len(ex)-1].Stacktrace.location(); l != "" {
			return l
		}
	}
	for _, st := range []*stacktrace{e.Stacktrace, e.Sentry9Stacktrace} {
		if l := st.location(); l != "" {
			return l
		}
	}
	for _, th := range e.Threads.Values {
		if th.Crashed || th.Current {
			if l := th.Stacktrace.location(); l != "" {
				return l
			}
		}
	}
	return firstNonEmpty(e.Location.String(), e.Metadata.Filename.String())
}

func fromEvent(e *event, opts Options) Webhook {
	a := formatter.Alert{
		Title:       e.title(),
		Level:       firstNonEmpty(e.Level.String(), e.Tags.get("level")),
		Location:    e.location(),
		Environment: firstNonEmpty(e.Environment.String(), e.Tags.get("environment")),
		Release:     firstNonEmpty(e.Release.String(), e.Tags.get("release"), e.Tags.get("sentry:release")),
		Message:     e.message(),
		Link:        issueLink(e.WebURL.String()),
		EventID:     firstNonEmpty(e.EventID.String(), e.ID.String()),
		IssueID:     firstNonEmpty(e.IssueID.String(), e.GroupID.String()),
		Time:        firstTime(time.Time(e.Datetime), time.Time(e.Timestamp), time.Time(e.Received), opts.Received),
	}
	a.Org, a.Project = projectFromURL(e.URL.String())
	if a.Org == "" {
		a.Org = orgFromURL(a.Link)
	}
	for _, t := range e.Tags {
		a.Tags = append(a.Tags, formatter.Tag{Key: t.key, Value: t.value})
	}
	if a.Link == "" && a.IssueID != "" {
		a.Link = issueURL(opts.SentryURL, a.Org, a.IssueID)
	}
	if o := e.Occurrence; o.identified() {
		a.Title = firstNonEmpty(o.IssueTitle.String(), a.Title)
		a.Subtitle = o.Subtitle.String()
		a.Kind = o.kind()
		a.Level = firstNonEmpty(a.Level, o.Level.String())
		for _, ev := range o.EvidenceDisplay {
			a.Evidence = append(a.Evidence, formatter.Evidence{Name: ev.Name.String(), Value: ev.Value.String(), Important: bool(ev.Important)})
		}
		// An occurrence's event has no message of its own: what would be
		// quoted is its title again.
		if a.Message == a.Title {
			a.Message = ""
		}
	}
	return Webhook{Alert: a}
}

// occurrence is the issue-platform part of an event (camelCase, as the
// webhook serializes it).
type occurrence struct {
	IssueTitle      text  `json:"issueTitle"`
	Subtitle        text  `json:"subtitle"`
	Type            count `json:"type"`
	Level           text  `json:"level"`
	EvidenceDisplay []struct {
		Name      text    `json:"name"`
		Value     text    `json:"value"`
		Important boolean `json:"important"`
	} `json:"evidenceDisplay"`
}

func (o *occurrence) identified() bool {
	return o != nil && (o.Type != 0 || o.IssueTitle != "")
}

// kind names the occurrence's issue type by the ranges Sentry's grouptype
// registry gives each product.
func (o *occurrence) kind() string {
	switch t := int64(o.Type); {
	case t >= 7000 && t < 8000:
		return formatter.KindUptime
	case t >= 4000 && t < 5000:
		return formatter.KindCron
	case t >= 1000 && t < 2000:
		return "performance"
	case t >= 2000 && t < 3000:
		return "profiling"
	case t >= 5000 && t < 6000:
		return "replay"
	case t >= 6000 && t < 7000:
		return "feedback"
	case t >= 8000 && t < 9000:
		return "metric"
	case t > 0:
		return strconv.FormatInt(t, 10)
	}
	return ""
}

// issue is the camelCase group serializer of issue.* webhooks (and of the
// newer event_alert form that sends data.issue).
type issue struct {
	ID        text     `json:"id"`
	ShortID   text     `json:"shortId"`
	Title     text     `json:"title"`
	Culprit   text     `json:"culprit"`
	Level     text     `json:"level"`
	Metadata  metadata `json:"metadata"`
	Count     count    `json:"count"`
	UserCount count    `json:"userCount"`
	FirstSeen text     `json:"firstSeen"`
	LastSeen  text     `json:"lastSeen"`
	Permalink text     `json:"permalink"`
	WebURL    text     `json:"web_url"`
	WebURL2   text     `json:"webUrl"`
	Project   struct {
		Name text `json:"name"`
		Slug text `json:"slug"`
	} `json:"project"`
	AssignedTo *struct {
		Name  text `json:"name"`
		Email text `json:"email"`
	} `json:"assignedTo"`
}

func (i *issue) identified() bool {
	return i != nil && (i.ID != "" || i.Title != "")
}

func fromIssue(i *issue, org string, opts Options) Webhook {
	a := formatter.Alert{
		Title:       firstNonEmpty(i.Title.String(), i.Metadata.Title.String()),
		Project:     i.Project.Slug.String(),
		ProjectName: i.Project.Name.String(),
		Level:       i.Level.String(),
		Location:    firstNonEmpty(i.Culprit.String(), frame{Filename: i.Metadata.Filename, Function: i.Metadata.Function}.String()),
		Message:     i.Metadata.Value.String(),
		Events:      int64(i.Count),
		Users:       int64(i.UserCount),
		IssueID:     i.ID.String(),
		ShortID:     i.ShortID.String(),
		Link:        firstNonEmpty(i.WebURL.String(), i.WebURL2.String(), i.Permalink.String()),
		Time:        firstTime(parseTime(i.LastSeen.String()), parseTime(i.FirstSeen.String()), opts.Received),
	}
	a.Org = firstNonEmpty(orgFromURL(a.Link), org)
	if a.Link == "" {
		a.Link = issueURL(opts.SentryURL, a.Org, a.IssueID)
	}
	return Webhook{Alert: a}
}

// activity is an activity alert's status change or Seer step.
type activity struct {
	Type    text `json:"type"`
	Details struct {
		User *struct {
			Name     text `json:"name"`
			Username text `json:"username"`
			Email    text `json:"email"`
		} `json:"user"`
		Version      text    `json:"version"`
		Commit       idOrObj `json:"commit"`
		Summary      text    `json:"summary"`
		PullRequests []struct {
			RepoName text `json:"repo_name"`
			Title    text `json:"title"`
			URL      text `json:"url"`
		} `json:"pull_requests"`
	} `json:"details"`
}

func fromActivity(d *integrationData, org string, opts Options) Webhook {
	w := fromIssue(d.Issue, org, opts)
	a := &w.Alert
	act := d.Activity
	a.Activity = act.Type.String()
	a.Release = act.Details.Version.String()
	a.Commit = string(act.Details.Commit)
	if u := act.Details.User; u != nil {
		a.Actor = firstNonEmpty(u.Name.String(), u.Username.String(), u.Email.String())
	}
	if s := act.Details.Summary.String(); s != "" {
		a.Message = s
	}
	for _, pr := range act.Details.PullRequests {
		a.PullRequests = append(a.PullRequests, formatter.Ref{Title: firstNonEmpty(pr.Title.String(), pr.RepoName.String()), URL: pr.URL.String()})
	}
	alertID := ""
	if al := d.Alert; al != nil {
		alertID = al.ID.String()
		a.Rule = al.Title.String()
		a.RuleID = alertID
		a.Settings = al.Settings
	}
	w.DedupeKey = dedupeKey("activity_alert", a.IssueID, a.Activity, alertID, a.Release)
	return w
}

type metricAlert struct {
	ID           text   `json:"id"`
	Identifier   text   `json:"identifier"`
	Title        text   `json:"title"`
	Projects     []text `json:"projects"`
	DateStarted  text   `json:"date_started"`
	DateDetected text   `json:"date_detected"`
	AlertRule    struct {
		ID          text   `json:"id"`
		Name        text   `json:"name"`
		Projects    []text `json:"projects"`
		Environment text   `json:"environment"`
		Query       text   `json:"query"`
		Aggregate   text   `json:"aggregate"`
		TimeWindow  count  `json:"time_window"`
		Triggers    []struct {
			Label   text `json:"label"`
			Actions []struct {
				Type     text     `json:"type"`
				Settings settings `json:"settings"`
			} `json:"actions"`
		} `json:"triggers"`
	} `json:"alert_rule"`
}

func (m *metricAlert) identified() bool {
	return m != nil && (m.ID != "" || m.Title != "" || m.AlertRule.Name != "" || m.AlertRule.ID != "")
}

// settings returns the alert-rule-action settings of the trigger that fired,
// else of any trigger: Sentry stores them per trigger action.
func (m *metricAlert) settings(action string) settings {
	var other settings
	for _, t := range m.AlertRule.Triggers {
		for _, act := range t.Actions {
			if act.Type.String() != "sentry_app" || len(act.Settings) == 0 {
				continue
			}
			if t.Label.String() == action {
				return act.Settings
			}
			if other == nil {
				other = act.Settings
			}
		}
	}
	return other
}

func fromMetric(d *integrationData, action, org string, opts Options) Webhook {
	m := d.MetricAlert
	rule := m.AlertRule.Name.String()
	title := d.DescriptionTitle.String()
	if title == "" {
		name := firstNonEmpty(rule, m.Title.String(), "metric alert")
		title = strings.ToUpper(action[:1]) + action[1:] + ": " + name
	}
	projects := m.Projects
	if len(projects) == 0 {
		projects = m.AlertRule.Projects
	}
	var names []string
	for _, p := range projects {
		if p.String() != "" {
			names = append(names, p.String())
		}
	}
	// Sentry writes "\n" literally in some description texts.
	msg := strings.ReplaceAll(d.DescriptionText.String(), `\n`, "\n")
	if q := m.AlertRule.Query.String(); q != "" && !strings.Contains(msg, q) {
		msg = strings.TrimSpace(msg + "\n" + m.AlertRule.Aggregate.String() + " " + q)
	}
	level := action
	if action == "open" {
		level = "warning"
	}
	a := formatter.Alert{
		Title:       title,
		Project:     strings.Join(names, ", "),
		Environment: m.AlertRule.Environment.String(),
		Level:       level,
		Rule:        rule,
		Message:     msg,
		Link:        d.WebURL.String(),
		IssueID:     "metric:" + m.AlertRule.ID.String(),
		RuleID:      m.AlertRule.ID.String(),
		Time:        firstTime(parseTime(m.DateStarted.String()), parseTime(m.DateDetected.String()), opts.Received),
		Settings:    m.settings(action),
	}
	a.Org = firstNonEmpty(orgFromURL(a.Link), org)
	if a.Link == "" && opts.SentryURL != "" && a.Org != "" && m.AlertRule.ID != "" {
		a.Link = strings.TrimRight(opts.SentryURL, "/") + "/organizations/" + url.PathEscape(a.Org) +
			"/alerts/rules/details/" + url.PathEscape(m.AlertRule.ID.String()) + "/"
	}
	return Webhook{Alert: a, DedupeKey: dedupeKey("metric_alert", m.ID.String(), action)}
}

// legacyPayload is the body of the legacy WebHooks plugin.
type legacyPayload struct {
	ID              text   `json:"id"`
	Project         text   `json:"project"`
	ProjectName     text   `json:"project_name"`
	ProjectSlug     text   `json:"project_slug"`
	Level           text   `json:"level"`
	Culprit         text   `json:"culprit"`
	Message         text   `json:"message"`
	URL             text   `json:"url"`
	TriggeringRules []text `json:"triggering_rules"`
	Event           *event `json:"event"`
}

func parseLegacy(body []byte, opts Options) (Webhook, error) {
	var p legacyPayload
	if err := decode(body, &p); err != nil {
		return Webhook{}, err
	}
	if !p.Event.identified() || (p.ProjectSlug == "" && p.Project == "") {
		return Webhook{}, invalid("not a Sentry webhook: no Sentry-Hook-Resource header, and no project_slug and event of the legacy WebHooks plugin")
	}
	if c := p.Culprit.String(); c != "" {
		// The plugin's culprit wins; set before fromEvent, it spares
		// decoding the frames.
		p.Event.Culprit = p.Culprit
	}
	w := fromEvent(p.Event, opts)
	a := &w.Alert
	a.Resource, a.Action = ResourceLegacy, "triggered"
	a.Project = firstNonEmpty(p.ProjectSlug.String(), p.Project.String())
	a.ProjectName = p.ProjectName.String()
	a.Level = firstNonEmpty(p.Level.String(), a.Level)
	if a.Message == "" {
		a.Message = p.Message.String()
	}
	a.Link = p.URL.String()
	a.IssueID = p.ID.String()
	a.Org = orgFromURL(a.Link)
	var rules []string
	for _, r := range p.TriggeringRules {
		if r.String() != "" {
			rules = append(rules, r.String())
		}
	}
	a.Rule = strings.Join(rules, ", ")
	if a.Title == "" {
		a.Title = firstNonEmpty(p.Message.String(), p.Culprit.String())
	}
	// The plugin names its rules but gives no id: the event alone
	// identifies the delivery.
	w.DedupeKey = dedupeKey("legacy", a.EventID)
	bound(&w, body)
	return w, nil
}

var (
	apiProjectPath = regexp.MustCompile(`/projects/([^/?#]+)/([^/?#]+)/`)
	orgPath        = regexp.MustCompile(`/organizations/([^/?#]+)/`)
)

// projectFromURL reads org and project slugs from .../projects/{org}/{project}/...
func projectFromURL(u string) (org, project string) {
	m := apiProjectPath.FindStringSubmatch(u)
	if m == nil {
		return "", ""
	}
	org, _ = url.PathUnescape(m[1])
	project, _ = url.PathUnescape(m[2])
	return org, project
}

func orgFromURL(u string) string {
	m := orgPath.FindStringSubmatch(u)
	if m == nil {
		return ""
	}
	org, _ := url.PathUnescape(m[1])
	return org
}

// eventPath is the event part of an event's web URL.
var eventPath = regexp.MustCompile(`/events/[^/?#]+/?$`)

// issueLink turns an event's web URL (…/issues/123/events/abc/) into its
// issue's: cards link to the issue, and the shorter link leaves a digest
// room for more lines.
func issueLink(webURL string) string {
	if u, err := url.Parse(webURL); err == nil && strings.Contains(u.Path, "/issues/") {
		u.Path = eventPath.ReplaceAllString(u.Path, "/")
		return u.String()
	}
	return webURL
}

// issueURL builds the web link of an issue when the payload has none.
func issueURL(base, org, id string) string {
	if base == "" || id == "" {
		return ""
	}
	base = strings.TrimRight(base, "/")
	if org == "" {
		return base + "/issues/" + url.PathEscape(id) + "/"
	}
	return base + "/organizations/" + url.PathEscape(org) + "/issues/" + url.PathEscape(id) + "/"
}

// safeLink is a usable http(s) link of bounded length, or "".
func safeLink(u string) string {
	u = strings.TrimSpace(u)
	if len(u) > maxLink || formatter.SafeURL(u) == "" {
		return ""
	}
	return u
}

func assigneeName(name, email text) string {
	return firstNonEmpty(name.String(), email.String())
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// dedupeKey joins the parts that identify a Sentry delivery; without its
// id it is "" and the delivery is identified by its bytes instead.
func dedupeKey(kind, id string, rest ...string) string {
	if id == "" {
		return ""
	}
	return strings.Join(append([]string{kind, id}, rest...), ":")
}

func shorten(s string, n int) string {
	return formatter.Shorten(strings.TrimSpace(s), n)
}

// shortText bounds a value echoed back in an error or a log.
func shortText(s string) string {
	return formatter.Shorten(s, 64)
}

// decode unmarshals a payload in one pass. A field of an unexpected type
// is left empty rather than failing the webhook (encoding/json decodes the
// rest and reports the type error last), so Sentry's payload drift costs a
// field, not an alert; only a body that is not a JSON object is invalid.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return invalid("body is not valid JSON: %v", err)
	case errors.As(err, &te) && te.Field == "":
		return invalid("body is not a Sentry webhook: expected a JSON object, got %s", te.Value)
	case errors.As(err, &te):
		return nil
	}
	return invalid("body is not a Sentry webhook: %v", err)
}

// GuessResource names the webhook family of a saved payload, whose
// Sentry-Hook-Resource header was not saved with it: "legacy" for the
// WebHooks plugin, "unknown" when nothing fits.
func GuessResource(body []byte) string {
	var probe struct {
		Event  json.RawMessage            `json:"event"`
		Action text                       `json:"action"`
		Data   map[string]json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return "unknown"
	}
	if probe.Data == nil {
		if probe.Event != nil {
			return ResourceLegacy
		}
		return "unknown"
	}
	has := func(k string) bool { _, ok := probe.Data[k]; return ok }
	switch {
	case has("metric_alert"):
		return "metric_alert"
	case has("error"):
		return "error"
	case has("activity"):
		return "activity_alert"
	case has("event"), has("triggered_rule"), probe.Action == "triggered":
		return "event_alert"
	case has("issue"):
		return "issue"
	case has("installation"):
		return "installation"
	case has("comment"):
		return "comment"
	case has("run_id"):
		return "seer"
	}
	return "unknown"
}
