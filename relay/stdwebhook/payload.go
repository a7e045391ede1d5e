package stdwebhook

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Payload is the JSON body of every request. Its keys are a contract with
// the endpoints: every key of Payload and Alert is always present (empty
// strings, zero counts and empty lists when the alert has none), except
// note, and new keys may be added, never renamed or removed.
type Payload struct {
	// Type is "alert" for one alert and "digest" for several sent at once
	// (while alerts arrive faster than rate_per_minute allows).
	Type string `json:"type"`
	// Alerts are the alerts carried, oldest first.
	Alerts []Alert `json:"alerts"`
	// Note says why this receiver got alerts that were not its own (it is
	// another receiver's fallback); absent otherwise.
	Note string `json:"note,omitempty"`
}

// Payload types.
const (
	TypeAlert  = "alert"
	TypeDigest = "digest"
)

// Alert is one Sentry alert.
type Alert struct {
	// Resource is the Sentry-Hook-Resource (event_alert, issue, error,
	// metric_alert, activity_alert) or "legacy" for the WebHooks plugin.
	Resource string `json:"resource"`
	// Action is the webhook's action: triggered, created, resolved,
	// critical...
	Action string `json:"action"`
	// Kind is what an issue-platform alert is about (uptime, cron, or the
	// occurrence's type id); "" for errors.
	Kind string `json:"kind"`
	// Activity is the status change or Seer step of an activity_alert
	// (status_regression, seer_root_cause_completed...).
	Activity    string `json:"activity"`
	Project     string `json:"project"`
	Environment string `json:"environment"`
	// Level is fatal, error, warning, info or debug; critical, warning or
	// resolved for metric alerts.
	Level    string `json:"level"`
	Title    string `json:"title"`
	Subtitle string `json:"subtitle"`
	// Location is the culprit or the top in-app frame.
	Location string `json:"location"`
	// Link is the alert's Sentry page; "" when it is not an http(s) URL.
	Link    string `json:"link"`
	Release string `json:"release"`
	// Rule is the name of the rule that fired, RuleID its id.
	Rule   string `json:"rule"`
	RuleID string `json:"rule_id"`
	// Events and Users are the issue's counts; 0 when Sentry sent none.
	Events  int64  `json:"events"`
	Users   int64  `json:"users"`
	IssueID string `json:"issue_id"`
	ShortID string `json:"short_id"`
	EventID string `json:"event_id"`
	// Time is when the event happened, RFC 3339; "" when unknown.
	Time string `json:"time"`
	// Message is the log message or the exception value.
	Message      string     `json:"message"`
	Evidence     []Evidence `json:"evidence"`
	PullRequests []Ref      `json:"pull_requests"`
	Tags         []Tag      `json:"tags"`
}

// Evidence is one line of an issue-platform occurrence's evidence.
type Evidence struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Important marks the lines Sentry shows first.
	Important bool `json:"important"`
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

// Bounds on what one alert carries, so that one huge field cannot crowd
// out a digest's other alerts.
const (
	titleRunes   = 512
	fieldRunes   = 512
	messageRunes = 2000
	maxEvidence  = 50
	maxRefs      = 20
	maxTags      = 50
)

// Message is a rendered request body.
type Message struct {
	title string
	body  []byte
}

// Title is what logs and the dry run show of the message.
func (m *Message) Title() string { return m.title }

// Body is the JSON that is posted, exactly as signed.
func (m *Message) Body() []byte { return m.body }

// Card renders one alert.
func (r *Receiver) Card(it formatter.Item) (notify.Message, error) {
	return r.single(it, false), nil
}

// Minimal renders one alert with only what identifies it (no subtitle,
// location, message, evidence, pull requests or tags): small enough for an
// endpoint that refused the full body as too large.
func (r *Receiver) Minimal(it formatter.Item) notify.Message {
	return r.single(it, true)
}

func (r *Receiver) single(it formatter.Item, minimal bool) *Message {
	a := r.alert(it.Alert, minimal)
	p := Payload{Type: TypeAlert, Alerts: []Alert{a}, Note: noteOf(it)}
	body := encode(p)
	if len(body) > MaxBodyBytes && !minimal {
		return r.single(it, true)
	}
	return &Message{title: cardTitle(it.Alert), body: body}
}

// Digest renders waiting alerts as one payload of type digest, taking the
// issues that waited longest first and as many of their alerts as fit in
// MaxBodyBytes. plain is ignored: an endpoint has no content check.
func (r *Receiver) Digest(items []formatter.Item, plain bool) (notify.Message, []int) {
	encoded := make([][]byte, len(items))
	used := len(`{"type":"digest","alerts":[]}`)
	var covered []int
	notes := map[string]bool{}
	var noteList []string
	for _, g := range formatter.GroupItems(items) {
		for _, i := range g.Items {
			b := encode(r.alert(items[i].Alert, false))
			if len(b) > MaxBodyBytes/2 {
				b = encode(r.alert(items[i].Alert, true))
			}
			cost := len(b) + 1
			note := noteOf(items[i])
			newNote := note != "" && !notes[note]
			if newNote {
				// Its JSON string: the two bytes of its quotes pay for
				// the escaped "\n" that joins it to the others.
				cost += len(encode(note))
				if len(noteList) == 0 {
					cost += len(`,"note":`)
				}
			}
			if used+cost > MaxBodyBytes && len(covered) > 0 {
				return r.digest(items, covered, encoded, noteList)
			}
			used += cost
			encoded[i] = b
			covered = append(covered, i)
			if newNote {
				notes[note] = true
				noteList = append(noteList, note)
			}
		}
	}
	return r.digest(items, covered, encoded, noteList)
}

