// Package config reads the relay's configuration from the environment and
// the optional routes file, and validates it: bad configuration stops
// start-up with one line naming the variable (and line) at fault. Secrets
// never appear in its errors beyond their last 4 characters. It decodes
// into the types of the packages that use them (dingtalk.Robot,
// route.Route), as Alertmanager's config decodes into its receivers.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/getsentry/sentry-go"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/email"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/feishu"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/route"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/stdwebhook"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/wecom"
)

// Env is the relay's environment. Every secret can also come from a file
// named by the variable with _FILE appended.
type Env struct {
	Tokens           string `env:"DINGTALK_TOKENS"`
	TokensFile       string `env:"DINGTALK_TOKENS_FILE,file"`
	Secrets          string `env:"DINGTALK_SECRETS"`
	SecretsFile      string `env:"DINGTALK_SECRETS_FILE,file"`
	Keyword          string `env:"DINGTALK_KEYWORD"`
	AtMobiles        string `env:"DINGTALK_AT_MOBILES"`
	AtAll            bool   `env:"DINGTALK_AT_ALL" envDefault:"false"`
	APIURL           string `env:"DINGTALK_API_URL" envDefault:"https://oapi.dingtalk.com/robot/send"`
	ClientSecret     string `env:"SENTRY_CLIENT_SECRET"`
	ClientSecretFile string `env:"SENTRY_CLIENT_SECRET_FILE,file"`
	SentryURL        string `env:"SENTRY_URL"`
	WebhookToken     string `env:"RELAY_WEBHOOK_TOKEN"`
	WebhookTokenFile string `env:"RELAY_WEBHOOK_TOKEN_FILE,file"`

	Addr            string        `env:"RELAY_ADDR" envDefault:":8080"`
	DataDir         string        `env:"RELAY_DATA_DIR" envDefault:"./data"`
	RatePerMinute   int           `env:"RELAY_RATE_PER_MINUTE" envDefault:"18"`
	MaxBodyBytes    int64         `env:"RELAY_MAX_BODY_BYTES" envDefault:"10485760"`
	Language        string        `env:"RELAY_LANGUAGE" envDefault:"zh-CN"`
	RoutesFile      string        `env:"RELAY_ROUTES_FILE"`
	TemplateFile    string        `env:"RELAY_TEMPLATE_FILE"`
	Timezone        string        `env:"RELAY_TIMEZONE" envDefault:"Asia/Shanghai"`
	MaxAge          time.Duration `env:"RELAY_MAX_AGE" envDefault:"24h"`
	DedupeWindow    time.Duration `env:"RELAY_DEDUPE_WINDOW" envDefault:"30m"`
	ShutdownTimeout time.Duration `env:"RELAY_SHUTDOWN_TIMEOUT" envDefault:"15s"`
	FallbackAfter   time.Duration `env:"RELAY_FALLBACK_AFTER" envDefault:"10m"`

	RedisURL     string `env:"RELAY_REDIS_URL"`
	RedisURLFile string `env:"RELAY_REDIS_URL_FILE,file"`

	SMTPURL     string `env:"RELAY_SMTP_URL"`
	SMTPURLFile string `env:"RELAY_SMTP_URL_FILE,file"`
	SMTPFrom    string `env:"RELAY_SMTP_FROM"`
	// SMTP is RELAY_SMTP_URL parsed, with RELAY_SMTP_FROM.
	SMTP email.SMTP `env:"-"`

	PublicURL     string        `env:"RELAY_PUBLIC_URL"`
	AuthToken     string        `env:"SENTRY_AUTH_TOKEN"`
	AuthTokenFile string        `env:"SENTRY_AUTH_TOKEN_FILE,file"`
	ActionKey     string        `env:"RELAY_ACTION_KEY"`
	ActionKeyFile string        `env:"RELAY_ACTION_KEY_FILE,file"`
	ActionTTL     time.Duration `env:"RELAY_ACTION_TTL" envDefault:"168h"`

	CanaryDSN      string        `env:"RELAY_CANARY_DSN"`
	CanaryInterval time.Duration `env:"RELAY_CANARY_INTERVAL" envDefault:"6h"`
	CanaryTimeout  time.Duration `env:"RELAY_CANARY_TIMEOUT" envDefault:"15m"`
	QuietAlert     time.Duration `env:"RELAY_QUIET_ALERT"`

	SentryDSN string `env:"SENTRY_DSN"`
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

// Config is the validated configuration.
type Config struct {
	Env
	// Robots are the receivers: those of DINGTALK_TOKENS (robot-1,
	// robot-2...) then those of the routes file.
	Robots []Receiver
	// Routes are the routes of the routes file (with the robots of
	// DINGTALK_TOKENS as the catch-all when the file has none), or the
	// implicit "default" route to every robot of DINGTALK_TOKENS with
	// DINGTALK_AT_MOBILES. Routes name robots; route.Resolve turns the
	// names into queue keys.
	Routes []route.Route
	// ClientSecrets are the lines of SENTRY_CLIENT_SECRET: one per Sentry
	// integration that sends to this relay.
	ClientSecrets []string
	// Zone is RELAY_TIMEZONE loaded.
	Zone *time.Location
	// Warnings are what start-up should tell about a configuration that is
	// valid but probably not what was meant.
	Warnings []string
}

// Receiver types.
const (
	TypeDingTalk = "dingtalk"
	TypeWeCom    = "wecom"
	TypeFeishu   = "feishu"
	TypeWebhook  = "webhook"
	TypeEmail    = "email"
)

// Receiver is a configured receiver: its name, type and the configuration
// of its type's package.
type Receiver struct {
	// Name is robot-N for line N of DINGTALK_TOKENS, the routes file's
	// name otherwise.
	Name string
	Type string
	// DingTalk is set for Type dingtalk; the other types' configuration
	// (their package builds the receiver from it) in the field of the type.
	DingTalk *dingtalk.Robot
	WeCom    *wecom.Config
	Feishu   *feishu.Config
	Webhook  *stdwebhook.Config
	Email    *email.Config
	// Fallback names the receivers that also get this one's alerts when
	// it cannot deliver them.
	Fallback []string
}

// Load reads and validates the configuration from environ (as os.Environ
// returns it).
func Load(environ []string) (*Config, error) {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	for _, name := range []string{"DINGTALK_TOKENS", "DINGTALK_SECRETS", "SENTRY_CLIENT_SECRET", "RELAY_WEBHOOK_TOKEN", "RELAY_REDIS_URL", "SENTRY_AUTH_TOKEN", "RELAY_ACTION_KEY", "RELAY_SMTP_URL"} {
		if vars[name] != "" && vars[name+"_FILE"] != "" {
			return nil, fmt.Errorf("%s and %s_FILE are both set: use one", name, name)
		}
	}
	var e Env
	if err := env.ParseWithOptions(&e, env.Options{Environment: vars}); err != nil {
		return nil, envError(err)
	}
	c := &Config{Env: e}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) validate() error {
	for _, p := range []struct{ value, alt *string }{
		{&c.Tokens, &c.TokensFile},
		{&c.Secrets, &c.SecretsFile},
		{&c.ClientSecret, &c.ClientSecretFile},
		{&c.WebhookToken, &c.WebhookTokenFile},
		{&c.RedisURL, &c.RedisURLFile},
		{&c.AuthToken, &c.AuthTokenFile},
		{&c.ActionKey, &c.ActionKeyFile},
		{&c.SMTPURL, &c.SMTPURLFile},
	} {
		if *p.alt != "" {
			*p.value = *p.alt
		}
		*p.value = strings.TrimSpace(*p.value)
	}
	if err := httpURL("DINGTALK_API_URL", c.APIURL, true); err != nil {
		return err
	}
	if err := httpURL("SENTRY_URL", c.SentryURL, false); err != nil {
		return err
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return errors.New("RELAY_REDIS_URL: not a redis:// or rediss:// URL (redis://[:password@]host:port[/db])")
		}
	}
	if err := validAddr(c.Addr); err != nil {
		return err
	}
	if err := c.validWatch(); err != nil {
		return err
	}
	if err := c.validActions(); err != nil {
		return err
	}
	switch {
	case c.SMTPURL != "" && strings.TrimSpace(c.SMTPFrom) == "":
		return errors.New("RELAY_SMTP_URL is set but RELAY_SMTP_FROM is not: mails need a From address (Sentry <alerts@example.com>)")
	case c.SMTPURL == "" && c.SMTPFrom != "":
		return errors.New("RELAY_SMTP_FROM is set but RELAY_SMTP_URL is not: set the mail server (smtp://user:pass@host:587 or smtps://…:465)")
	}
	if c.SMTPURL != "" {
		smtp, err := email.ParseSMTPURL(c.SMTPURL)
		if err != nil {
			return fmt.Errorf("RELAY_SMTP_URL: %w", err)
		}
		smtp.From = c.SMTPFrom
		c.SMTP = smtp
	}
	switch {
	case c.RatePerMinute < 1:
		return fmt.Errorf("RELAY_RATE_PER_MINUTE: %d must be at least 1", c.RatePerMinute)
	case c.RatePerMinute > 20:
		return fmt.Errorf("RELAY_RATE_PER_MINUTE: %d is above DingTalk's limit of 20 messages a minute, past which it blocks the robot for 10 minutes", c.RatePerMinute)
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("RELAY_MAX_BODY_BYTES: %d is too small for any Sentry webhook (at least 1024)", c.MaxBodyBytes)
	case c.Language != formatter.LangZH && c.Language != formatter.LangEN:
		return fmt.Errorf("RELAY_LANGUAGE: %q is not supported: use zh-CN or en", c.Language)
	case c.MaxAge < time.Minute:
		return fmt.Errorf("RELAY_MAX_AGE: %s is too short (at least 1m)", c.MaxAge)
	case c.DedupeWindow < 0:
		return fmt.Errorf("RELAY_DEDUPE_WINDOW: %s must not be negative", c.DedupeWindow)
	case c.ShutdownTimeout < time.Second:
		return fmt.Errorf("RELAY_SHUTDOWN_TIMEOUT: %s is too short (at least 1s)", c.ShutdownTimeout)
	case c.FallbackAfter < time.Second:
		return fmt.Errorf("RELAY_FALLBACK_AFTER: %s is too short (at least 1s)", c.FallbackAfter)
	case c.DataDir == "":
		return errors.New("RELAY_DATA_DIR must not be empty")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("LOG_FORMAT: %q is not json or text", c.LogFormat)
	}
	zone, err := time.LoadLocation(c.Timezone)
	if err != nil || c.Timezone == "" || strings.EqualFold(c.Timezone, "local") {
		return fmt.Errorf("RELAY_TIMEZONE: unknown time zone %q: use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC", c.Timezone)
	}
	c.Zone = zone
	if c.ClientSecret != "" {
		for i, s := range lines(c.ClientSecret) {
			if s == "" {
				return fmt.Errorf("SENTRY_CLIENT_SECRET line %d is empty: every line is the client secret of one Sentry integration", i+1)
			}
			if err := cleanValue(s); err != nil {
				return fmt.Errorf("SENTRY_CLIENT_SECRET line %d: %w", i+1, err)
			}
			c.ClientSecrets = append(c.ClientSecrets, s)
		}
	}
	robots, err := envRobots(c.Tokens, c.Secrets, c.APIURL, c.Keyword)
	if err != nil {
		return err
	}
	c.Robots = robots
	mobiles := route.SplitList(c.AtMobiles)
	for i, m := range mobiles {
		if !formatter.ValidMobile(m) {
			return fmt.Errorf("DINGTALK_AT_MOBILES entry %d: %q is not a mobile number DingTalk can ping: %s", i+1, m, formatter.MobileRule)
		}
	}
	envMentions := route.Mentions{Mobiles: mobiles, All: c.AtAll}
	if c.RoutesFile == "" {
		c.Routes = []route.Route{{Name: "default", Robots: c.names(), Mentions: envMentions}}
		return nil
	}
	return c.loadRoutes(envMentions)
}

