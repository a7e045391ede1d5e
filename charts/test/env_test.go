package charttest

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestSecretWiring checks each secret variable is read from the right Secret and key, and
// that the chart's Secret holds exactly the values set.
func TestSecretWiring(t *testing.T) {
	vars := []string{"DINGTALK_TOKENS", "DINGTALK_SECRETS", "SENTRY_CLIENT_SECRET", "RELAY_WEBHOOK_TOKEN", "SENTRY_DSN",
		"SENTRY_AUTH_TOKEN", "RELAY_ACTION_KEY", "RELAY_CANARY_DSN", "RELAY_SMTP_URL"}
	tests := []struct {
		name       string
		values     string
		want       map[string]secretRef // variable -> secret/key; others must be absent
		wantSecret map[string]string    // chart Secret data; nil = no chart Secret
	}{
		{
			name: "chart secret",
			values: `
dingtalk:
  tokens: [tok-one-12345678, "https://oapi.dingtalk.com/robot/send?access_token=tok-two-12345678"]
  secrets: [SEC12345678, "-"]
sentry: {clientSecret: cs, webhookToken: wt, dsn: "https://k@sentry.example/1"}
actions: {publicURL: "https://relay.example", authToken: at, key: ak}
canary: {dsn: "https://c@sentry.example/2"}
smtp: {url: "smtp://u:p@mail.example:587"}
`,
			want: map[string]secretRef{
				"DINGTALK_TOKENS":      {fullname, "dingtalk-tokens"},
				"DINGTALK_SECRETS":     {fullname, "dingtalk-secrets"},
				"SENTRY_CLIENT_SECRET": {fullname, "sentry-client-secret"},
				"RELAY_WEBHOOK_TOKEN":  {fullname, "webhook-token"},
				"SENTRY_DSN":           {fullname, "sentry-dsn"},
				"SENTRY_AUTH_TOKEN":    {fullname, "sentry-auth-token"},
				"RELAY_ACTION_KEY":     {fullname, "action-key"},
				"RELAY_CANARY_DSN":     {fullname, "canary-dsn"},
				"RELAY_SMTP_URL":       {fullname, "smtp-url"},
			},
			wantSecret: map[string]string{
				"dingtalk-tokens":      "tok-one-12345678\nhttps://oapi.dingtalk.com/robot/send?access_token=tok-two-12345678",
				"dingtalk-secrets":     "SEC12345678\n-",
				"sentry-client-secret": "cs",
				"webhook-token":        "wt",
				"sentry-dsn":           "https://k@sentry.example/1",
				"sentry-auth-token":    "at",
				"action-key":           "ak",
				"canary-dsn":           "https://c@sentry.example/2",
				"smtp-url":             "smtp://u:p@mail.example:587",
			},
		},
		{
			// One secret per Sentry integration, one per line as the relay reads them.
			name:       "client secrets as a list",
			values:     "sentry: {clientSecret: [cs-one, cs-two]}",
			want:       map[string]secretRef{"SENTRY_CLIENT_SECRET": {fullname, "sentry-client-secret"}},
			wantSecret: map[string]string{"sentry-client-secret": "cs-one\ncs-two"},
		},
		{
			name:       "client secret list of one",
			values:     "sentry: {clientSecret: [cs-one]}",
			want:       map[string]secretRef{"SENTRY_CLIENT_SECRET": {fullname, "sentry-client-secret"}},
			wantSecret: map[string]string{"sentry-client-secret": "cs-one"},
		},
		{
			name:       "empty client secret list",
			values:     "sentry: {clientSecret: []}",
			want:       map[string]secretRef{},
			wantSecret: nil,
		},
		{
			name:       "smtp alone",
			values:     "smtp: {url: 'smtps://u:p@mail.example:465', from: 'Sentry <a@example.com>'}",
			want:       map[string]secretRef{"RELAY_SMTP_URL": {fullname, "smtp-url"}},
			wantSecret: map[string]string{"smtp-url": "smtps://u:p@mail.example:465"},
		},
		{
			name:   "only what is set",
			values: "dingtalk: {tokens: [tok-one-12345678]}",
			want:   map[string]secretRef{"DINGTALK_TOKENS": {fullname, "dingtalk-tokens"}},
			wantSecret: map[string]string{
				"dingtalk-tokens": "tok-one-12345678",
			},
		},
		{
			name:   "existing secret, default keys",
			values: "existingSecret: creds",
			want: map[string]secretRef{
				"DINGTALK_TOKENS":      {"creds", "dingtalk-tokens"},
				"DINGTALK_SECRETS":     {"creds", "dingtalk-secrets"},
				"SENTRY_CLIENT_SECRET": {"creds", "sentry-client-secret"},
				"RELAY_WEBHOOK_TOKEN":  {"creds", "webhook-token"},
				"SENTRY_DSN":           {"creds", "sentry-dsn"},
				"SENTRY_AUTH_TOKEN":    {"creds", "sentry-auth-token"},
				"RELAY_ACTION_KEY":     {"creds", "action-key"},
				"RELAY_CANARY_DSN":     {"creds", "canary-dsn"},
				"RELAY_SMTP_URL":       {"creds", "smtp-url"},
			},
		},
		{
			name: "existing secret, custom keys",
			values: `
existingSecret: creds
existingSecretKeys: {dingtalkTokens: t, dingtalkSecrets: s, sentryClientSecret: c, webhookToken: w, sentryDSN: d,
  sentryAuthToken: at, actionKey: ak, canaryDSN: cd, smtpURL: su}
`,
			want: map[string]secretRef{
				"DINGTALK_TOKENS":      {"creds", "t"},
				"DINGTALK_SECRETS":     {"creds", "s"},
				"SENTRY_CLIENT_SECRET": {"creds", "c"},
				"RELAY_WEBHOOK_TOKEN":  {"creds", "w"},
				"SENTRY_DSN":           {"creds", "d"},
				"SENTRY_AUTH_TOKEN":    {"creds", "at"},
				"RELAY_ACTION_KEY":     {"creds", "ak"},
				"RELAY_CANARY_DSN":     {"creds", "cd"},
				"RELAY_SMTP_URL":       {"creds", "su"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, parseValues(t, tt.values))
			env := r.env(t)
			for _, v := range vars {
				e, ok := env[v]
				want, wantOK := tt.want[v]
				if ok != wantOK {
					t.Errorf("%s present = %v, want %v", v, ok, wantOK)
					continue
				}
				if !ok {
					continue
				}
				ref := e.ValueFrom
				if e.Value != "" || ref == nil || ref.SecretKeyRef == nil {
					t.Errorf("%s = %+v, want a secretKeyRef", v, e)
					continue
				}
				skr := ref.SecretKeyRef
				if skr.Name != want.name || skr.Key != want.key || skr.Optional == nil || !*skr.Optional {
					t.Errorf("%s from %s/%s (optional %v), want %s/%s optional", v, skr.Name, skr.Key, skr.Optional, want.name, want.key)
				}
			}
			secrets := all[*corev1.Secret](r)
			if tt.wantSecret == nil {
				if len(secrets) != 0 {
					t.Errorf("rendered %d Secrets, want none", len(secrets))
				}
				return
			}
			s := named[*corev1.Secret](r, fullname)
			if s == nil {
				t.Fatalf("no Secret %s", fullname)
			}
			got := map[string]string{}
			for k, v := range s.Data {
				got[k] = string(v)
			}
			if !reflect.DeepEqual(got, tt.wantSecret) {
				t.Errorf("Secret data = %q, want %q", got, tt.wantSecret)
			}
		})
	}
}

