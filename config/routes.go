package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// routesFile is the YAML routes file (RELAY_ROUTES_FILE). Unknown keys are
// errors, so a typo cannot silently drop a rule.
type routesFile struct {
	Robots map[string]robotEntry `yaml:"robots"`
	Routes []routeEntry          `yaml:"routes"`
}

type robotEntry struct {
	Token      string `yaml:"token"`
	TokenFile  string `yaml:"token_file"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	Keyword    string `yaml:"keyword"`
	MsgType    string `yaml:"msgtype"`
}

type routeEntry struct {
	Name     string        `yaml:"name"`
	Match    *matchEntry   `yaml:"match"`
	Robots   []string      `yaml:"robots"`
	Mentions mentionsEntry `yaml:"mentions"`
	MsgType  string        `yaml:"msgtype"`
	Continue bool          `yaml:"continue"`
}

type matchEntry struct {
	Projects     []string `yaml:"projects"`
	Environments []string `yaml:"environments"`
	Levels       []string `yaml:"levels"`
	Resources    []string `yaml:"resources"`
}

type mentionsEntry struct {
	Mobiles []string `yaml:"mobiles"`
	UserIDs []string `yaml:"user_ids"`
	Levels  []string `yaml:"levels"`
	All     bool     `yaml:"all"`
}

// nameRE is what robot and route names may contain: route names appear in
// webhook URLs (/sentry/webhook/{route}).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// loadRoutes reads RELAY_ROUTES_FILE: its robots join those of
// DINGTALK_TOKENS, and its routes replace the implicit default route.
func (c *Config) loadRoutes() error {
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
	names := map[string]bool{}
	for _, r := range c.Robots {
		names[r.Name] = true
	}
	tokens := map[string]string{}
	for _, r := range c.Robots {
		tokens[r.Token] = r.Name
	}
	var robotNames []string
	for name := range rf.Robots {
		robotNames = append(robotNames, name)
	}
	slices.Sort(robotNames)
	for _, name := range robotNames {
		e := rf.Robots[name]
		r, err := e.robot(name, c.APIURL)
		if err != nil {
			return fail("robot %q: %v", name, err)
		}
		if !nameRE.MatchString(name) {
			return fail("robot %q: names may contain letters, digits, '.', '_' and '-'", name)
		}
		if names[name] {
			return fail("robot %q: the name is taken by a robot of DINGTALK_TOKENS", name)
		}
		if other, dup := tokens[r.Token]; dup {
			return fail("robot %q: same token as robot %q", name, other)
		}
		names[name], tokens[r.Token] = true, name
		c.Robots = append(c.Robots, r)
	}
	if len(rf.Routes) == 0 {
		return fail("no routes: add at least one (a route without match is a catch-all)")
	}
	seen := map[string]bool{}
	for i, e := range rf.Routes {
		if e.Name == "" {
			return fail("route %d has no name", i+1)
		}
		rt, err := e.route(names, c.Robots)
		if err != nil {
			return fail("route %q: %v", e.Name, err)
		}
		if seen[e.Name] {
			return fail("route %q is defined twice", e.Name)
		}
		seen[e.Name] = true
		c.Routes = append(c.Routes, rt)
	}
	return nil
}

func (e robotEntry) robot(name, apiURL string) (Robot, error) {
	token, err := oneOf("token", e.Token, e.TokenFile)
	if err != nil {
		return Robot{}, err
	}
	if token == "" {
		return Robot{}, errors.New("no token (token or token_file)")
	}
	secret, err := oneOf("secret", e.Secret, e.SecretFile)
	if err != nil {
		return Robot{}, err
	}
	tok, endpoint, err := ParseToken(token, apiURL)
	if err != nil {
		return Robot{}, fmt.Errorf("token: %w", err)
	}
	if secret != "" && secret != "-" {
		if err := ValidSecret(secret); err != nil {
			return Robot{}, fmt.Errorf("secret: %w", err)
		}
	} else {
		secret = ""
	}
	if err := validType(e.MsgType); err != nil {
		return Robot{}, err
	}
	return Robot{Name: name, Token: tok, URL: endpoint, Secret: secret, Keyword: strings.TrimSpace(e.Keyword), Type: e.MsgType}, nil
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

func (e routeEntry) route(robotNames map[string]bool, robots []Robot) (Route, error) {
	if !nameRE.MatchString(e.Name) {
		return Route{}, errors.New("names may contain letters, digits, '.', '_' and '-' (they appear in webhook URLs)")
	}
	rt := Route{Name: e.Name, Robots: e.Robots, Type: e.MsgType, Continue: e.Continue}
	if len(e.Robots) == 0 {
		return Route{}, errors.New("no robots")
	}
	for _, r := range e.Robots {
		if !robotNames[r] {
			return Route{}, fmt.Errorf("unknown robot %q", r)
		}
	}
	if e.Match != nil {
		rt.Match = &Match{Projects: e.Match.Projects, Environments: e.Match.Environments, Levels: e.Match.Levels, Resources: e.Match.Resources}
		for field, globs := range map[string][]string{
			"match.projects": e.Match.Projects, "match.environments": e.Match.Environments,
			"match.levels": e.Match.Levels, "match.resources": e.Match.Resources,
		} {
			if err := validGlobs(field, globs); err != nil {
				return Route{}, err
			}
		}
	}
	m := e.Mentions
	if err := validGlobs("mentions.levels", m.Levels); err != nil {
		return Route{}, err
	}
	for _, mob := range m.Mobiles {
		if !formatter.ValidMobile(mob) {
			return Route{}, fmt.Errorf("mentions.mobiles: %q is not a mobile number", mob)
		}
	}
	for _, id := range m.UserIDs {
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, " ,@") {
			return Route{}, fmt.Errorf("mentions.user_ids: %q is not a DingTalk user id", id)
		}
	}
	rt.Mentions = Mentions(m)
	if err := validType(e.MsgType); err != nil {
		return Route{}, err
	}
	mentions := len(m.Mobiles) > 0 || len(m.UserIDs) > 0 || m.All
	for _, name := range e.Robots {
		t := e.MsgType
		if t == "" {
			i := slices.IndexFunc(robots, func(r Robot) bool { return r.Name == name })
			t = robots[i].Type
		}
		if mentions && t == formatter.TypeActionCard {
			return Route{}, fmt.Errorf("robot %q sends actionCard messages, which cannot @-mention anyone: remove the mentions or use msgtype markdown", name)
		}
	}
	return rt, nil
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

var yamlKeys = strings.NewReplacer(
	"not found in type config.routesFile", "is not a known key (robots, routes)",
	"not found in type config.robotEntry", "is not a robot key (token, token_file, secret, secret_file, keyword, msgtype)",
	"not found in type config.routeEntry", "is not a route key (name, match, robots, mentions, msgtype, continue)",
	"not found in type config.matchEntry", "is not a match key (projects, environments, levels, resources)",
	"not found in type config.mentionsEntry", "is not a mentions key (mobiles, user_ids, levels, all)",
	"into config.", "into ",
)

// yamlError turns the decoder's errors into "line N: ..." lines.
func yamlError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = yamlKeys.Replace(m)
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
