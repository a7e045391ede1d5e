package sentry

import (
	"strconv"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// Events: event alerts, error webhooks and the legacy plugin's event, and
// the occurrence of issue-platform issues (uptime, cron).

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
