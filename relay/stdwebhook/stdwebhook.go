// Package stdwebhook posts alerts as JSON to an HTTP endpoint of the
// operator's choosing, signed per Standard Webhooks 1.0
// (https://www.standardwebhooks.com), so any service that verifies those
// signatures can take Sentry alerts from the relay.
//
// Every request carries a Payload. The headers are
//
//	webhook-id:        the message's notify key, the same on every retry,
//	                   so the endpoint can drop a repeat
//	webhook-timestamp: Unix seconds of this attempt
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// where key is the base64-decoded part of the whsec_ secret.
package stdwebhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultRatePerMinute is the rate the relay keeps a webhook receiver under
// when its entry sets no rate_per_minute.
const DefaultRatePerMinute = 60

// MaxRatePerMinute bounds rate_per_minute: above it a typo would let an
// alert storm through to the endpoint unthrottled.
const MaxRatePerMinute = 6000

// MaxBodyBytes is the largest body the receiver sends. It stays under the
// 1 MiB that common front ends (nginx's client_max_body_size) accept by
// default; a digest carries as many alerts as fit.
const MaxBodyBytes = 512 << 10

// SecretPrefix starts a Standard Webhooks secret.
const SecretPrefix = "whsec_"

// Key sizes Standard Webhooks allows.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
)

// Config is a webhook receiver's entry in the routes file (`type: webhook`).
type Config struct {
	// URL is the endpoint, http or https. Its path and query are treated as
	// secrets: many endpoints carry a token there.
	URL string `yaml:"url"`
	// Secret is the signing secret, whsec_ and the base64 of 24 to 64
	// random bytes; SecretFile names a file holding it instead.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// RatePerMinute is how many requests a minute the endpoint gets at
	// most; 0 means DefaultRatePerMinute.
	RatePerMinute int `yaml:"rate_per_minute"`
}

// Options are what the relay gives every receiver.
type Options struct {
	// Name is the receiver's name in logs and metrics.
	Name string
	// Language is formatter.LangZH or LangEN: it chooses the words of the
	// titles logs show.
	Language string
	// Zone is the time zone of the times in the payload (RFC 3339, so
	// with their offset); nil means UTC.
	Zone *time.Location
	// HTTP is the client requests go through; nil means notify.NewHTTPClient().
	HTTP *http.Client
	// Now is the clock of the signatures; nil means time.Now.
	Now func() time.Time
}

// Receiver posts signed alerts to one endpoint.
type Receiver struct {
	name     string
	lang     string
	zone     *time.Location
	endpoint string
	key      []byte
	secrets  []string
	rate     int
	http     *http.Client
	now      func() time.Time
}

