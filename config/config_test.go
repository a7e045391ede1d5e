package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	tok1 = "1111111111111111111111111111111111111111111111111111111111111111"
	tok2 = "2222222222222222222222222222222222222222222222222222222222222222"
	tok3 = "3333333333333333333333333333333333333333333333333333333333333333"
	sec1 = "SEC1111111111111111111111111111111111111111111111111111111111111111"
	sec3 = "SEC3333333333333333333333333333333333333333333333333333333333333333"
)

func TestDefaults(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.RatePerMinute != 18 || c.MaxBodyBytes != 10485760 ||
		c.Language != "zh-CN" || c.MaxAge != 24*time.Hour || c.DedupeWindow != 30*time.Minute ||
		c.APIURL != "https://oapi.dingtalk.com/robot/send" || c.Zone.String() != "Asia/Shanghai" {
		t.Errorf("defaults %+v", c.Env)
	}
	if len(c.Robots) != 0 || len(c.Routes) != 1 || c.Routes[0].Name != "default" {
		t.Errorf("robots %v routes %v", c.Robots, c.Routes)
	}
}

func TestRobotsPairing(t *testing.T) {
	c, err := Load([]string{
		"DINGTALK_TOKENS=" + tok1 + "\nhttps://oapi.dingtalk.io/robot/send?access_token=" + tok2 + "\n" + tok3 + "\n",
		"DINGTALK_SECRETS=" + sec1 + "\n-\n" + sec3,
		"DINGTALK_AT_MOBILES=13800000000, +1-2025550123",
		"DINGTALK_AT_ALL=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Robots) != 3 {
		t.Fatalf("robots %+v", c.Robots)
	}
	r := c.Robots
	if r[0].Name != "robot-1" || r[0].Token != tok1 || r[0].Secret != sec1 || r[0].URL != "https://oapi.dingtalk.com/robot/send" || r[0].Line != 1 {
		t.Errorf("robot 1 %+v", r[0])
	}
	if r[1].Token != tok2 || r[1].Secret != "" || r[1].URL != "https://oapi.dingtalk.io/robot/send" {
		t.Errorf("robot 2 (full URL, no secret) %+v", r[1])
	}
	if r[2].Secret != sec3 || r[2].Line != 3 {
		t.Errorf("robot 3 %+v", r[2])
	}
	d := c.Routes[0]
	if strings.Join(d.Robots, ",") != "robot-1,robot-2,robot-3" || strings.Join(d.Mentions.Mobiles, ",") != "13800000000,+1-2025550123" || !d.Mentions.All {
		t.Errorf("default route %+v", d)
	}
}

func TestCommaSeparatedAndFewerSecrets(t *testing.T) {
	c, err := Load([]string{"DINGTALK_TOKENS=" + tok1 + "," + tok2, "DINGTALK_SECRETS=" + sec1})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Robots) != 2 || c.Robots[0].Secret != sec1 || c.Robots[1].Secret != "" {
		t.Errorf("robots %+v", c.Robots)
	}
	// An empty line means "no secret", like "-".
	c, err = Load([]string{"DINGTALK_TOKENS=" + tok1 + "\n" + tok2 + "\n" + tok3, "DINGTALK_SECRETS=" + sec1 + "\n\n" + sec3})
	if err != nil {
		t.Fatal(err)
	}
	if c.Robots[1].Secret != "" || c.Robots[2].Secret != sec3 {
		t.Errorf("robots %+v", c.Robots)
	}
}

