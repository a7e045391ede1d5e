package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
)

const (
	tok1 = "1111111111111111111111111111111111111111111111111111111111111111"
	tok2 = "2222222222222222222222222222222222222222222222222222222222222222"
	tok3 = "3333333333333333333333333333333333333333333333333333333333333333"
	sec1 = "SEC1111111111111111111111111111111111111111111111111111111111111111"
	sec3 = "SEC3333333333333333333333333333333333333333333333333333333333333333"
)

// robots are the DingTalk robots of c, in order.
func robots(c *Config) []dingtalk.Robot {
	var out []dingtalk.Robot
	for _, r := range c.Robots {
		if r.DingTalk != nil {
			out = append(out, *r.DingTalk)
		}
	}
	return out
}

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
	r := robots(c)
	if c.Robots[0].Name != "robot-1" || r[0].Token != tok1 || r[0].Secret != sec1 || r[0].URL != "https://oapi.dingtalk.com/robot/send" || r[0].Where != "DINGTALK_TOKENS line 1" {
		t.Errorf("robot 1 %+v", r[0])
	}
	if r[1].Token != tok2 || r[1].Secret != "" || r[1].URL != "https://oapi.dingtalk.io/robot/send" {
		t.Errorf("robot 2 (full URL, no secret) %+v", r[1])
	}
	if r[2].Secret != sec3 || r[2].SecretWhere != "DINGTALK_SECRETS line 3" {
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
	if r := robots(c); len(r) != 2 || r[0].Secret != sec1 || r[1].Secret != "" {
		t.Errorf("robots %+v", r)
	}
	// An empty line means "no secret", like "-".
	c, err = Load([]string{"DINGTALK_TOKENS=" + tok1 + "\n" + tok2 + "\n" + tok3, "DINGTALK_SECRETS=" + sec1 + "\n\n" + sec3})
	if err != nil {
		t.Fatal(err)
	}
	if r := robots(c); r[1].Secret != "" || r[2].Secret != sec3 {
		t.Errorf("robots %+v", r)
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
	if len(c.Robots) != 2 || robots(c)[1].Secret != sec1 || c.ClientSecret != "client-secret" || c.WebhookToken != "legacy" {
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
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\nnot_a_token!"}, `DINGTALK_TOKENS line 2: "…ken!" is neither an access token nor a robot webhook URL`},
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\n" + tok2[:20] + " " + tok2[20:]}, "DINGTALK_TOKENS line 2: contains a space"},
		{[]string{"DINGTALK_TOKENS=" + tok1 + "\t" + tok2}, "DINGTALK_TOKENS line 1: contains a tab"},
		{[]string{"DINGTALK_TOKENS=\ufeff" + tok1}, "DINGTALK_TOKENS line 1: starts with a UTF-8 byte order mark"},
		{[]string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=\ufeff" + sec1}, "DINGTALK_SECRETS line 1: starts with a UTF-8 byte order mark"},
		{[]string{"SENTRY_CLIENT_SECRET=abc def"}, "SENTRY_CLIENT_SECRET line 1: contains a space"},
		{[]string{"DINGTALK_AT_MOBILES=138-0000-0000"}, `DINGTALK_AT_MOBILES entry 1: "138-0000-0000" is not a mobile number DingTalk can ping: digits only (13800000000), or +country code`},
		{[]string{"RELAY_MAX_AGE=1d"}, `RELAY_MAX_AGE: "1d" is not a duration: use Go durations such as 24h`},
		{[]string{"RELAY_SMTP_URL=smtp://u:p@mail.example.com:587"}, "RELAY_SMTP_URL is set but RELAY_SMTP_FROM is not"},
		{[]string{"RELAY_SMTP_FROM=alerts@example.com"}, "RELAY_SMTP_FROM is set but RELAY_SMTP_URL is not"},
		{[]string{"RELAY_ADDR=8080"}, `RELAY_ADDR: "8080" is not host:port: did you mean :8080`},
		{[]string{"RELAY_ADDR=localhost"}, `RELAY_ADDR: "localhost" is not host:port (e.g. :8080`},
		{[]string{"RELAY_TIMEZONE=CST"}, `RELAY_TIMEZONE: unknown time zone "CST": use an IANA name such as Asia/Shanghai`},
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
		{[]string{"RELAY_TIMEZONE=Local"}, `RELAY_TIMEZONE: unknown time zone "Local"`},
		{[]string{"RELAY_PUBLIC_URL=https://relay.example.com"}, "action links need RELAY_PUBLIC_URL, SENTRY_AUTH_TOKEN and RELAY_ACTION_KEY together: SENTRY_AUTH_TOKEN and RELAY_ACTION_KEY is not set"},
		{[]string{"RELAY_PUBLIC_URL=https://relay.example.com", "SENTRY_AUTH_TOKEN=t", "RELAY_ACTION_KEY=k"}, "action links need SENTRY_URL when SENTRY_CLIENT_SECRET is not set"},
		{[]string{"RELAY_PUBLIC_URL=relay.example.com", "SENTRY_AUTH_TOKEN=t", "RELAY_ACTION_KEY=k", "SENTRY_URL=https://s.example.com"}, `RELAY_PUBLIC_URL: "relay.example.com" is not an http(s) URL`},
		{[]string{"RELAY_CANARY_DSN=not-a-dsn"}, "RELAY_CANARY_DSN: not a Sentry DSN"},
		{[]string{"RELAY_CANARY_DSN=https://key@sentry.example.com/1", "RELAY_CANARY_TIMEOUT=7h"}, "RELAY_CANARY_TIMEOUT: 7h0m0s is longer than RELAY_CANARY_INTERVAL"},
		{[]string{"RELAY_QUIET_ALERT=1d"}, `RELAY_QUIET_ALERT: "1d" is not a duration`},
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
	r := robots(c)
	if len(c.Robots) != 3 || c.Robots[1].Name != "ops" || r[1].Secret != sec3 || r[1].Keyword != "Sentry" ||
		c.Robots[2].Name != "web" || r[2].MsgType != "actionCard" || r[2].Token != tok2 {
		t.Fatalf("robots %+v", r)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("routes %+v", c.Routes)
	}
	rt := c.Routes[0]
	if rt.Name != "payments-prod" || !rt.Continue || rt.Match == nil || strings.Join(rt.Match.Projects, ",") != "payments,billing-*" ||
		strings.Join(rt.Robots, ",") != "ops,robot-1" || rt.Mentions.UserIDs[0] != "manager1234" || rt.Mentions.Levels[0] != "fatal" {
		t.Errorf("route %+v", rt)
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
		{"unknown robot key", "robots:\n  ops:\n    token: " + tok2 + "\n    secrets: x\nroutes:\n  - name: x\n    robots: [ops]\n", `robot "ops": line 4: "secrets" is not a key of this robot type`},
		{"unknown robot type", "robots:\n  ops: {type: slack}\nroutes:\n  - name: x\n    robots: [ops]\n", `type "slack"`},
		{"robot not a mapping", "robots:\n  ops: [a]\nroutes:\n  - name: x\n    robots: [ops]\n", `expected the robot's settings`},
		{"tab indent", "routes:\n\t- name: x\n", "YAML indents with spaces"},
		{"colon in value", "routes:\n  - name: a: b\n", "quote a value that contains ': '"},
		{"string for list", "routes:\n  - name: x\n    robots: ops\n", "expected a list ([a, b], or lines starting with '- '), got ops"},
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
		{"fallback to itself", "robots:\n  ops: {token: " + tok2 + ", fallback: [ops]}\nroutes:\n  - name: x\n    robots: [ops]\n", `robot "ops": a robot cannot be its own fallback`},
		{"fallback unknown", "robots:\n  ops: {token: " + tok2 + ", fallback: [ghost]}\nroutes:\n  - name: x\n    robots: [ops]\n", `robot "ops": fallback "ghost" is not a robot`},
		{"fallback loop", "robots:\n  a: {token: " + tok2 + ", fallback: [b]}\n  b: {token: " + tok3 + ", fallback: [a]}\nroutes:\n  - name: x\n    robots: [a]\n", "fallbacks go round: a -> b -> a"},
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

// TestRoutesFileWithoutCatchAllKeepsEnvRobots: a routes file written for one
// project must not lose every other project's alerts.
func TestRoutesFileWithoutCatchAllKeepsEnvRobots(t *testing.T) {
	p := writeRoutes(t, "robots:\n  ops: {token: "+tok2+"}\nroutes:\n  - name: payments\n    match: {projects: [payments]}\n    robots: [ops]\n")
	c, err := Load([]string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_AT_MOBILES=13800000000", "RELAY_ROUTES_FILE=" + p})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("routes %+v, want payments then the robots of DINGTALK_TOKENS", c.Routes)
	}
	last := c.Routes[1]
	if !last.CatchAll() || strings.Join(last.Robots, ",") != "robot-1" || strings.Join(last.Mentions.Mobiles, ",") != "13800000000" {
		t.Errorf("catch-all %+v, want robot-1 with DINGTALK_AT_MOBILES", last)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestRoutesFileWarnings(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"env robots no route uses", "robots:\n  ops: {token: " + tok2 + "}\nroutes:\n  - name: all\n    robots: [ops]\n",
			[]string{"DINGTALK_TOKENS=" + tok1}, []string{"no route sends to robot-1 of DINGTALK_TOKENS"}},
		{"env mentions unused", "routes:\n  - name: all\n    robots: [robot-1]\n",
			[]string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_AT_MOBILES=13800000000"}, []string{"DINGTALK_AT_MOBILES / DINGTALK_AT_ALL are not used"}},
		{"no catch-all at all", "robots:\n  ops: {token: " + tok2 + "}\nroutes:\n  - name: p\n    match: {projects: [p]}\n    robots: [ops]\n",
			nil, []string{"no route takes every alert", "no_route"}},
	} {
		p := writeRoutes(t, c.yaml)
		cfg, err := Load(append(c.env, "RELAY_ROUTES_FILE="+p))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		all := strings.Join(cfg.Warnings, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: warnings %q lack %q", c.name, cfg.Warnings, w)
			}
		}
	}
}

func TestSeveralClientSecrets(t *testing.T) {
	c, err := Load([]string{"SENTRY_CLIENT_SECRET=secret-of-sentry-io\nsecret-of-self-hosted\n"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.ClientSecrets, ",") != "secret-of-sentry-io,secret-of-self-hosted" {
		t.Errorf("client secrets %q", c.ClientSecrets)
	}
	if _, err := Load([]string{"SENTRY_CLIENT_SECRET=a\n\nb"}); err == nil || !strings.Contains(err.Error(), "SENTRY_CLIENT_SECRET line 2 is empty") {
		t.Errorf("empty line: %v", err)
	}
}

func TestMobiles(t *testing.T) {
	for m, ok := range map[string]bool{"13800000000": true, "+86-13800000000": true, "+1-2025550123": true,
		"138-0000-0000": false, "+86 13800000000": false, "8613800000000x": false} {
		_, err := Load([]string{"DINGTALK_AT_MOBILES=" + m})
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want accepted=%v", m, err, ok)
		}
	}
}