// New validates cfg and returns its receiver. Errors name the field at fault
// and show at most the last 4 characters of a secret.
func New(cfg Config, opts Options) (*Receiver, error) {
	endpoint, err := validURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	secret, err := secretOf(cfg)
	if err != nil {
		return nil, err
	}
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	rate := cfg.RatePerMinute
	switch {
	case rate == 0:
		rate = DefaultRatePerMinute
	case rate < 0 || rate > MaxRatePerMinute:
		return nil, fmt.Errorf("rate_per_minute: %d is not between 1 and %d", rate, MaxRatePerMinute)
	}
	r := &Receiver{
		name: opts.Name, lang: opts.Language, zone: opts.Zone, endpoint: endpoint.String(),
		key: key, rate: rate, http: opts.HTTP, now: opts.Now,
		secrets: urlSecrets(endpoint, secret, strings.TrimPrefix(secret, SecretPrefix)),
	}
	if r.zone == nil {
		r.zone = time.UTC
	}
	if r.http == nil {
		r.http = notify.NewHTTPClient()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

func secretOf(cfg Config) (string, error) {
	switch {
	case cfg.Secret != "" && cfg.SecretFile != "":
		return "", errors.New("secret and secret_file are both set: use one")
	case cfg.SecretFile != "":
		b, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return "", fmt.Errorf("secret_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case strings.TrimSpace(cfg.Secret) == "":
		return "", errors.New("secret: missing: a webhook receiver signs every request (whsec_ and base64, e.g. \"whsec_$(openssl rand -base64 32)\")")
	}
	return strings.TrimSpace(cfg.Secret), nil
}

// ParseSecret decodes a Standard Webhooks secret, whsec_ and the base64 of
// the key; the prefix may be left out. The key must be 24 to 64 bytes.
func ParseSecret(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(secret, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// The decoder's error names the offending byte's offset only.
		return nil, fmt.Errorf("%s is not whsec_ followed by standard base64 (generate one with: echo whsec_$(openssl rand -base64 32))", notify.Mask(secret))
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%s decodes to %d bytes, Standard Webhooks keys have %d to %d (generate one with: echo whsec_$(openssl rand -base64 32))", notify.Mask(secret), len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

func validURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("missing: the endpoint to post alerts to (https://…)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		// url.Parse's error quotes the URL, which may hold a token.
		return nil, errors.New("not an absolute http(s) URL")
	}
	if u.Fragment != "" {
		return nil, errors.New("has a #fragment, which is never sent: remove it")
	}
	return u, nil
}

// minSegment is the length from which a URL path segment is taken for a
// token; shorter ones are words such as "hooks" that masking would mangle.
const minSegment = 12

// urlSecrets lists what of the endpoint and the secret must never be shown:
// its password, query and token-like path segments. Errors show the URL
// through RedactURL, so its scheme and host stay readable.
func urlSecrets(u *url.URL, extra ...string) []string {
	out := append([]string{u.RawQuery}, extra...)
	if p, ok := u.User.Password(); ok {
		out = append(out, p)
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= minSegment {
			out = append(out, seg)
		}
	}
	return out
}

// Identity is the endpoint URL: the relay hashes it into the queue key, so
// a new secret for the same endpoint keeps the alerts waiting for it. It
// holds secrets: never log it.
func (r *Receiver) Identity() string { return "webhook\x00" + r.endpoint }

// Endpoint is the endpoint's URL fit for logs: scheme and host, the path
// and query hidden.
func (r *Receiver) Endpoint() string { return RedactURL(r.endpoint) }

// RatePerMinute is the rate the relay keeps this receiver under.
func (r *Receiver) RatePerMinute() int { return r.rate }

// String shows the receiver without its secrets, so printing one by
// mistake leaks nothing.
func (r *Receiver) String() string { return "webhook " + r.name + " " + r.Endpoint() }

// GoString is String for %#v, which would otherwise print the key.
func (r *Receiver) GoString() string { return r.String() }

// LogValue is String for log/slog.
func (r *Receiver) LogValue() slog.Value { return slog.StringValue(r.String()) }

// RedactURL keeps the scheme and host of raw and hides the rest.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	out := u.Scheme + "://" + u.Host
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Sign is the Standard Webhooks v1 signature of one attempt: id, Unix
// seconds and the exact body, keyed by the decoded secret.
func Sign(key []byte, id string, ts int64, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// idRE is what a webhook-id may be as it is: a notify key is hex and
// hyphens, and anything else is hashed so a header cannot be broken.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// MessageID is the webhook-id of the message with the given notify key:
// the key itself when it is header-safe, else a hash of it; a missing key
// gives a hash of the body, so a retry of the same body keeps its id.
func MessageID(key string, body []byte) string {
	if idRE.MatchString(key) {
		return key
	}
	src := []byte(key)
	if key == "" {
		src = body
	}
	sum := sha256.Sum256(src)
	return "msg_" + hex.EncodeToString(sum[:16])
}

// maxReply bounds how much of the endpoint's answer is read.
const maxReply = 64 << 10

// detailRunes bounds what of the endpoint's answer goes into an Error.
const detailRunes = 300

// maxWait bounds a Retry-After: a hostile or broken endpoint cannot park
// the receiver for days.
const maxWait = time.Hour

// Notify posts msg with a fresh timestamp and signature.
func (r *Receiver) Notify(ctx context.Context, msg notify.Message, key string) error {
	m, ok := msg.(*Message)
	if !ok {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "wrong_message",
			Detail: fmt.Sprintf("%T is not a webhook message", msg), Hint: "a bug in the relay: report it"}
	}
	id := MessageID(key, m.body)
	ts := r.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(m.body))
	if err != nil {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "request",
			Err: notify.ScrubError(err, r.secrets...), Hint: "check url in the routes file"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sentry-dingtalk-relay")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(r.key, id, ts, m.body))
	resp, err := r.http.Do(req)
	if err != nil {
		return r.networkError(err)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := r.statusError(resp, raw)
	if readErr != nil && e.Detail == "" {
		e.Err = fmt.Errorf("read reply: %w", notify.ScrubError(readErr, r.secrets...))
	}
	return e
}

// statusError explains a non-2xx answer; the verdict comes from the status
// alone, never from the body's wording.
func (r *Receiver) statusError(resp *http.Response, body []byte) *notify.Error {
	status := resp.StatusCode
	e := &notify.Error{Receiver: r.name, Code: "http_" + strconv.Itoa(status), Detail: r.detail(body)}
	e.Verdict, e.Hint = Classify(status)
	switch {
	case status == http.StatusTooManyRequests:
		e.Wait = RetryAfter(resp.Header.Get("Retry-After"), r.now())
	case status >= 300 && status < 400:
		if loc := resp.Header.Get("Location"); loc != "" {
			e.Detail = "redirect to " + RedactURL(resolve(resp.Request.URL, loc))
		}
	}
	return e
}

func resolve(base *url.URL, loc string) string {
	u, err := base.Parse(loc)
	if err != nil {
		return loc
	}
	return u.String()
}

// detail is an answer's body fit for an Error: scrubbed of the receiver's
// secrets, one line, bounded.
func (r *Receiver) detail(body []byte) string {
	text := notify.Scrub(strings.ToValidUTF8(string(body), "\uFFFD"), r.secrets...)
	return formatter.Shorten(formatter.PlainLine(text), detailRunes)
}

// Classify is what an HTTP status means for the alerts sent, and what the
// operator can do about it.
func Classify(status int) (notify.Verdict, string) {
	switch {
	case status == http.StatusTooManyRequests:
		return notify.Throttled, "the endpoint throttles the relay (429): alerts wait and go out as a digest; lower rate_per_minute under the endpoint's limit"
	case status >= 500:
		return notify.Retry, fmt.Sprintf("the endpoint failed (HTTP %d): a running relay retries it by itself; if it persists check the endpoint's logs", status)
	case status == http.StatusRequestTimeout:
		return notify.Retry, "the endpoint timed out reading the request (408): a running relay retries it by itself"
	case status >= 300 && status < 400:
		return notify.Refused, "the URL redirects, and redirects are not followed (they would carry the signed alert elsewhere): put the final URL in url"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return notify.Refused, "the endpoint refused the signature or the credentials: check that secret is the endpoint's signing secret (whsec_…), and this machine's clock (endpoints allow 5 minutes of skew)"
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusGone:
		return notify.Refused, fmt.Sprintf("nothing takes POST requests at this URL (HTTP %d): check url in the routes file", status)
	case status == http.StatusRequestEntityTooLarge:
		return notify.Content, "the endpoint refused the body as too large (413): a minimal alert is sent instead; raise the endpoint's body limit for full alerts"
	case status >= 400 && status < 500:
		return notify.Rejected, fmt.Sprintf("the endpoint refused these alerts (HTTP %d): they become dead letters; fix what the detail says, then replay them", status)
	}
	return notify.Retry, fmt.Sprintf("unexpected HTTP %d: a running relay retries it by itself", status)
}

// RetryAfter reads a Retry-After header, delay-seconds or an HTTP date, as
// a wait from now; 0 when absent, unreadable or past, at most an hour.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	secs, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err == nil && secs <= uint64(maxWait/time.Second):
		d = time.Duration(secs) * time.Second
	case err == nil || errors.Is(err, strconv.ErrRange):
		return maxWait
	default:
		if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return min(max(d, 0), maxWait)
}