func TestFileVariants(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	c, err := Load([]string{
		"DINGTALK_TOKENS_FILE=" + write("tokens", tok1+"\n"+tok2+"\n"),
		"DINGTALK_SECRETS_FILE=" + write("secrets", "-\n"+sec1+"\n"),
		"SENTRY_CLIENT_SECRET_FILE=" + write("cs", "client-secret\n"),
		"RELAY_WEBHOOK_TOKEN_FILE=" + write("wt", "legacy\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Robots) != 2 || c.Robots[1].Secret != sec1 || c.ClientSecret != "client-secret" || c.WebhookToken != "legacy" {
		t.Errorf("from files: robots %+v client secret %q token %q", c.Robots, c.ClientSecret, c.WebhookToken)
	}
	_, err = Load([]string{"SENTRY_CLIENT_SECRET_FILE=" + filepath.Join(dir, "missing")})
	if err == nil || !strings.HasPrefix(err.Error(), "SENTRY_CLIENT_SECRET_FILE: ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\n" + tok2 + "\n" + tok3, "DINGTALK_SECRETS=" + sec1 + "\n-\nabc"}, `DINGTALK_SECRETS line 3: "abc" is not a SEC secret`},
		{[]string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=" + sec1 + "\n" + sec3}, "DINGTALK_SECRETS has 2 lines but DINGTALK_TOKENS has 1"},
		{[]string{"DINGTALK_SECRETS=" + sec1}, "DINGTALK_SECRETS is set but DINGTALK_TOKENS is not"},
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\n\n" + tok2}, "DINGTALK_TOKENS line 2 is empty"},
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\nnot a token!"}, `DINGTALK_TOKENS line 2: "…ken!" is neither an access token nor a robot webhook URL`},
		{[]string{"DINGTALK_TOKENS=https://oapi.dingtalk.com/robot/send?foo=bar"}, "DINGTALK_TOKENS line 1: the webhook URL has no access_token"},
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\nhttps://oapi.dingtalk.com/robot/send?access_token=" + tok1}, "DINGTALK_TOKENS line 2: same robot as line 1"},
		{[]string{"DINGTALK_AT_MOBILES=13800000000,bob"}, `DINGTALK_AT_MOBILES entry 2: "bob" is not a mobile number`},
		{[]string{"RELAY_RATE_PER_MINUTE=25"}, "RELAY_RATE_PER_MINUTE: 25 is above DingTalk's limit"},
		{[]string{"RELAY_RATE_PER_MINUTE=0"}, "RELAY_RATE_PER_MINUTE: 0 must be at least 1"},
		{[]string{"RELAY_RATE_PER_MINUTE=abc"}, `RELAY_RATE_PER_MINUTE: "abc" is not a valid int`},
		{[]string{"DINGTALK_AT_ALL=maybe"}, `DINGTALK_AT_ALL: "maybe" is not a valid bool`},
		{[]string{"RELAY_MAX_AGE=soon"}, "RELAY_MAX_AGE: "},
		{[]string{"RELAY_LANGUAGE=fr"}, `RELAY_LANGUAGE: "fr" is not supported`},
		{[]string{"RELAY_TIMEZONE=Mars/Olympus"}, `RELAY_TIMEZONE: unknown time zone "Mars/Olympus"`},
		{[]string{"SENTRY_URL=sentry.example.com"}, `SENTRY_URL: "sentry.example.com" is not an http(s) URL`},
		{[]string{"DINGTALK_API_URL=ftp://x"}, "DINGTALK_API_URL"},
		{[]string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{[]string{"LOG_FORMAT=xml"}, "LOG_FORMAT"},
		{[]string{"RELAY_MAX_BODY_BYTES=10"}, "RELAY_MAX_BODY_BYTES"},
		{[]string{"SENTRY_CLIENT_SECRET=a", "SENTRY_CLIENT_SECRET_FILE=/dev/null"}, "SENTRY_CLIENT_SECRET and SENTRY_CLIENT_SECRET_FILE are both set"},
	} {
		_, err := Load(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.env, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
		for _, secret := range []string{tok1, tok2, sec1, sec3} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks a secret: %v", err)
			}
		}
	}
}

func writeRoutes(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoutesFile(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "ops.secret")
	os.WriteFile(secretFile, []byte(sec3+"\n"), 0o600)
	p := writeRoutes(t, `
robots:
  ops:
    token: "`+tok3+`"
    secret_file: `+secretFile+`
    keyword: Sentry
  web:
    token: https://oapi.dingtalk.com/robot/send?access_token=`+tok2+`
    msgtype: actionCard
routes:
  - name: payments-prod
    match:
      projects: ["payments", "billing-*"]
      environments: ["prod*"]
      levels: ["fatal", "error"]
      resources: ["event_alert", "metric_alert", "issue", "error"]
    robots: [ops, robot-1]
    mentions:
      mobiles: ["13800000000"]
      user_ids: ["manager1234"]
      levels: ["fatal"]
    continue: true
  - name: default
    robots: [web]
`)
	c, err := Load([]string{"DINGTALK_TOKENS=" + tok1, "RELAY_ROUTES_FILE=" + p})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Robots) != 3 || c.Robots[1].Name != "ops" || c.Robots[1].Secret != sec3 || c.Robots[1].Keyword != "Sentry" ||
		c.Robots[2].Name != "web" || c.Robots[2].Type != "actionCard" || c.Robots[2].Token != tok2 {
		t.Fatalf("robots %+v", c.Robots)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("routes %+v", c.Routes)
	}
	r := c.Routes[0]
	if r.Name != "payments-prod" || !r.Continue || r.Match == nil || strings.Join(r.Match.Projects, ",") != "payments,billing-*" ||
		strings.Join(r.Robots, ",") != "ops,robot-1" || r.Mentions.UserIDs[0] != "manager1234" || r.Mentions.Levels[0] != "fatal" {
		t.Errorf("route %+v", r)
	}
	if c.Routes[1].Match != nil {
		t.Error("a route without match must be a catch-all")
	}
}