// TestExistingSecretScenario checks the ci scenario with every resource managed outside the chart.
func TestExistingSecretScenario(t *testing.T) {
	r := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "existing-secret-values.yaml")))
	if n := len(all[*corev1.Secret](r)) + len(all[*corev1.ConfigMap](r)) + len(all[*corev1.PersistentVolumeClaim](r)); n != 0 {
		t.Errorf("rendered %d Secrets/ConfigMaps/PVCs, want none (all existing)", n)
	}
	env := r.env(t)
	if ref := env["DINGTALK_TOKENS"].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "relay-credentials" || ref.SecretKeyRef.Key != "tokens" {
		t.Errorf("DINGTALK_TOKENS = %+v, want relay-credentials/tokens", env["DINGTALK_TOKENS"])
	}
	if v := r.volume(t, "data"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "relay-data" {
		t.Errorf("data volume = %+v, want existing claim relay-data", v)
	}
	rv := r.volume(t, "routes")
	if rv == nil || rv.Secret == nil || rv.Secret.SecretName != "relay-routes" ||
		!reflect.DeepEqual(rv.Secret.Items, []corev1.KeyToPath{{Key: "routes.yml", Path: "routes.yaml"}}) {
		t.Errorf("routes volume = %+v, want Secret relay-routes key routes.yml as routes.yaml", rv)
	}
	tv := r.volume(t, "template")
	if tv == nil || tv.ConfigMap == nil || tv.ConfigMap.Name != "relay-card" ||
		!reflect.DeepEqual(tv.ConfigMap.Items, []corev1.KeyToPath{{Key: "card.gotmpl", Path: "card.tmpl"}}) {
		t.Errorf("template volume = %+v, want ConfigMap relay-card key card.gotmpl as card.tmpl", tv)
	}
	if env["RELAY_ROUTES_FILE"].Value != "/etc/sentry-dingtalk-relay/routes/routes.yaml" ||
		env["RELAY_TEMPLATE_FILE"].Value != "/etc/sentry-dingtalk-relay/template/card.tmpl" {
		t.Errorf("RELAY_ROUTES_FILE=%q RELAY_TEMPLATE_FILE=%q", env["RELAY_ROUTES_FILE"].Value, env["RELAY_TEMPLATE_FILE"].Value)
	}
}

