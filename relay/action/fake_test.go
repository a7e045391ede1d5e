package action

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "sntrys_test-integration-token-0123456789abcdef"

// fakeIssue is one issue the fake Sentry holds.
type fakeIssue struct {
	Org, ID, Title, Project, Level, Status, Substatus, Assignee, AssigneeType string
	IgnoreUntil                                                               time.Time
}

// fakeSentry is Sentry's issue API as far as the pages use it. It enforces
// what Sentry enforces: the bearer token, the methods and paths, integer
// group ids, the project filter an integration needs, and JSON bodies with
// only the documented updates.
type fakeSentry struct {
	t   *testing.T
	srv *httptest.Server
	now func() time.Time

	mu     sync.Mutex
	issues map[string]*fakeIssue // "org/id"
	calls  []string              // "METHOD path?query"
	puts   []string              // PUT bodies
	// answer, when set, is the status every request gets instead.
	answer int
}

var (
	issuePath = regexp.MustCompile(`^/api/0/organizations/([^/]+)/issues/([^/]+)/$`)
	listPath  = regexp.MustCompile(`^/api/0/organizations/([^/]+)/issues/$`)
)

// validUpdates are the PUT bodies Sentry documents for these actions.
var validUpdates = []string{
	`{"status":"resolved"}`,
	`{"status":"ignored","statusDetails":{"ignoreDuration":60}}`,
	`{"status":"ignored","substatus":"archived_until_escalating","statusDetails":{}}`,
}

func newFakeSentry(t *testing.T, now func() time.Time) *fakeSentry {
	f := &fakeSentry{t: t, now: now, issues: map[string]*fakeIssue{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSentry) add(is fakeIssue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := is
	f.issues[is.Org+"/"+is.ID] = &cp
}

func (f *fakeSentry) get(org, id string) fakeIssue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.issues[org+"/"+id]
}

func (f *fakeSentry) fail(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = status
}

// count returns how many calls of method were made.
func (f *fakeSentry) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, method+" ") {
			n++
		}
	}
	return n
}

func (f *fakeSentry) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeSentry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	f.calls = append(f.calls, call)
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		http.Error(w, `{"detail":"Invalid token"}`, http.StatusUnauthorized)
		return
	}
	if f.answer != 0 {
		http.Error(w, `{"detail":"no"}`, f.answer)
		return
	}
	if m := listPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		f.list(w, r, m[1])
		return
	}
	m := issuePath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.Error(w, `{"detail":"not found"}`, http.StatusNotFound)
		return
	}
	is, ok := f.issues[m[1]+"/"+m[2]]
	if !ok {
		http.Error(w, `{"detail":"The requested resource does not exist"}`, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.writeJSON(w, f.serialize(is))
	case http.MethodPut:
		f.update(w, r, is)
	default:
		http.Error(w, `{"detail":"method"}`, http.StatusMethodNotAllowed)
	}
}

func (f *fakeSentry) list(w http.ResponseWriter, r *http.Request, org string) {
	q := r.URL.Query()
	var out []map[string]any
	for _, g := range q["group"] {
		if _, err := strconv.Atoi(g); err != nil {
			http.Error(w, `{"detail":"Group ids must be integers"}`, http.StatusBadRequest)
			return
		}
		// Without project=-1 Sentry lists only projects the caller is a
		// member of, and an integration is a member of none.
		if is, ok := f.issues[org+"/"+g]; ok && q.Get("project") == "-1" {
			out = append(out, f.serialize(is))
		}
	}
	if out == nil {
		out = []map[string]any{}
	}
	f.writeJSON(w, out)
}

func (f *fakeSentry) update(w http.ResponseWriter, r *http.Request, is *fakeIssue) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, `{"detail":"Unsupported media type"}`, http.StatusUnsupportedMediaType)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	f.puts = append(f.puts, string(raw))
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		http.Error(w, `{"detail":"JSON parse error"}`, http.StatusBadRequest)
		return
	}
	known := false
	for _, v := range validUpdates {
		var want any
		json.Unmarshal([]byte(v), &want)
		known = known || reflect.DeepEqual(got, want)
	}
	if !known {
		f.t.Errorf("fake Sentry: unexpected PUT body %s", raw)
		http.Error(w, `{"detail":"bad update"}`, http.StatusBadRequest)
		return
	}
	body := got.(map[string]any)
	is.Status, is.Substatus, is.IgnoreUntil = body["status"].(string), "", time.Time{}
	if sub, ok := body["substatus"].(string); ok {
		is.Substatus = sub
	}
	details, _ := body["statusDetails"].(map[string]any)
	if d, ok := details["ignoreDuration"].(float64); ok {
		is.Substatus = "archived_until_condition_met"
		is.IgnoreUntil = f.now().Add(time.Duration(d) * time.Minute)
	}
	if is.Status == "ignored" && is.Substatus == "" {
		is.Substatus = "archived_forever"
	}
	f.writeJSON(w, map[string]any{"status": is.Status, "substatus": is.Substatus})
}

func (f *fakeSentry) serialize(is *fakeIssue) map[string]any {
	details := map[string]any{}
	if !is.IgnoreUntil.IsZero() {
		details["ignoreUntil"] = is.IgnoreUntil.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	var assigned any
	if is.Assignee != "" {
		assigned = map[string]any{"type": is.AssigneeType, "name": is.Assignee, "id": "7"}
	}
	return map[string]any{
		"id": is.ID, "shortId": strings.ToUpper(is.Project) + "-" + is.ID, "title": is.Title,
		"culprit": "app.main", "level": is.Level, "status": is.Status, "substatus": is.Substatus,
		"statusDetails": details, "assignedTo": assigned,
		"permalink": fmt.Sprintf("%s/organizations/%s/issues/%s/", f.srv.URL, is.Org, is.ID),
		"project":   map[string]any{"id": "2", "slug": is.Project, "name": is.Project},
	}
}

func (f *fakeSentry) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
