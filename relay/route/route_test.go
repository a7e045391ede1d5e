package route

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

func router() *Router {
	return New([]Route{
		{Name: "payments-prod", Match: &Match{Projects: []string{"payments", "billing-*"}, Environments: []string{"prod*"}, Levels: []string{"fatal", "error"}},
			Robots: []string{"ops"}, Mentions: Mentions{Mobiles: []string{"13800000000"}, Levels: []string{"fatal"}}},
		{Name: "metrics", Match: &Match{Resources: []string{"metric_alert"}}, Robots: []string{"ops"}, Continue: true},
		{Name: "frontend", Match: &Match{Projects: []string{"WEB*"}}, Robots: []string{"web"}, Mentions: Mentions{Mobiles: []string{"13900000000"}}},
		{Name: "default", Robots: []string{"web"}},
	})
}

func describe(ts []queue.Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s%v", t.Robot, t.Mentions.Mobiles))
	}
	return strings.Join(parts, " ")
}

func TestMatch(t *testing.T) {
	r := router()
	for _, c := range []struct {
		name  string
		alert formatter.Alert
		want  string
	}{
		{"payments prod fatal: mentions", formatter.Alert{Resource: "issue", Project: "payments", Environment: "production", Level: "fatal"}, "ops[13800000000]"},
		{"glob project, error: no mention", formatter.Alert{Resource: "issue", Project: "billing-eu", Environment: "prod", Level: "error"}, "ops[]"},
		{"staging misses", formatter.Alert{Resource: "issue", Project: "payments", Environment: "staging", Level: "fatal"}, "web[]"},
		{"warning misses", formatter.Alert{Resource: "issue", Project: "payments", Environment: "prod", Level: "warning"}, "web[]"},
		{"case-insensitive globs", formatter.Alert{Resource: "issue", Project: "web-shop"}, "web[13900000000]"},
		{"continue: metric to ops and then the catch-all", formatter.Alert{Resource: "metric_alert", Project: "api", Level: "critical"}, "ops[] web[]"},
		{"metric over several projects", formatter.Alert{Resource: "metric_alert", Project: "api, web-shop", Level: "critical"}, "ops[] web[13900000000]"},
		{"project name counts too", formatter.Alert{Resource: "issue", ProjectName: "payments", Environment: "prod", Level: "error"}, "ops[]"},
	} {
		got, err := r.Route(c.alert, "")
		if err != nil || describe(got) != c.want {
			t.Errorf("%s: %s (%v), want %s", c.name, describe(got), err, c.want)
		}
	}
}

func TestFirstMatchWins(t *testing.T) {
	r := New([]Route{{Name: "a", Robots: []string{"x"}}, {Name: "b", Robots: []string{"y"}}})
	got, _ := r.Route(formatter.Alert{}, "")
	if describe(got) != "x[]" {
		t.Errorf("%s", describe(got))
	}
	empty := New([]Route{{Name: "only-prod", Match: &Match{Environments: []string{"prod"}}, Robots: []string{"x"}}})
	if got, _ := empty.Route(formatter.Alert{Environment: "dev"}, ""); len(got) != 0 {
		t.Errorf("no route should match: %s", describe(got))
	}
}

func TestForcedAndChosenRoutes(t *testing.T) {
	r := router()
	a := formatter.Alert{Resource: "issue", Project: "payments", Environment: "prod", Level: "fatal"}
	got, err := r.Route(a, "frontend")
	if err != nil || describe(got) != "web[13900000000]" {
		t.Errorf("forced: %s %v", describe(got), err)
	}
	a.Settings = map[string]string{SettingRoute: "default"}
	if got, _ := r.Route(a, ""); describe(got) != "web[]" {
		t.Errorf("chosen in Sentry: %s", describe(got))
	}
	// The URL wins over the rule's setting.
	if got, _ := r.Route(a, "frontend"); describe(got) != "web[13900000000]" {
		t.Errorf("forced over chosen: %s", describe(got))
	}
	a.Settings = map[string]string{SettingRoute: "ghost"}
	_, err = r.Route(a, "")
	var unknown *UnknownRouteError
	if !errors.As(err, &unknown) || unknown.Name != "ghost" {
		t.Errorf("unknown chosen route: %v", err)
	}
}

func TestMentionsSetting(t *testing.T) {
	r := router()
	a := formatter.Alert{Resource: "issue", Project: "payments", Environment: "prod", Level: "fatal",
		Settings: map[string]string{SettingMentions: "13700000000，13600000000"}}
	got, _ := r.Route(a, "")
	if describe(got) != "ops[13700000000 13600000000]" {
		t.Errorf("mentions from the Sentry rule: %s", describe(got))
	}
	// The rule's mentions replace the route's even for levels it would not @ for.
	a.Level = "error"
	if got, _ := r.Route(a, ""); describe(got) != "ops[13700000000 13600000000]" {
		t.Errorf("%s", describe(got))
	}
}

func TestSameRobotTwiceMergesMentions(t *testing.T) {
	r := New([]Route{
		{Name: "a", Robots: []string{"x"}, Mentions: Mentions{Mobiles: []string{"1"}}, Continue: true},
		{Name: "b", Robots: []string{"x", "y"}, Mentions: Mentions{Mobiles: []string{"2"}}},
	})
	got, _ := r.Route(formatter.Alert{}, "")
	if describe(got) != "x[1 2] y[2]" {
		t.Errorf("%s", describe(got))
	}
}

func TestSplit(t *testing.T) {
	if got := fmt.Sprint(SplitList(" a, b ,,c\nd，e")); got != "[a b c d e]" {
		t.Errorf("SplitList = %s", got)
	}
}

func TestResolve(t *testing.T) {
	routes := []Route{{Name: "a", Robots: []string{"ops", "web"}}}
	got, err := Resolve(routes, map[string]string{"ops": "k1", "web": "k2"})
	if err != nil || fmt.Sprint(got[0].Robots) != "[k1 k2]" || fmt.Sprint(routes[0].Robots) != "[ops web]" {
		t.Errorf("Resolve = %v, %v (and must not change its input)", got, err)
	}
	if _, err := Resolve(routes, map[string]string{"ops": "k1"}); err == nil || !strings.Contains(err.Error(), `unknown robot "web"`) {
		t.Errorf("unknown robot: %v", err)
	}
}

func TestMentionsSettingKeepsOnlyMobiles(t *testing.T) {
	r := New([]Route{{Name: "a", Robots: []string{"x"}}})
	got, _ := r.Route(formatter.Alert{Settings: map[string]string{SettingMentions: "13800000000, [x](https://evil.example), @all, 138-0000-0000"}}, "")
	if describe(got) != "x[13800000000]" {
		t.Errorf("%s: a mentions setting may only name mobiles DingTalk can ping", describe(got))
	}
}

func TestCatchAll(t *testing.T) {
	for rt, want := range map[*Route]bool{
		{Name: "a"}:                  true,
		{Name: "b", Match: &Match{}}: true,
		{Name: "c", Match: &Match{Levels: []string{"error"}}}: false,
	} {
		if rt.CatchAll() != want {
			t.Errorf("%s: CatchAll() = %v", rt.Name, !want)
		}
	}
}
