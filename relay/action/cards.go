package action

import "github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"

// issueResources are the alerts about a Sentry issue that can be acted on;
// a metric alert has no issue to resolve, and the relay's own alerts none.
var issueResources = map[string]bool{
	"event_alert": true, "issue": true, "activity_alert": true, "error": true, "legacy": true,
}

// Cards is the service as the card renderer uses it (formatter.Actions).
type Cards struct{ *Service }

var _ formatter.Actions = Cards{}

func issueOf(a formatter.Alert) (Issue, bool) {
	if !issueResources[a.Resource] || a.IssueID == "" {
		return Issue{}, false
	}
	return Issue{Org: a.Org, ID: a.IssueID, URL: a.Link}, true
}

// Links are an issue card's action links.
func (c Cards) Links(a formatter.Alert) []formatter.Ref {
	is, ok := issueOf(a)
	if !ok {
		return nil
	}
	var out []formatter.Ref
	for _, l := range c.Service.Links(is) {
		out = append(out, formatter.Ref{Title: l.Label, URL: l.URL})
	}
	return out
}

// Review is a digest's link to review its issues.
func (c Cards) Review(as []formatter.Alert) (formatter.Ref, bool) {
	var issues []Issue
	for _, a := range as {
		if is, ok := issueOf(a); ok {
			issues = append(issues, is)
		}
	}
	l := c.Service.Review(issues)
	if l.URL == "" {
		return formatter.Ref{}, false
	}
	return formatter.Ref{Title: l.Label, URL: l.URL}, true
}
