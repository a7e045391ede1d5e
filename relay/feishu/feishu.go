// Package feishu delivers alerts to Feishu and Lark custom group bots: it
// renders cards and digests as interactive message cards, signs and sends
// them to the bot's webhook no faster than Feishu allows, and explains
// Feishu's answers (all of them HTTP 200 with a code): which failures are
// worth retrying, which need the operator, and what to do about each.
package feishu

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultRatePerMinute keeps a bot under Feishu's 100 messages a minute,
// with room for a retry or a `test` run.
const DefaultRatePerMinute = 90

// PacePerSecond is how many messages a second the receiver sends at most:
// it spaces its sends itself, under Feishu's 5 a second, so a burst of
// digests after an outage is not throttled.
const PacePerSecond = 4

// ThrottleWait is how long a bot rests after Feishu answered 11232: long
// enough for Feishu's per-minute count to clear.
const ThrottleWait = time.Minute

// Config is a Feishu or Lark bot's entry in the routes file
// (`type: feishu`).
type Config struct {
	// URL is the bot's webhook address,
	// https://open.feishu.cn/open-apis/bot/v2/hook/<token> (Lark:
	// https://open.larksuite.com/...).
	URL string `yaml:"url"`
	// URLFile is a file holding the URL (a mounted secret): the token in
	// it is what lets anyone post to the group.
	URLFile string `yaml:"url_file"`
	// Secret is the bot's signing secret (安全设置 → 签名校验), when it
	// signs.
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the secret.
	SecretFile string `yaml:"secret_file"`
	// Keyword is one of the bot's custom keywords (安全设置 → 自定义关键词),
	// when it has some: every card carries it as 【Keyword】 in its title.
	Keyword string `yaml:"keyword"`
}

// Options are what the relay gives every receiver.
type Options struct {
	// Name is the receiver's name in logs and metrics.
	Name string
	// Language of the labels: formatter.LangZH (default) or LangEN.
	Language string
	// Zone is the time zone of the times shown; nil means UTC.
	Zone *time.Location
	// HTTP is the client used; nil means notify.NewHTTPClient().
	HTTP *http.Client
	// Now is the clock signatures are made with; nil means time.Now.
	Now func() time.Time
}

// Receiver renders and sends messages for one Feishu bot.
type Receiver struct {
	name     string
	url      string // the webhook with its token: never logged
	token    string
	secret   string
	keyword  string
	language string
	zone     *time.Location
	http     *http.Client
	now      func() time.Time
	pace     *rate.Limiter
}

var _ notify.Receiver = (*Receiver)(nil)

// hookRE is the path of a v2 custom-bot webhook; the token Feishu issues
// is a UUID.
var hookRE = regexp.MustCompile(`^/open-apis/bot/v2/hook/([A-Za-z0-9_-]{8,128})$`)

// New validates cfg and returns the bot's receiver. Its errors name the
// field at fault and show at most the last 4 characters of a secret.
func New(cfg Config, opts Options) (*Receiver, error) {
	raw, err := oneOf("url", cfg.URL, "url_file", cfg.URLFile, true)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, errors.New("url: not a Feishu/Lark bot webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/<token>)")
	}
	m := hookRE.FindStringSubmatch(u.Path)
	switch {
	case strings.HasPrefix(u.Path, "/open-apis/bot/hook/"):
		return nil, errors.New("url: a v1 webhook, which sends only text: add a new custom bot to the group and use its v2 webhook URL (…/open-apis/bot/v2/hook/<token>)")
	case m == nil:
		return nil, errors.New("url: not a Feishu/Lark bot webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/<token>)")
	}
	secret, err := oneOf("secret", cfg.Secret, "secret_file", cfg.SecretFile, false)
	if err != nil {
		return nil, err
	}
	if secret != "" && strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("secret: %q is not a Feishu signing secret (it has spaces or control characters)", notify.Mask(secret))
	}
	if strings.ContainsFunc(cfg.Keyword, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, errors.New("keyword: must be one line of text")
	}
	hc := opts.HTTP
	if hc == nil {
		hc = notify.NewHTTPClient()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	name := opts.Name
	if name == "" {
		name = "feishu-" + notify.Mask(m[1])
	}
	return &Receiver{
		name: name, url: u.String(), token: m[1], secret: secret, keyword: strings.TrimSpace(cfg.Keyword),
		language: opts.Language, zone: opts.Zone, http: hc, now: now,
		pace: rate.NewLimiter(rate.Every(time.Second/PacePerSecond), 1),
	}, nil
}

