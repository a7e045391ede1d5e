package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
)

// routesFile is the YAML routes file (RELAY_ROUTES_FILE). Unknown keys are
// errors, so a typo cannot silently drop a rule. Robots are decoded by
// their type (see robotHeader).
type routesFile struct {
	Robots map[string]yaml.Node `yaml:"robots"`
	Routes []route.Route        `yaml:"routes"`
}

// robotHeader is what every robot entry may say besides its type's own
// settings.
type robotHeader struct {
	// Type is the receiver's kind; dingtalk when omitted.
	Type string `yaml:"type"`
	// Fallback names the receivers that also get this one's alerts when
	// it cannot deliver them.
	Fallback []string `yaml:"fallback"`
}

// dingtalkEntry is a DingTalk robot in the routes file.
type dingtalkEntry struct {
	robotHeader `yaml:",inline"`
	Token       string `yaml:"token"`
	TokenFile   string `yaml:"token_file"`
	Secret      string `yaml:"secret"`
	SecretFile  string `yaml:"secret_file"`
	Keyword     string `yaml:"keyword"`
	MsgType     string `yaml:"msgtype"`
}

// The other types' entries: the header, then the type package's own
// configuration.
type (
	wecomEntry struct {
		robotHeader  `yaml:",inline"`
		wecom.Config `yaml:",inline"`
	}
	feishuEntry struct {
		robotHeader   `yaml:",inline"`
		feishu.Config `yaml:",inline"`
	}
	webhookEntry struct {
		robotHeader       `yaml:",inline"`
		stdwebhook.Config `yaml:",inline"`
	}
	emailEntry struct {
		robotHeader  `yaml:",inline"`
		email.Config `yaml:",inline"`
	}
)

// nameRE is what robot and route names may contain: route names appear in
// webhook URLs (/sentry/webhook/{route}).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// loadRoutes reads RELAY_ROUTES_FILE: its robots join those of
// DINGTALK_TOKENS, and its routes replace the implicit default route; when
// none of them takes every alert, the robots of DINGTALK_TOKENS (with
// envMentions) do, after them.
func (c *Config) loadRoutes(envMentions route.Mentions) error {
	file := c.RoutesFile
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("RELAY_ROUTES_FILE: %w", err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
	}
	var rf routesFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		return fail("%s", yamlError(err))
	}
	envRobots := c.names()
	names := map[string]bool{}
	for _, n := range envRobots {
		names[n] = true
	}
	tokens := map[string]string{}
	for _, r := range c.Robots {
		tokens[r.DingTalk.Token] = r.Name
	}
	for _, name := range slices.Sorted(maps.Keys(rf.Robots)) {
		node := rf.Robots[name]
		if !nameRE.MatchString(name) {
			return fail("robot %q: names may contain letters, digits, '.', '_' and '-'", name)
		}
		if names[name] {
			return fail("robot %q: the name is taken by a robot of DINGTALK_TOKENS", name)
		}
		r, err := c.robot(name, &node)
		if err != nil {
			return fail("robot %q: %v", name, err)
		}
		if r.DingTalk != nil {
			if other, dup := tokens[r.DingTalk.Token]; dup {
				return fail("robot %q: same token as robot %q", name, other)
			}
			tokens[r.DingTalk.Token] = name
		}
		names[name] = true
		c.Robots = append(c.Robots, r)
	}
	if err := c.checkFallbacks(); err != nil {
		return fail("%v", err)
	}
	if len(rf.Routes) == 0 {
		return fail("no routes: add at least one (a route without match is a catch-all)")
	}
	seen := map[string]bool{}
	catchAll := false
	for i, rt := range rf.Routes {
		if rt.Name == "" {
			return fail("route %d has no name", i+1)
		}
		if err := c.checkRoute(rt, names); err != nil {
			return fail("route %q: %v", rt.Name, err)
		}
		if seen[rt.Name] {
			return fail("route %q is defined twice", rt.Name)
		}
		seen[rt.Name] = true
		catchAll = catchAll || rt.CatchAll()
		c.Routes = append(c.Routes, rt)
	}
	c.envFallback(envRobots, envMentions, catchAll, seen)
	return nil
}