func TestRoutesFileErrors(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"unknown robot", "routes:\n  - name: x\n    robots: [ghost]\n", `route "x": unknown robot "ghost"`},
		{"empty robots", "routes:\n  - name: x\n    robots: []\n", `route "x": no robots`},
		{"duplicate route", "routes:\n  - name: x\n    robots: [robot-1]\n  - name: x\n    robots: [robot-1]\n", `route "x" is defined twice`},
		{"bad glob", "routes:\n  - name: x\n    match: {projects: ['[']}\n    robots: [robot-1]\n", `route "x": match.projects: bad glob "["`},
		{"bad mobile", "routes:\n  - name: x\n    robots: [robot-1]\n    mentions: {mobiles: [bob]}\n", `route "x": mentions.mobiles: "bob" is not a mobile number`},
		{"unknown key", "routes:\n  - name: x\n    robots: [robot-1]\n    mention: {}\n", `line 4: field mention is not a route key`},
		{"unknown top key", "robot: {}\nroutes: []\n", "field robot is not a known key"},
		{"no routes", "robots: {}\n", "no routes"},
		{"nameless route", "routes:\n  - robots: [robot-1]\n", "route 1 has no name"},
		{"bad route name", "routes:\n  - name: a/b\n    robots: [robot-1]\n", `route "a/b": names may contain`},
		{"robot without token", "robots:\n  ops: {keyword: x}\nroutes:\n  - name: x\n    robots: [ops]\n", `robot "ops": no token`},
		{"robot bad secret", "robots:\n  ops: {token: " + tok2 + ", secret: nope}\nroutes:\n  - name: x\n    robots: [ops]\n", `robot "ops": secret: "nope" is not a SEC secret`},
		{"robot name taken", "robots:\n  robot-1: {token: " + tok2 + "}\nroutes:\n  - name: x\n    robots: [robot-1]\n", "the name is taken"},
		{"same token twice", "robots:\n  ops: {token: " + tok1 + "}\nroutes:\n  - name: x\n    robots: [ops]\n", `same token as robot "robot-1"`},
		{"bad msgtype", "routes:\n  - name: x\n    robots: [robot-1]\n    msgtype: card\n", `msgtype "card"`},
		{"actionCard cannot mention", "routes:\n  - name: x\n    robots: [robot-1]\n    msgtype: actionCard\n    mentions: {mobiles: ['13800000000']}\n", "cannot @-mention"},
		{"not yaml", "routes: [", "routes.yaml: "},
	} {
		p := writeRoutes(t, c.yaml)
		_, err := Load([]string{"DINGTALK_TOKENS=" + tok1, "RELAY_ROUTES_FILE=" + p})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("%s: err = %v, want %q prefixed by the file name", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), tok1) {
			t.Errorf("%s: error leaks a token", c.name)
		}
	}
	_, err := Load([]string{"RELAY_ROUTES_FILE=/nonexistent/routes.yaml"})
	if err == nil || !strings.HasPrefix(err.Error(), "RELAY_ROUTES_FILE: ") {
		t.Errorf("missing routes file: %v", err)
	}
}
