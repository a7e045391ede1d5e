package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxSentryBody bounds how much of a Sentry answer is read: a list of
// maxReview serialized issues stays well inside it.
const maxSentryBody = 4 << 20

// sentryIssue is the part of Sentry's issue serializer the pages show.
type sentryIssue struct {
	ID            string `json:"id"`
	ShortID       string `json:"shortId"`
	Title         string `json:"title"`
	Level         string `json:"level"`
	Status        string `json:"status"`
	Substatus     string `json:"substatus"`
	Permalink     string `json:"permalink"`
	StatusDetails struct {
		IgnoreUntil string `json:"ignoreUntil"`
	} `json:"statusDetails"`
	Project struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	} `json:"project"`
	AssignedTo *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"assignedTo"`
}

// ignoreUntil is the end of a timed ignore, zero when there is none.
func (is sentryIssue) ignoreUntil() time.Time {
	t, err := time.Parse(time.RFC3339Nano, is.StatusDetails.IgnoreUntil)
	if err != nil {
		return time.Time{}
	}
	return t
}

// in reports whether the issue is already where the action would put it,
// so that a second click, or a colleague's, sends nothing.
func (is sentryIssue) in(k kind, now time.Time) bool {
	switch k {
	case kindResolve:
		return is.Status == "resolved"
	case kindIgnoreHour:
		return is.Status == "ignored" && is.ignoreUntil().After(now)
	case kindIgnoreEscalating:
		return is.Status == "ignored" && is.Substatus == "archived_until_escalating"
	}
	return false
}

// updates are the PUT bodies that perform the actions; ignoreDuration is in
// minutes.
var updates = map[kind]string{
	kindResolve:          `{"status":"resolved"}`,
	kindIgnoreHour:       `{"status":"ignored","statusDetails":{"ignoreDuration":60}}`,
	kindIgnoreEscalating: `{"status":"ignored","substatus":"archived_until_escalating","statusDetails":{}}`,
}

// sentryError is a failed Sentry call. It never holds the token: that
// travels only in the request header.
type sentryError struct {
	Method, URL string
	Status      int   // 0 when no answer came
	Err         error // why no answer came, or why a 2xx answer was unreadable
}

func (e *sentryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("sentry %s %s: %v", e.Method, e.URL, e.Err)
	}
	return fmt.Sprintf("sentry %s %s: HTTP %d", e.Method, e.URL, e.Status)
}

func (e *sentryError) Unwrap() error { return e.Err }

// outcome is the metric's word for the failure.
func (e *sentryError) outcome() string {
	switch e.Status {
	case 0:
		return "sentry_unreachable"
	case http.StatusUnauthorized:
		return "sentry_unauthorized"
	case http.StatusForbidden:
		return "sentry_forbidden"
	case http.StatusNotFound:
		return "not_found"
	}
	return "sentry_error"
}

// sentence explains the failure to the person on the page. A write that got
// no answer may have happened, so it says to look before trying again.
func (e *sentryError) sentence(t *texts) string {
	switch e.Status {
	case 0:
		if e.Method == http.MethodPut {
			return t.SentryUncertain
		}
		return t.SentryUnreachable
	case http.StatusUnauthorized:
		return t.SentryUnauthorized
	case http.StatusForbidden:
		return t.SentryForbidden
	case http.StatusNotFound:
		return t.SentryGone
	}
	if e.Err != nil {
		return t.SentryBadAnswer
	}
	return t.SentryStatus(e.Status)
}

// sentry calls Sentry's web API with the integration's token.
type sentry struct {
	http  *http.Client
	token string
}

func issueURL(base, org string, id uint64) string {
	return base + "/api/0/organizations/" + url.PathEscape(org) + "/issues/" + strconv.FormatUint(id, 10) + "/"
}

// issue reads one issue.
func (s *sentry) issue(ctx context.Context, base, org string, id uint64) (sentryIssue, error) {
	var is sentryIssue
	err := s.do(ctx, http.MethodGet, issueURL(base, org, id), nil, &is)
	return is, err
}

// issues reads several issues of one organisation in one call. project=-1
// asks for every project the integration can see: without it Sentry lists
// only projects the caller is a member of, and an integration is a member
// of none.
func (s *sentry) issues(ctx context.Context, base, org string, ids []uint64) ([]sentryIssue, error) {
	q := url.Values{"project": {"-1"}}
	for _, id := range ids {
		q.Add("group", strconv.FormatUint(id, 10))
	}
	u := base + "/api/0/organizations/" + url.PathEscape(org) + "/issues/?" + q.Encode()
	var list []sentryIssue
	err := s.do(ctx, http.MethodGet, u, nil, &list)
	return list, err
}

// update changes one issue. It is sent once: whether a failed write took
// effect is for the person to check, not for the relay to guess.
func (s *sentry) update(ctx context.Context, base, org string, id uint64, k kind) error {
	return s.do(ctx, http.MethodPut, issueURL(base, org, id), []byte(updates[k]), nil)
}

func (s *sentry) do(ctx context.Context, method, u string, body []byte, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &sentryError{Method: method, URL: u, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &sentryError{Method: method, URL: u, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &sentryError{Method: method, URL: u, Status: resp.StatusCode}
	}
	if into == nil {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSentryBody))
	if err == nil {
		err = json.Unmarshal(raw, into)
	}
	if err != nil {
		return &sentryError{Method: method, URL: u, Status: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	return nil
}