// envFallback makes the robots of DINGTALK_TOKENS the catch-all when the
// routes file has none, and says what no route can reach: a routes file
// written for one project must not silently lose every other project's
// alerts.
func (c *Config) envFallback(envRobots []string, envMentions route.Mentions, catchAll bool, taken map[string]bool) {
	envMentioned := len(envMentions.Mobiles) > 0 || envMentions.All
	switch {
	case !catchAll && len(envRobots) > 0:
		name := "default"
		if taken[name] {
			name = "dingtalk-tokens"
		}
		c.Routes = append(c.Routes, route.Route{Name: name, Robots: envRobots, Mentions: envMentions})
		return
	case !catchAll:
		c.Warnings = append(c.Warnings, "no route takes every alert and DINGTALK_TOKENS is empty: an alert no route matches is answered 200 ignored, logged at warn and counted as outcome no_route; add a route without match to catch the rest")
	}
	if unused := c.unreachable(envRobots); len(unused) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("no route sends to %s of DINGTALK_TOKENS: name them in a route of %s, or remove them", strings.Join(unused, ", "), c.RoutesFile))
	}
	if envMentioned {
		c.Warnings = append(c.Warnings, fmt.Sprintf("DINGTALK_AT_MOBILES / DINGTALK_AT_ALL are not used: the routes of %s take every alert and set their own mentions (mentions: in a route)", c.RoutesFile))
	}
}