// oneOf returns the value of a field given inline or in a file, not both.
func oneOf(field, value, fileField, file string, required bool) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s, %s: set one", field, fileField)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileField, err)
		}
		return strings.TrimSpace(string(b)), nil
	case value == "" && required:
		return "", fmt.Errorf("%s: required (the bot's webhook URL)", field)
	}
	return strings.TrimSpace(value), nil
}

// Identity is the bot's webhook token: what tells two bots apart. The
// relay hashes it into queue names; it is never logged.
func (r *Receiver) Identity() string { return "feishu:" + r.token }

// Sign computes Feishu's signature: base64 of HMAC-SHA256 keyed by
// "timestamp\nsecret" over an empty message. Unlike DingTalk's, the secret
// is part of the key and nothing is signed.
func Sign(secret string, timestamp int64) string {
	h := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// maxReply bounds how much of Feishu's answer is read.
const maxReply = 64 << 10

// reply is Feishu's answer to a send. Older answers carry StatusCode
// beside (or instead of) code.
type reply struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// Notify signs and sends msg to the bot, at most PacePerSecond a second.
// Custom bots cannot drop a repeated message, so key is not used. It
// returns nil once Feishu answered code 0, else a *notify.Error.
func (r *Receiver) Notify(ctx context.Context, msg notify.Message, _ string) error {
	m, ok := msg.(*Message)
	if !ok {
		return &notify.Error{Receiver: r.name, Verdict: notify.Rejected, Code: "wrong_message",
			Detail: fmt.Sprintf("%T is not a Feishu message", msg), Hint: "a message rendered for another receiver was sent to this Feishu bot: report this as a bug"}
	}
	if err := r.pace.Wait(ctx); err != nil {
		return fmt.Errorf("feishu %s: wait for a send slot: %w", r.name, err)
	}
	var ts, sign string
	if r.secret != "" {
		// A fresh signature per request: Feishu refuses one over an hour old.
		now := r.now().Unix()
		ts, sign = strconv.FormatInt(now, 10), Sign(r.secret, now)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(m.body(ts, sign)))
	if err != nil {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "request", Err: r.redact(err),
			Hint: "the webhook URL is unusable: check url of receiver " + r.name}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "sentry-dingtalk-relay")
	resp, err := r.http.Do(req)
	if err != nil {
		return &notify.Error{Receiver: r.name, Verdict: notify.Retry, Code: "network", Err: r.redact(err), Hint: notify.NetworkHint(err, service)}
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	var rep reply
	if json.Unmarshal(raw, &rep) == nil {
		code, text := rep.Code, rep.Msg
		if code == nil {
			code, text = rep.StatusCode, rep.StatusMessage
		}
		if code != nil {
			if *code == 0 {
				return nil
			}
			return r.codeError(*code, text)
		}
	}
	return r.statusError(resp.StatusCode, raw, readErr)
}

// secrets are what must never leave the receiver in an error.
func (r *Receiver) secrets() []string { return []string{r.token, r.secret} }

// redact removes the token from a network error, keeping what it wraps
// (timeouts, resets) for whoever inspects it.
func (r *Receiver) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: notify.Scrub(ue.URL, r.secrets()...), Err: ue.Err}
	}
	return notify.ScrubError(err, r.secrets()...)
}