func (r *Receiver) digest(items []formatter.Item, covered []int, encoded [][]byte, notes []string) (*Message, []int) {
	slices.Sort(covered)
	var buf strings.Builder
	buf.WriteString(`{"type":"digest","alerts":[`)
	for n, i := range covered {
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(encoded[i])
	}
	buf.WriteString("]")
	if len(notes) > 0 {
		note, _ := json.Marshal(strings.Join(notes, "\n"))
		buf.WriteString(`,"note":`)
		buf.Write(note)
	}
	buf.WriteString("}")
	groups := map[string]bool{}
	projects := map[string]bool{}
	for _, i := range covered {
		groups[items[i].Alert.GroupKey()] = true
		projects[items[i].Alert.DisplayProject()] = true
	}
	title := formatter.LabelsFor(r.lang).DigestTitle(len(covered), len(groups))
	if len(projects) == 1 {
		if p := items[covered[0]].Alert.DisplayProject(); p != "" {
			title = "[" + formatter.PlainLine(p) + "] " + title
		}
	}
	return &Message{title: title, body: []byte(buf.String())}, covered
}

func noteOf(it formatter.Item) string {
	return formatter.Shorten(strings.ToValidUTF8(strings.TrimSpace(it.Note), "\uFFFD"), fieldRunes)
}

func cardTitle(a formatter.Alert) string {
	title := formatter.Shorten(formatter.PlainLine(a.Title), 64)
	if p := a.DisplayProject(); p != "" {
		title = "[" + formatter.PlainLine(p) + "] " + title
	}
	return title
}

// alert is a's shape in the payload.
func (r *Receiver) alert(a formatter.Alert, minimal bool) Alert {
	cut := func(s string, n int) string { return formatter.Shorten(strings.ToValidUTF8(s, "\uFFFD"), n) }
	out := Alert{
		Resource: cut(a.Resource, fieldRunes), Action: cut(a.Action, fieldRunes), Kind: cut(a.Kind, fieldRunes),
		Activity: cut(a.Activity, fieldRunes), Project: cut(a.DisplayProject(), fieldRunes),
		Environment: cut(a.Environment, fieldRunes), Level: cut(formatter.NormalizeLevel(a.Level), fieldRunes),
		Title: cut(a.Title, titleRunes), Subtitle: cut(a.Subtitle, fieldRunes), Location: cut(a.Location, fieldRunes),
		Link: safeURL(a.Link), Release: cut(a.Release, fieldRunes),
		Rule: cut(a.Rule, fieldRunes), RuleID: cut(a.RuleID, fieldRunes), Events: a.Events, Users: a.Users,
		IssueID: cut(a.IssueID, fieldRunes), ShortID: cut(a.ShortID, fieldRunes), EventID: cut(a.EventID, fieldRunes),
		Evidence: []Evidence{}, PullRequests: []Ref{}, Tags: []Tag{},
	}
	if !a.Time.IsZero() {
		out.Time = a.Time.In(r.zone).Format(time.RFC3339)
	}
	if minimal {
		out.Subtitle, out.Location = "", ""
		return out
	}
	out.Message = cut(a.Message, messageRunes)
	for _, e := range a.Evidence[:min(len(a.Evidence), maxEvidence)] {
		out.Evidence = append(out.Evidence, Evidence{Name: cut(e.Name, fieldRunes), Value: cut(e.Value, fieldRunes), Important: e.Important})
	}
	for _, pr := range a.PullRequests {
		if u := safeURL(pr.URL); u != "" && len(out.PullRequests) < maxRefs {
			out.PullRequests = append(out.PullRequests, Ref{Title: cut(pr.Title, fieldRunes), URL: u})
		}
	}
	for _, t := range a.Tags[:min(len(a.Tags), maxTags)] {
		out.Tags = append(out.Tags, Tag{Key: cut(t.Key, fieldRunes), Value: cut(t.Value, fieldRunes)})
	}
	return out
}

// maxURL bounds a link; a longer one is dropped, as a cut URL leads nowhere.
const maxURL = 2048

func safeURL(u string) string {
	if u = formatter.SafeURL(u); len(u) > maxURL {
		return ""
	}
	return u
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Payload and Alert hold only strings, numbers and lists of them.
		panic("stdwebhook: encode payload: " + err.Error())
	}
	return b
}
