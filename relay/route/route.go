// Package route decides which robots an alert goes to and whom each
// message @-mentions: by match rules in order, by a route forced in the
// webhook URL, or by the route chosen in the Sentry alert rule.
package route

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// Route sends matching alerts to robots. The routes file (RELAY_ROUTES_FILE)
// decodes into it.
type Route struct {
	Name string `yaml:"name"`
	// Match selects alerts; nil (or empty) matches every alert.
	Match *Match `yaml:"match"`
	// Robots are the robots the route sends to: their names in the routes
	// file, their queue keys once resolved (see Resolve).
	Robots []string `yaml:"robots"`
	// Mentions are who the route @-mentions.
	Mentions Mentions `yaml:"mentions"`
	// Type overrides the robots' message type for this route's alerts.
	Type string `yaml:"msgtype"`
	// Continue lets the alert match later routes too.
	Continue bool `yaml:"continue"`
}

// Match lists globs (path.Match syntax, case-insensitive); every non-empty
// list must have a glob matching the alert's field.
type Match struct {
	Projects     []string `yaml:"projects"`
	Environments []string `yaml:"environments"`
	Levels       []string `yaml:"levels"`
	Resources    []string `yaml:"resources"`
}

// Mentions are who a route @-mentions, and for which levels.
type Mentions struct {
	Mobiles []string `yaml:"mobiles"`
	UserIDs []string `yaml:"user_ids"`
	All     bool     `yaml:"all"`
	// Levels limit mentions to alerts of these levels; empty means always.
	Levels []string `yaml:"levels"`
}

// CatchAll reports whether the route takes every alert.
func (rt Route) CatchAll() bool {
	m := rt.Match
	return m == nil || len(m.Projects)+len(m.Environments)+len(m.Levels)+len(m.Resources) == 0
}

// Resolve returns routes with robot names replaced by queue keys (keys:
// name to key).
func Resolve(routes []Route, keys map[string]string) ([]Route, error) {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		rt.Robots = nil
		for _, name := range routes[i].Robots {
			key, ok := keys[name]
			if !ok {
				return nil, fmt.Errorf("route %q: unknown robot %q", rt.Name, name)
			}
			rt.Robots = append(rt.Robots, key)
		}
		out[i] = rt
	}
	return out, nil
}

// Alert-rule-action settings the router reads.
const (
	SettingRoute    = "route"
	SettingMentions = "mentions"
)

// Router holds routes in order.
type Router struct {
	routes []Route
}

// UnknownRouteError means a forced or chosen route does not exist.
type UnknownRouteError struct{ Name string }

func (e *UnknownRouteError) Error() string { return fmt.Sprintf("unknown route %q", e.Name) }

// New returns a router over resolved routes; their globs were validated
// with the configuration.
func New(routes []Route) *Router {
	return &Router{routes: routes}
}

// Names returns the route names, in order.
func (r *Router) Names() []string {
	names := make([]string, len(r.routes))
	for i, rt := range r.routes {
		names[i] = rt.Name
	}
	return names
}

// Has reports whether a route is named name.
func (r *Router) Has(name string) bool {
	return r.find(name) != nil
}

func (r *Router) find(name string) *Route {
	for i := range r.routes {
		if r.routes[i].Name == name {
			return &r.routes[i]
		}
	}
	return nil
}

// Route returns the robots an alert goes to, each with its mentions. forced
// is the route named in the webhook URL, if any; otherwise a route chosen
// in the Sentry alert rule wins; otherwise routes match in order until one
// without continue. The "mentions" setting of the alert rule replaces the
// routes' mobiles.
func (r *Router) Route(a formatter.Alert, forced string) ([]queue.Target, error) {
	var chosen []*Route
	name := forced
	if name == "" {
		name = a.Settings[SettingRoute]
	}
	if name != "" {
		rt := r.find(name)
		if rt == nil {
			return nil, &UnknownRouteError{Name: name}
		}
		chosen = []*Route{rt}
	} else {
		for i := range r.routes {
			rt := &r.routes[i]
			if !rt.Match.matches(a) {
				continue
			}
			chosen = append(chosen, rt)
			if !rt.Continue {
				break
			}
		}
	}
	override, hasOverride := a.Settings[SettingMentions]
	var mobiles []string
	if hasOverride {
		// The setting is saved through Sentry's form: only what DingTalk
		// can ping is kept.
		mobiles = slices.DeleteFunc(SplitList(override), func(s string) bool { return !formatter.ValidMobile(s) })
	}
	var targets []queue.Target
	for _, rt := range chosen {
		m := rt.Mentions.For(a)
		if hasOverride {
			m = formatter.Mentions{Mobiles: mobiles, UserIDs: m.UserIDs, All: m.All}
		}
		for _, robot := range rt.Robots {
			i := slices.IndexFunc(targets, func(t queue.Target) bool { return t.Robot == robot })
			if i < 0 {
				targets = append(targets, queue.Target{Robot: robot, Mentions: m, Type: rt.Type})
				continue
			}
			targets[i].Mentions = targets[i].Mentions.Union(m)
		}
	}
	return targets, nil
}

// For returns the mentions for an alert: none when the route limits
// mentions to levels the alert does not have.
func (m Mentions) For(a formatter.Alert) formatter.Mentions {
	if len(m.Levels) > 0 && !anyGlob(m.Levels, level(a)) {
		return formatter.Mentions{}
	}
	return formatter.Mentions{Mobiles: m.Mobiles, UserIDs: m.UserIDs, All: m.All}
}

func (m *Match) matches(a formatter.Alert) bool {
	if m == nil {
		return true
	}
	return listMatches(m.Projects, a.Project, a.ProjectName) &&
		listMatches(m.Environments, a.Environment) &&
		listMatches(m.Levels, level(a)) &&
		listMatches(m.Resources, a.Resource)
}

// level is the alert level route globs match.
func level(a formatter.Alert) string {
	return formatter.NormalizeLevel(a.Level)
}

// listMatches reports whether an empty list, or a glob of the list matching
// one of the values. A metric alert over several projects has them comma-
// separated in one value; any of them may match.
func listMatches(globs []string, values ...string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ", ") {
			if anyGlob(globs, part) {
				return true
			}
		}
	}
	return false
}

func anyGlob(globs []string, value string) bool {
	value = strings.ToLower(value)
	for _, g := range globs {
		if ok, _ := path.Match(strings.ToLower(g), value); ok {
			return true
		}
	}
	return false
}

// SplitList splits a comma- or whitespace-separated list, dropping empties.
func SplitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '，' })
}