// checkFallbacks refuses fallbacks to receivers that do not exist and
// chains that come back to where they started: a receiver's alerts must
// never go round.
func (c *Config) checkFallbacks() error {
	next := map[string][]string{}
	for _, r := range c.Robots {
		for _, f := range r.Fallback {
			if _, ok := c.Receiver(f); !ok {
				return fmt.Errorf("robot %q: fallback %q is not a robot", r.Name, f)
			}
			if f == r.Name {
				return fmt.Errorf("robot %q: a robot cannot be its own fallback", r.Name)
			}
		}
		next[r.Name] = r.Fallback
	}
	state := map[string]int{} // 1: on the path, 2: done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("fallbacks go round: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		for _, f := range next[name] {
			if err := visit(f, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, r := range c.Robots {
		if err := visit(r.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// unreachable returns the robots of names that no route sends to.
func (c *Config) unreachable(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(c.Routes, func(rt route.Route) bool { return slices.Contains(rt.Robots, n) }) {
			out = append(out, n)
		}
	}
	return out
}

// robot decodes one robot entry by its type.
func (c *Config) robot(name string, node *yaml.Node) (Receiver, error) {
	if node.Kind != yaml.MappingNode {
		return Receiver{}, fmt.Errorf("line %d: expected the robot's settings (key: value lines), got %s", node.Line, yamlKind(node))
	}
	var h robotHeader
	if err := node.Decode(&h); err != nil {
		return Receiver{}, errors.New(yamlError(err))
	}
	switch h.Type {
	case "", TypeDingTalk:
		var e dingtalkEntry
		if err := decodeStrict(node, &e); err != nil {
			return Receiver{}, err
		}
		r, err := e.robot(name, c.APIURL, c.Keyword)
		if err != nil {
			return Receiver{}, err
		}
		return Receiver{Name: name, Type: TypeDingTalk, DingTalk: r, Fallback: h.Fallback}, nil
	case TypeWeCom:
		var e wecomEntry
		err := decodeStrict(node, &e)
		return Receiver{Name: name, Type: h.Type, WeCom: &e.Config, Fallback: h.Fallback}, err
	case TypeFeishu:
		var e feishuEntry
		err := decodeStrict(node, &e)
		return Receiver{Name: name, Type: h.Type, Feishu: &e.Config, Fallback: h.Fallback}, err
	case TypeWebhook:
		var e webhookEntry
		err := decodeStrict(node, &e)
		return Receiver{Name: name, Type: h.Type, Webhook: &e.Config, Fallback: h.Fallback}, err
	case TypeEmail:
		var e emailEntry
		if err := decodeStrict(node, &e); err != nil {
			return Receiver{}, err
		}
		if c.SMTPURL == "" {
			return Receiver{}, errors.New("type email needs RELAY_SMTP_URL (smtp://user:pass@host:587 or smtps://…:465) and RELAY_SMTP_FROM")
		}
		return Receiver{Name: name, Type: h.Type, Email: &e.Config, Fallback: h.Fallback}, nil
	}
	return Receiver{}, fmt.Errorf("line %d: type %q: use dingtalk, wecom, feishu, webhook or email", node.Line, h.Type)
}

func (e dingtalkEntry) robot(name, apiURL, keyword string) (*dingtalk.Robot, error) {
	token, err := oneOf("token", e.Token, e.TokenFile)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no token (token or token_file)")
	}
	secret, err := oneOf("secret", e.Secret, e.SecretFile)
	if err != nil {
		return nil, err
	}
	tok, endpoint, err := ParseToken(token, apiURL)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if secret != "" && secret != "-" {
		if err := ValidSecret(secret); err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
	} else {
		secret = ""
	}
	if err := validType(e.MsgType); err != nil {
		return nil, err
	}
	if k := strings.TrimSpace(e.Keyword); k != "" {
		keyword = k
	}
	return &dingtalk.Robot{
		Name: name, Token: tok, URL: endpoint, Secret: secret, Keyword: keyword, MsgType: e.MsgType,
		Where: fmt.Sprintf("robot %s in the routes file", name), SecretWhere: fmt.Sprintf("the secret of robot %s in the routes file", name),
	}, nil
}

// decodeStrict decodes a mapping node into v, refusing keys v has no field
// for, with the line of the first one.
func decodeStrict(node *yaml.Node, v any) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected the robot's settings (key: value lines), got %s", node.Line, yamlKind(node))
	}
	known := yamlKeys(reflect.TypeOf(v).Elem())
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i]; !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: %q is not a key of this robot type (%s)", k.Line, k.Value, strings.Join(known, ", "))
		}
	}
	if err := node.Decode(v); err != nil {
		return errors.New(yamlError(err))
	}
	return nil
}