// names are the names of the robots configured so far.
func (c *Config) names() []string {
	names := make([]string, len(c.Robots))
	for i, r := range c.Robots {
		names[i] = r.Name
	}
	return names
}

// envRobots pairs DINGTALK_TOKENS with DINGTALK_SECRETS line by line.
func envRobots(tokens, secrets, apiURL, keyword string) ([]Receiver, error) {
	if tokens == "" {
		if secrets != "" {
			return nil, errors.New("DINGTALK_SECRETS is set but DINGTALK_TOKENS is not: each secret belongs to the token on the same line")
		}
		return nil, nil
	}
	tl := lines(tokens)
	sl := lines(secrets)
	if secrets == "" {
		sl = nil
	}
	if len(sl) > len(tl) {
		return nil, fmt.Errorf("DINGTALK_SECRETS has %d lines but DINGTALK_TOKENS has %d: each secret belongs to the token on the same line (use - for a robot without one)", len(sl), len(tl))
	}
	var robots []Receiver
	seen := map[string]int{}
	for i, t := range tl {
		n := i + 1
		if t == "" {
			return nil, fmt.Errorf("DINGTALK_TOKENS line %d is empty: every line is one robot's token or webhook URL", n)
		}
		token, endpoint, err := ParseToken(t, apiURL)
		if err != nil {
			return nil, fmt.Errorf("DINGTALK_TOKENS line %d: %w", n, err)
		}
		if prev, dup := seen[token]; dup {
			return nil, fmt.Errorf("DINGTALK_TOKENS line %d: same robot as line %d", n, prev)
		}
		seen[token] = n
		r := &dingtalk.Robot{
			Name: "robot-" + strconv.Itoa(n), Token: token, URL: endpoint, Keyword: keyword,
			Where: fmt.Sprintf("DINGTALK_TOKENS line %d", n), SecretWhere: fmt.Sprintf("DINGTALK_SECRETS line %d", n),
		}
		if i < len(sl) && sl[i] != "-" && sl[i] != "" {
			if err := ValidSecret(sl[i]); err != nil {
				return nil, fmt.Errorf("DINGTALK_SECRETS line %d: %w", n, err)
			}
			r.Secret = sl[i]
		}
		robots = append(robots, Receiver{Name: r.Name, Type: TypeDingTalk, DingTalk: r})
	}
	return robots, nil
}