// TestRoutesAndTemplate checks the inline routes file and card template reach the relay intact.
func TestRoutesAndTemplate(t *testing.T) {
	file := filepath.Join(chartDir, "ci", "full-values.yaml")
	vals := valuesFile(t, file)
	r := render(t, vals)
	const name = "dingtalk-relay" // fullnameOverride
	env := r.env(t)

	if got := env["RELAY_ROUTES_FILE"].Value; got != "/etc/sentry-dingtalk-relay/routes/routes.yaml" {
		t.Errorf("RELAY_ROUTES_FILE = %q", got)
	}
	if m := r.mount(t, "routes"); m == nil || m.MountPath != "/etc/sentry-dingtalk-relay/routes" || !m.ReadOnly {
		t.Errorf("routes mount = %+v, want read-only /etc/sentry-dingtalk-relay/routes", m)
	}
	rv := r.volume(t, "routes")
	if rv == nil || rv.Secret == nil || rv.Secret.SecretName != name+"-routes" ||
		!reflect.DeepEqual(rv.Secret.Items, []corev1.KeyToPath{{Key: "routes.yaml", Path: "routes.yaml"}}) {
		t.Errorf("routes volume = %+v, want Secret %s-routes key routes.yaml", rv, name)
	}
	rs := named[*corev1.Secret](r, name+"-routes")
	if rs == nil {
		t.Fatal("no routes Secret")
	}
	var gotRoutes any
	if err := yaml.Unmarshal(rs.Data["routes.yaml"], &gotRoutes); err != nil {
		t.Fatalf("routes.yaml: %v", err)
	}
	wantRoutes := vals["routes"].(map[string]any)["config"]
	if !reflect.DeepEqual(normalize(t, gotRoutes), normalize(t, wantRoutes)) {
		t.Errorf("routes.yaml = %v, want %v", gotRoutes, wantRoutes)
	}

	if got := env["RELAY_TEMPLATE_FILE"].Value; got != "/etc/sentry-dingtalk-relay/template/card.tmpl" {
		t.Errorf("RELAY_TEMPLATE_FILE = %q", got)
	}
	if m := r.mount(t, "template"); m == nil || m.MountPath != "/etc/sentry-dingtalk-relay/template" || !m.ReadOnly {
		t.Errorf("template mount = %+v, want read-only /etc/sentry-dingtalk-relay/template", m)
	}
	cm := named[*corev1.ConfigMap](r, name+"-template")
	if cm == nil {
		t.Fatal("no template ConfigMap")
	}
	wantTmpl := vals["template"].(map[string]any)["content"].(string)
	if got := cm.Data["card.tmpl"]; got != wantTmpl {
		t.Errorf("card.tmpl = %q, want the template verbatim %q", got, wantTmpl)
	}

	// Without routes or template, nothing is mounted or set.
	d := render(t, nil)
	denv := d.env(t)
	for _, v := range []string{"RELAY_ROUTES_FILE", "RELAY_TEMPLATE_FILE"} {
		if _, ok := denv[v]; ok {
			t.Errorf("%s set by default", v)
		}
	}
	if d.volume(t, "routes") != nil || d.volume(t, "template") != nil {
		t.Error("routes/template volume rendered by default")
	}
}