// yamlKeys lists the YAML keys of a struct type, inlined structs included.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "" && name != "-":
			keys = append(keys, name)
		}
	}
	return keys
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// oneOf returns a value given inline or through a file, not both.
func oneOf(field, inline, file string) (string, error) {
	if inline != "" && file != "" {
		return "", fmt.Errorf("%s and %s_file are both set: use one", field, field)
	}
	if file == "" {
		return strings.TrimSpace(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", field, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkRoute validates a route of the routes file against the robots
// configured.
func (c *Config) checkRoute(rt route.Route, robotNames map[string]bool) error {
	if !nameRE.MatchString(rt.Name) {
		return errors.New("names may contain letters, digits, '.', '_' and '-' (they appear in webhook URLs)")
	}
	if len(rt.Robots) == 0 {
		return errors.New("no robots")
	}
	for _, r := range rt.Robots {
		if !robotNames[r] {
			return fmt.Errorf("unknown robot %q", r)
		}
	}
	if m := rt.Match; m != nil {
		for _, f := range []struct {
			field string
			globs []string
		}{{"match.projects", m.Projects}, {"match.environments", m.Environments}, {"match.levels", m.Levels}, {"match.resources", m.Resources}} {
			if err := validGlobs(f.field, f.globs); err != nil {
				return err
			}
		}
	}
	m := rt.Mentions
	if err := validGlobs("mentions.levels", m.Levels); err != nil {
		return err
	}
	for _, mob := range m.Mobiles {
		if !formatter.ValidMobile(mob) {
			return fmt.Errorf("mentions.mobiles: %q is not a mobile number DingTalk can ping: %s", mob, formatter.MobileRule)
		}
	}
	for _, id := range m.UserIDs {
		if !formatter.ValidUserID(id) {
			return fmt.Errorf("mentions.user_ids: %q is not a DingTalk user id", id)
		}
	}
	if err := validType(rt.Type); err != nil {
		return err
	}
	mentions := len(m.Mobiles) > 0 || len(m.UserIDs) > 0 || m.All
	for _, name := range rt.Robots {
		r, _ := c.Receiver(name)
		t := rt.Type
		if t == "" && r.DingTalk != nil {
			t = r.DingTalk.MsgType
		}
		if mentions && t == formatter.TypeActionCard {
			return fmt.Errorf("robot %q sends actionCard messages, which cannot @-mention anyone: remove the mentions or use msgtype markdown", name)
		}
	}
	return nil
}

func validType(t string) error {
	if t != "" && t != formatter.TypeMarkdown && t != formatter.TypeActionCard {
		return fmt.Errorf("msgtype %q: use markdown or actionCard", t)
	}
	return nil
}

func validGlobs(field string, globs []string) error {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("%s: bad glob %q", field, g)
		}
	}
	return nil
}

var yamlTypes = strings.NewReplacer(
	"not found in type config.routesFile", "is not a known key (robots, routes)",
	"not found in type route.Route", "is not a route key (name, match, robots, mentions, msgtype, continue)",
	"not found in type route.Match", "is not a match key (projects, environments, levels, resources)",
	"not found in type route.Mentions", "is not a mentions key (mobiles, user_ids, levels, all)",
)

// yamlJargon turns the YAML parser's words into what to do.
var yamlJargon = []struct{ re, say string }{
	{`mapping values are not allowed in this context`, "a ':' where YAML expects none: quote a value that contains ': ' (\"a: b\"), or fix the indentation"},
	{`did not find expected key`, "the indentation is off: the keys of one block must line up, and list items start with '- '"},
	{`did not find expected '-' indicator`, "a list item is not lined up with the others (each starts with '- ' at the same column)"},
	{`found character that cannot start any token`, "a character YAML cannot start a value with: a tab used to indent (YAML indents with spaces), or a value that needs quotes"},
	{`found a tab character that violates indentation`, "a tab used to indent: YAML indents with spaces"},
	{`could not find expected ':'`, "a key without ':' after it"},
	{`found unexpected end of stream`, "the file ends inside a quoted value or a bracket: close it"},
	{`did not find expected node content`, "a value is missing (a '-' or ':' with nothing after it?)"},
	{`cannot unmarshal !!str ` + "`" + `([^` + "`" + `]*)` + "`" + ` into \[\]string`, "expected a list ([a, b], or lines starting with '- '), got $1"},
	{`cannot unmarshal !!seq into (string|bool)`, "expected a single value, got a list"},
	{`cannot unmarshal !!map into (string|bool|\[\]string)`, "expected a value or a list, got key: value lines"},
	{`cannot unmarshal !!str ` + "`" + `([^` + "`" + `]*)` + "`" + ` into bool`, "expected true or false, got $1"},
	{`cannot unmarshal !!(\w+) ` + "`" + `?([^` + "`" + `]*)` + "`" + `? into [\w.\[\]]+`, "this key's value has the wrong form ($2)"},
}

var yamlJargonRE = func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(yamlJargon))
	for i, j := range yamlJargon {
		out[i] = regexp.MustCompile(j.re)
	}
	return out
}()

// yamlError turns the decoder's errors into "line N: ..." lines in plain
// words.
func yamlError(err error) string {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		m = yamlTypes.Replace(m)
		for j, re := range yamlJargonRE {
			m = re.ReplaceAllString(m, yamlJargon[j].say)
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}
