package sentry

import (
	"encoding/json"
	"strings"
)

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
