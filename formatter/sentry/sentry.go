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