// normalize round-trips through JSON so YAML-decoded and values-decoded trees compare equal.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPlainEnv checks every plain setting reaches its variable, formatted as the relay parses it.
func TestPlainEnv(t *testing.T) {
	r := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml")))
	env := r.env(t)
	want := map[string]string{
		"DINGTALK_KEYWORD":       "告警",
		"DINGTALK_AT_MOBILES":    "13800000000,13900000000",
		"DINGTALK_AT_ALL":        "true",
		"DINGTALK_API_URL":       "https://dingtalk-gateway.internal/robot/send",
		"SENTRY_URL":             "https://sentry.example.com",
		"RELAY_ADDR":             ":8080",
		"RELAY_DATA_DIR":         "/data",
		"RELAY_RATE_PER_MINUTE":  "15",
		"RELAY_MAX_BODY_BYTES":   "10485760", // not 1.048576e+07
		"RELAY_LANGUAGE":         "zh-CN",
		"RELAY_TIMEZONE":         "Asia/Shanghai",
		"RELAY_MAX_AGE":          "12h",
		"RELAY_DEDUPE_WINDOW":    "45m",
		"RELAY_SHUTDOWN_TIMEOUT": "20s",
		"RELAY_FALLBACK_AFTER":   "5m",
		"RELAY_QUIET_ALERT":      "6h",
		"RELAY_PUBLIC_URL":       "https://dingtalk-relay.example.com",
		"RELAY_ACTION_TTL":       "72h",
		"RELAY_CANARY_INTERVAL":  "3h",
		"RELAY_CANARY_TIMEOUT":   "10m",
		"RELAY_SMTP_FROM":        "Sentry <alerts@example.com>",
		"LOG_LEVEL":              "debug",
		"LOG_FORMAT":             "text",
		"HTTPS_PROXY":            "http://proxy.example:3128",
		"NO_PROXY":               ".svc,.cluster.local",
	}
	for k, v := range want {
		if e, ok := env[k]; !ok || e.Value != v {
			t.Errorf("%s = %q (set %v), want %q", k, e.Value, ok, v)
		}
	}
	if ef := r.relay(t).EnvFrom; len(ef) != 1 || ef[0].ConfigMapRef == nil || ef[0].ConfigMapRef.Name != "relay-extra" {
		t.Errorf("envFrom = %+v, want configMapRef relay-extra", ef)
	}
	c := r.relay(t)
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args = %v, want [serve]", c.Args)
	}
	if got, want := c.Image, "ghcr.io/sentry-dingtalk-relay/sentry-dingtalk-relay:0.1.0-rc.1@sha256:0000000000000000000000000000000000000000000000000000000000000000"; got != want {
		t.Errorf("image = %s, want %s", got, want)
	}

	// A false atAll leaves DINGTALK_AT_ALL unset; containerPort moves RELAY_ADDR with the port.
	r2 := render(t, parseValues(t, "dingtalk: {atAll: false}\ncontainerPort: 9090"))
	env2 := r2.env(t)
	if _, ok := env2["DINGTALK_AT_ALL"]; ok {
		t.Error("DINGTALK_AT_ALL set although atAll is false")
	}
	if env2["RELAY_ADDR"].Value != ":9090" || r2.relay(t).Ports[0].ContainerPort != 9090 {
		t.Errorf("RELAY_ADDR = %q, port %d, want :9090", env2["RELAY_ADDR"].Value, r2.relay(t).Ports[0].ContainerPort)
	}
}

