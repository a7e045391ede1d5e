package webhook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
)

// RuleAction serves the alert-rule-action UI component of the Sentry
// integration: the list of routes for the rule form's select field, and the
// check Sentry runs when a rule with the relay's action is saved. Sentry
// shows the "message" of the answer to the user.
type RuleAction struct {
	// ClientSecrets verify Sentry-App-Signature when set: any of them.
	ClientSecrets []string
	Router        Router
	Log           *slog.Logger
}

// ruleActionBodyLimit bounds the rule-save request, a few fields.
const ruleActionBodyLimit = 1 << 20

type ruleActionRequest struct {
	Fields []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	} `json:"fields"`
	InstallationID string `json:"installationId"`
}

// Save answers POST /sentry/alert-rule-action: 200 when the chosen route
// exists and the mentions are mobile numbers, else 400 saying why.
func (a *RuleAction) Save(w http.ResponseWriter, r *http.Request) {
	body, status, err := ReadBody(w, r, ruleActionBodyLimit)
	if err != nil {
		writeJSON(w, status, map[string]string{"message": err.Error()})
		return
	}
	if len(a.ClientSecrets) > 0 && !ValidSignature(a.ClientSecrets, body, r.Header) {
		a.log().Warn("alert-rule-action request with a missing or wrong signature", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "missing or wrong Sentry-App-Signature"})
		return
	}
	var req ruleActionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "the request is not a Sentry alert-rule-action body: " + err.Error()})
		return
	}
	fields := map[string]string{}
	for _, f := range req.Fields {
		var s string
		if json.Unmarshal(f.Value, &s) != nil {
			s = strings.Trim(string(f.Value), `"`)
		}
		if s == "null" {
			s = ""
		}
		fields[f.Name] = strings.TrimSpace(s)
	}
	if name := fields[route.SettingRoute]; name != "" && !a.Router.Has(name) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("unknown DingTalk route %q; choose one of: %s", formatter.Shorten(name, 64), strings.Join(a.Router.Names(), ", "))})
		return
	}
	for _, m := range route.SplitList(fields[route.SettingMentions]) {
		if !formatter.ValidMobile(m) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("%q is not a mobile number DingTalk can ping: mentions are mobiles separated by commas, each %s", formatter.Shorten(m, 32), formatter.MobileRule)})
			return
		}
	}
	msg := "alerts of this rule go to the DingTalk routes that match them"
	if name := fields[route.SettingRoute]; name != "" {
		msg = fmt.Sprintf("alerts of this rule go to DingTalk route %q", name)
	}
	if m := fields[route.SettingMentions]; m != "" {
		msg += ", mentioning " + strings.Join(route.SplitList(m), ", ")
	}
	a.log().Info("alert rule saved with the relay's action", "installation", req.InstallationID, "route", fields[route.SettingRoute])
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

type option struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Options answers GET /sentry/options/routes with the routes for the rule
// form's select field. Sentry signs the request over an empty body.
func (a *RuleAction) Options(w http.ResponseWriter, r *http.Request) {
	if len(a.ClientSecrets) > 0 && !ValidSignature(a.ClientSecrets, nil, r.Header) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "missing or wrong Sentry-App-Signature"})
		return
	}
	query := strings.ToLower(r.URL.Query().Get("query"))
	opts := []option{}
	for _, name := range a.Router.Names() {
		if query == "" || strings.Contains(strings.ToLower(name), query) {
			opts = append(opts, option{Label: name, Value: name})
		}
	}
	writeJSON(w, http.StatusOK, opts)
}

func (a *RuleAction) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}