// lines splits a list given one per line; a single line may hold a
// comma-separated list instead.
func lines(s string) []string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if s == "" {
		return nil
	}
	var parts []string
	if strings.Contains(s, "\n") {
		parts = strings.Split(s, "\n")
	} else {
		parts = strings.Split(s, ",")
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// cleanValue explains the characters a pasted secret should not hold.
func cleanValue(s string) error {
	switch {
	case strings.HasPrefix(s, "\ufeff"):
		return errors.New("starts with a UTF-8 byte order mark (an editor saved the file with one): save it as plain UTF-8")
	case strings.ContainsRune(s, '\t'):
		return errors.New("contains a tab: paste the value alone")
	case strings.ContainsRune(s, ' '):
		return errors.New("contains a space: paste the value alone (one per line, or comma-separated)")
	case strings.ContainsAny(s, "\x00\r\v\f\u00a0\u200b"):
		return errors.New("contains an invisible character: paste the value again")
	}
	return nil
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

// ParseToken accepts a bare access token or a full robot webhook URL
// (https://oapi.dingtalk.com/robot/send?access_token=...) and returns the
// token and the send endpoint.
func ParseToken(s, apiURL string) (token, endpoint string, err error) {
	if err := cleanValue(s); err != nil {
		return "", "", err
	}
	if strings.Contains(s, "://") {
		u, perr := url.Parse(s)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", "", fmt.Errorf("%q is not a robot webhook URL", mask(s))
		}
		token = u.Query().Get("access_token")
		if token == "" {
			return "", "", errors.New("the webhook URL has no access_token")
		}
		if !tokenRE.MatchString(token) {
			return "", "", fmt.Errorf("access_token %q is not a DingTalk access token", mask(token))
		}
		u.RawQuery, u.Fragment = "", ""
		return token, u.String(), nil
	}
	if !tokenRE.MatchString(s) {
		return "", "", fmt.Errorf("%q is neither an access token nor a robot webhook URL", mask(s))
	}
	return s, apiURL, nil
}

var secretRE = regexp.MustCompile(`^SEC[A-Za-z0-9]{8,}$`)

// ValidSecret checks the form of a robot's SEC signing secret.
func ValidSecret(s string) error {
	if err := cleanValue(s); err != nil {
		return err
	}
	if !secretRE.MatchString(s) {
		return fmt.Errorf("%q is not a SEC secret (it starts with SEC; use - for a robot without one)", mask(s))
	}
	return nil
}

func httpURL(name, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s must not be empty", name)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", name, s)
	}
	return nil
}

