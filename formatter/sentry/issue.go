package sentry

import "github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"

// Issues: issue webhooks, the data.issue form of event alerts, and the
// status changes of activity alerts.

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
