// Package wecom delivers alerts to WeCom (企业微信) group robots: it renders
// cards and digests in WeCom's markdown (or plain text when someone must be
// pinged by mobile), sends them to the robot's webhook, and explains
// WeCom's answers: which failures are worth retrying, which need the
// operator, and what to do about each.
package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultURL is WeCom's robot send endpoint.
const DefaultURL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

// DefaultRatePerMinute keeps a robot under WeCom's 20 messages a minute,
// which counts failed sends too, with room for a retry or a `test` run.
const DefaultRatePerMinute = 18

// ThrottleWait is how long a robot rests after WeCom answered 45009: WeCom
// counts sends per minute, so a full minute always clears the count.
const ThrottleWait = time.Minute

// Config is a WeCom robot's entry in the routes file (`type: wecom`). Give
// the robot's webhook URL, or its key alone (or from a file).
type Config struct {
	// URL is the webhook address WeCom shows for the robot,
	// https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=….
	URL string `yaml:"url"`
	// Key is the robot's webhook key, the key parameter of its URL.
	Key string `yaml:"key"`
	// KeyFile is a file holding the key (a mounted secret).
	KeyFile string `yaml:"key_file"`
	// APIURL replaces the send endpoint (without the key): tests, a
	// private WeCom deployment, a gateway.
	APIURL string `yaml:"api_url"`
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
	// Now is the relay's clock. WeCom's requests carry no time, so the
	// receiver does not read it; it is here so every receiver takes the
	// same options.
	Now func() time.Time
}

// Receiver renders and sends messages for one WeCom robot.
type Receiver struct {
	name     string
	key      string
	send     string // the endpoint with the key: never logged
	language string
	zone     *time.Location
	http     *http.Client
}

var _ notify.Receiver = (*Receiver)(nil)

// keyRE is what a webhook key looks like: WeCom issues UUIDs; the check
// only keeps out what would break the URL or reveals a pasting mistake.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

// sendPath is the path of WeCom's send endpoint.
const sendPath = "/cgi-bin/webhook/send"

// New validates cfg and returns the robot's receiver. Its errors name the
// field at fault and show at most the last 4 characters of the key.
func New(cfg Config, opts Options) (*Receiver, error) {
	key, endpoint, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("key: %q is not a WeCom webhook key (the key=… part of the robot's webhook URL)", notify.Mask(key))
	}
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("api_url: not an http(s) URL without query (such as %s)", DefaultURL)
		}
		endpoint = u
	}
	q := endpoint.Query()
	q.Set("key", key)
	send := *endpoint
	send.RawQuery = q.Encode()
	hc := opts.HTTP
	if hc == nil {
		hc = notify.NewHTTPClient()
	}
	name := opts.Name
	if name == "" {
		name = "wecom-" + notify.Mask(key)
	}
	return &Receiver{name: name, key: key, send: send.String(), language: opts.Language, zone: opts.Zone, http: hc}, nil
}

// resolve finds the key and the endpoint of cfg, from exactly one of url,
// key and key_file.
func resolve(cfg Config) (string, *url.URL, error) {
	set := 0
	for _, s := range []string{cfg.URL, cfg.Key, cfg.KeyFile} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return "", nil, fmt.Errorf("url, key, key_file: set exactly one (the robot's webhook URL, or its key)")
	}
	def, _ := url.Parse(DefaultURL)
	switch {
	case cfg.Key != "":
		return strings.TrimSpace(cfg.Key), def, nil
	case cfg.KeyFile != "":
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return "", nil, fmt.Errorf("key_file: %w", err)
		}
		return strings.TrimSpace(string(b)), def, nil
	}
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != sendPath || u.Query().Get("key") == "" {
		return "", nil, fmt.Errorf("url: not a WeCom webhook URL (%s?key=…)", DefaultURL)
	}
	key := u.Query().Get("key")
	u.RawQuery = ""
	return key, u, nil
}

// Identity is the robot's key: what tells two robots apart. The relay
// hashes it into queue names; it is never logged.
func (r *Receiver) Identity() string { return "wecom:" + r.key }

// redact removes the key from a network error, keeping what it wraps
// (timeouts, resets) for whoever inspects it.
func (r *Receiver) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: notify.Scrub(ue.URL, r.key), Err: ue.Err}
	}
	return notify.ScrubError(err, r.key)
}

// maxReply bounds how much of WeCom's answer is read.
const maxReply = 64 << 10

// reply is WeCom's answer to a send.
type reply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Notify sends msg to the robot. WeCom robots cannot drop a repeated
// message, so key is not used. It returns nil once WeCom answered errcode
// 0, else a *notify.Error.
func (r *Receiver) Notify(ctx context.Context, msg notify.Message, _ string) error {
	m, ok := msg.(*Message)
	if !ok {
		return &notify.Error{Receiver: r.name, Verdict: notify.Rejected, Code: "wrong_message",
			Detail: fmt.Sprintf("%T is not a WeCom message", msg), Hint: "a message rendered for another receiver was sent to this WeCom robot: report this as a bug"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.send, bytes.NewReader(m.JSON()))
	if err != nil {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "request", Err: notify.ScrubError(err, r.key),
			Hint: "the send URL is unusable: check api_url of receiver " + r.name}
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
	if json.Unmarshal(raw, &rep) == nil && rep.ErrCode != nil {
		if *rep.ErrCode == 0 {
			return nil
		}
		return r.codeError(*rep.ErrCode, rep.ErrMsg)
	}
	return r.statusError(resp.StatusCode, raw, readErr)
}