// envTagRE finds the variables of the relay's config struct (caarlos0/env tags).
var envTagRE = regexp.MustCompile(`env:"([A-Z0-9_]+)`)

// TestEveryRelayVariableReachable guards against drift: each variable the relay reads
// (config/config.go) must be settable from values, directly or through a Secret.
func TestEveryRelayVariableReachable(t *testing.T) {
	src, err := os.ReadFile("../../config/config.go")
	if err != nil {
		t.Fatalf("relay config source not found: %v", err)
	}
	reachable := map[string]bool{}
	for _, f := range []string{"full-values.yaml", "redis-values.yaml"} {
		for name := range render(t, valuesFile(t, filepath.Join(chartDir, "ci", f))).env(t) {
			reachable[name] = true
		}
	}
	found := 0
	for _, m := range envTagRE.FindAllStringSubmatch(string(src), -1) {
		name := m[1]
		if strings.HasSuffix(name, "_FILE") && name != "RELAY_ROUTES_FILE" && name != "RELAY_TEMPLATE_FILE" {
			continue // the NAME_FILE twins of secrets: the chart uses secretKeyRef instead
		}
		found++
		if !reachable[name] {
			t.Errorf("the relay reads %s but no chart value sets it", name)
		}
	}
	if found < 20 {
		t.Errorf("found only %d variables in config/config.go: has its tag format changed?", found)
	}
	if !reachable["RELAY_REDIS_URL"] {
		t.Error("RELAY_REDIS_URL is not reachable in Redis mode")
	}
}

// TestIngressActionRoute checks the Ingress routes the action pages exactly when action links
// are on: browsers must reach /action, while Sentry's webhook needs only /sentry.
func TestIngressActionRoute(t *testing.T) {
	const actions = "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://relay.example', authToken: at, key: ak}\n"
	const twoHosts = "ingress:\n  enabled: true\n  hosts:\n    - {host: relay.example, paths: [{path: /sentry, pathType: Prefix}]}\n    - {paths: [{path: /sentry/webhook, pathType: Exact}]}\n"
	prefix := networkingv1.PathTypePrefix
	exact := networkingv1.PathTypeExact
	type path struct {
		path string
		typ  networkingv1.PathType
	}
	tests := []struct {
		name   string
		values string
		want   [][]path // per rule
	}{
		{"no actions", "ingress: {enabled: true}", [][]path{{{"/sentry", prefix}}}},
		{"actions on the default host", actions + "ingress: {enabled: true}", [][]path{{{"/sentry", prefix}, {"/action", prefix}}}},
		{"actions on every host", actions + twoHosts, [][]path{{{"/sentry", prefix}, {"/action", prefix}}, {{"/sentry/webhook", exact}, {"/action", prefix}}}},
		{"two hosts without actions", twoHosts, [][]path{{{"/sentry", prefix}}, {{"/sentry/webhook", exact}}}},
		{"listed already", actions + "ingress: {enabled: true, hosts: [{host: relay.example, paths: [{path: /action, pathType: ImplementationSpecific}, {path: /sentry, pathType: Prefix}]}]}",
			[][]path{{{"/action", networkingv1.PathTypeImplementationSpecific}, {"/sentry", prefix}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, parseValues(t, tt.values))
			ings := all[*networkingv1.Ingress](r)
			if len(ings) != 1 {
				t.Fatalf("rendered %d Ingresses, want 1", len(ings))
			}
			rules := ings[0].Spec.Rules
			if len(rules) != len(tt.want) {
				t.Fatalf("%d rules, want %d", len(rules), len(tt.want))
			}
			for i, rule := range rules {
				var got []path
				for _, p := range rule.HTTP.Paths {
					got = append(got, path{p.Path, *p.PathType})
					if b := p.Backend.Service; b == nil || b.Name != fullname || b.Port.Number != 8080 {
						t.Errorf("rule %d path %s goes to %+v, want %s:8080", i, p.Path, p.Backend, fullname)
					}
				}
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("rule %d (host %q) paths = %v, want %v", i, rule.Host, got, tt.want[i])
				}
			}
		})
	}
	if n := len(all[*networkingv1.Ingress](render(t, parseValues(t, actions)))); n != 0 {
		t.Errorf("action links rendered %d Ingresses with ingress.enabled false, want 0", n)
	}
}

