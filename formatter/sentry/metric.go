package sentry

import (
	"net/url"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// metricAlert is data.metric_alert: the alert rule, its incident and its
// triggers.
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