// Actions reports whether cards carry action links.
func (c *Config) Actions() bool { return c.PublicURL != "" }

// validActions checks that action links are configured whole, or not at
// all.
func (c *Config) validActions() error {
	set := map[string]bool{"RELAY_PUBLIC_URL": c.PublicURL != "", "SENTRY_AUTH_TOKEN": c.AuthToken != "", "RELAY_ACTION_KEY": c.ActionKey != ""}
	var missing []string
	for _, name := range []string{"RELAY_PUBLIC_URL", "SENTRY_AUTH_TOKEN", "RELAY_ACTION_KEY"} {
		if !set[name] {
			missing = append(missing, name)
		}
	}
	switch {
	case len(missing) == 3:
		return nil
	case len(missing) > 0:
		return fmt.Errorf("action links need RELAY_PUBLIC_URL, SENTRY_AUTH_TOKEN and RELAY_ACTION_KEY together: %s is not set", strings.Join(missing, " and "))
	case c.ActionTTL < time.Second:
		return fmt.Errorf("RELAY_ACTION_TTL: %s is too short (at least 1s)", c.ActionTTL)
	case c.SentryURL == "" && c.ClientSecret == "":
		return errors.New("action links need SENTRY_URL when SENTRY_CLIENT_SECRET is not set: the relay calls Sentry with SENTRY_AUTH_TOKEN, and an unsigned webhook must not choose where to")
	}
	if err := httpURL("RELAY_PUBLIC_URL", c.PublicURL, true); err != nil {
		return err
	}
	if err := cleanValue(c.AuthToken); err != nil {
		return fmt.Errorf("SENTRY_AUTH_TOKEN: %w", err)
	}
	return nil
}