// TestNotesActions checks NOTES says where the action pages live and what must reach them.
func TestNotesActions(t *testing.T) {
	const actions = "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://relay.example/', authToken: at-secret-1234, key: ak-secret-1234}\n"
	tests := []struct {
		name    string
		values  string
		want    []string
		notWant []string
	}{
		{name: "off", values: "", notWant: []string{"/action", "canary"}},
		{name: "no ingress", values: actions,
			want: []string{"https://relay.example/action/\n", "ingress.enabled is false", "http://" + fullname + "." + namespace + ".svc:8080"}},
		{name: "ingress on its host", values: actions + "ingress: {enabled: true, hosts: [{host: relay.example, paths: [{path: /sentry, pathType: Prefix}]}]}",
			want: []string{"https://relay.example/action/\n", "The ingress routes /action"}, notWant: []string{"ingress.enabled is false", "none of ingress.hosts"}},
		{name: "ingress for any host", values: actions + "ingress: {enabled: true, hosts: [{paths: [{path: /sentry, pathType: Prefix}]}]}",
			notWant: []string{"none of ingress.hosts"}},
		{name: "ingress elsewhere", values: "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://relay.example:8443', authToken: at, key: ak}\ningress: {enabled: true}",
			want: []string{"https://relay.example:8443/action/", "relay.example (actions.publicURL) is none of ingress.hosts"}},
		{name: "canary", values: "canary: {dsn: 'https://canary-secret-1234@s/2', interval: 3h}",
			want: []string{"every 3h", "alert rule must send to the webhook URL above"}},
		{name: "canary default interval", values: "canary: {dsn: 'https://c@s/2'}", want: []string{"every 6h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes := render(t, parseValues(t, tt.values)).notes
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, w := range append(tt.notWant, "secret-1234") {
				if strings.Contains(notes, w) {
					t.Errorf("NOTES contain %q:\n%s", w, notes)
				}
			}
		})
	}
}

// TestSecretValuesStayInSecrets renders every secret setting and checks none of the values
// appears in plain text anywhere in the output (Secret data is base64), NOTES included.
func TestSecretValuesStayInSecrets(t *testing.T) {
	vals := valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml"))
	secrets := []string{
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", // token, client secret
		"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		"SEC00000000000000000000000000000000000000000000000000000000000000",
		"legacy-token-0123",
		"https://public@sentry.example.com/42",
		"sntrys-auth-token-0123",
		"action-key-0123456789abcdef0123456789abcdef0123456789abcdef",
		"https://canary@sentry.example.com/43",
		"smtp-password-0123",
		"0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d0a1b2c3d", // routes file
	}
	files, err := renderRaw(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range files {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s prints the secret value %q", name, s)
			}
		}
	}
	// The values above are the ones full-values.yaml sets: each reaches a Secret.
	var data []string
	for _, s := range all[*corev1.Secret](render(t, vals)) {
		for _, v := range s.Data {
			data = append(data, string(v))
		}
	}
	inSecrets := strings.Join(data, "\n")
	for _, s := range secrets {
		if !strings.Contains(inSecrets, s) {
			t.Errorf("%q is in no Secret: full-values.yaml and this test disagree", s)
		}
	}
}