// validWatch checks the canary's and the quiet watch's settings.
func (c *Config) validWatch() error {
	if c.CanaryDSN != "" {
		if _, err := sentry.NewDsn(c.CanaryDSN); err != nil {
			return fmt.Errorf("RELAY_CANARY_DSN: not a Sentry DSN (https://<public key>@<host>/<project id>, from the project's Client Keys)")
		}
		switch {
		case c.CanaryInterval < time.Second:
			return fmt.Errorf("RELAY_CANARY_INTERVAL: %s is too short (at least 1s)", c.CanaryInterval)
		case c.CanaryTimeout < time.Second:
			return fmt.Errorf("RELAY_CANARY_TIMEOUT: %s is too short (at least 1s)", c.CanaryTimeout)
		case c.CanaryTimeout > c.CanaryInterval:
			return fmt.Errorf("RELAY_CANARY_TIMEOUT: %s is longer than RELAY_CANARY_INTERVAL (%s): a round trip must end before the next starts", c.CanaryTimeout, c.CanaryInterval)
		}
	}
	if c.QuietAlert < 0 || (c.QuietAlert > 0 && c.QuietAlert < time.Second) {
		return fmt.Errorf("RELAY_QUIET_ALERT: %s: use a duration of at least 1s (e.g. 6h), or leave it unset", c.QuietAlert)
	}
	return nil
}

// mask shows the last 4 characters of a secret value at most; a value that
// short cannot be a token or secret, so it is shown whole, which says more.
func mask(s string) string {
	if len(s) <= 4 {
		return s
	}
	return "…" + s[len(s)-4:]
}

// validAddr checks RELAY_ADDR's form: host:port, the host optional.
func validAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr == nil && n >= 0 && n <= 65535 {
			return nil
		}
	}
	if n, perr := strconv.Atoi(addr); perr == nil && n > 0 && n <= 65535 {
		return fmt.Errorf("RELAY_ADDR: %q is not host:port: did you mean :%d (all interfaces, port %d)?", addr, n, n)
	}
	return fmt.Errorf("RELAY_ADDR: %q is not host:port (e.g. :8080 or 127.0.0.1:8080)", addr)
}

// envError names the variable a parse error is about.
func envError(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		name := pe.Name
		var typ reflect.Type
		if f, ok := reflect.TypeFor[Env]().FieldByName(pe.Name); ok {
			name, _, _ = strings.Cut(f.Tag.Get("env"), ",")
			typ = f.Type
		}
		if typ == reflect.TypeFor[time.Duration]() {
			value := durationValue(pe.Err.Error())
			return fmt.Errorf("%s: %s is not a duration: use Go durations such as 24h, 30m or 90s (no days: 7 days is 168h)", name, value)
		}
		var ne *strconv.NumError
		if errors.As(pe.Err, &ne) {
			return fmt.Errorf("%s: %q is not a valid %s", name, ne.Num, pe.Type)
		}
		return fmt.Errorf("%s: %v", name, pe.Err)
	}
	var fe env.LoadFileContentError
	if errors.As(err, &fe) {
		// fe.Err names the file; file contents never appear in it.
		return fmt.Errorf("%s: %v", fe.Key, fe.Err)
	}
	return err
}

// durationValue picks the value out of time.ParseDuration's error: the
// last quoted part.
func durationValue(msg string) string {
	if q := quotedRE.FindAllString(msg, -1); len(q) > 0 {
		return q[len(q)-1]
	}
	return "the value"
}

var quotedRE = regexp.MustCompile(`"[^"]*"`)

// Receiver looks up a configured receiver by name.
func (c *Config) Receiver(name string) (Receiver, bool) {
	i := slices.IndexFunc(c.Robots, func(r Receiver) bool { return r.Name == name })
	if i < 0 {
		return Receiver{}, false
	}
	return c.Robots[i], true
}
