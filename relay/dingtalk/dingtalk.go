// Package dingtalk sends messages to DingTalk custom group robots and
// explains DingTalk's answers: which failures are worth retrying, which need
// the operator, and what to do about each.
package dingtalk

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
	"strconv"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultURL is DingTalk's robot send endpoint.
const DefaultURL = "https://oapi.dingtalk.com/robot/send"

// Robot is one DingTalk custom robot.
type Robot struct {
	// Name identifies the robot in logs and metrics: robot-1, robot-2... for
	// robots from DINGTALK_TOKENS, the routes file's name otherwise.
	Name string
	// Token is the robot's access_token.
	Token string
	// URL is the send endpoint, without query.
	URL string
	// Secret is the robot's SEC signing secret; empty when it does not sign.
	Secret string
	// Keyword is the robot's custom keyword ("" for none): every message
	// carries it.
	Keyword string
	// MsgType is the robot's message type: formatter.TypeMarkdown ("") or
	// formatter.TypeActionCard.
	MsgType string
	// Where and SecretWhere say where the token and the secret were
	// configured ("DINGTALK_TOKENS line 2", "robot ops in the routes
	// file"), so a hint can point at what to fix.
	Where, SecretWhere string
}

// MaskedToken shows the last 4 characters of the token: enough to tell
// robots apart, too little to use one.
func (r Robot) MaskedToken() string {
	return Mask(r.Token)
}

// Mask hides all but the last 4 characters of a secret value.
func Mask(s string) string { return notify.Mask(s) }

// Sign computes DingTalk's request signature: base64 of HMAC-SHA256 keyed by
// the secret over "timestamp\nsecret". The caller URL-encodes it once.
func Sign(secret string, timestampMillis int64) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Client sends messages to DingTalk robots.
type Client struct {
	// HTTP is the client used; notify.NewHTTPClient makes a suitable one.
	HTTP *http.Client
	// Now is the clock used for signatures; nil means time.Now.
	Now func() time.Time
}

// maxReply bounds how much of DingTalk's answer is read.
const maxReply = 64 << 10

// reply is DingTalk's answer to a send.
type reply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Send posts a JSON message body to the robot. It returns nil once
// DingTalk accepted the message (errcode 0), else an *Error. Whatever came
// back from the network is scrubbed of the robot's token, secret and
// signature first: a gateway in front of DingTalk may echo the request line.
func (c *Client) Send(ctx context.Context, robot Robot, body []byte) error {
	req, sign, err := c.request(ctx, robot, body)
	if err != nil {
		return &Error{Robot: robot.Name, Verdict: notify.Refused, Err: err}
	}
	secrets := []string{robot.Token, robot.Secret, sign}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &Error{Robot: robot.Name, Verdict: notify.Retry, Err: notify.ScrubError(redact(err), secrets...)}
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	var r reply
	if json.Unmarshal(raw, &r) == nil && r.ErrCode != nil {
		if *r.ErrCode == 0 {
			return nil
		}
		return &Error{Robot: robot.Name, Code: *r.ErrCode, Message: notify.Scrub(r.ErrMsg, secrets...), Status: resp.StatusCode, Verdict: Classify(*r.ErrCode)}
	}
	e := &Error{Robot: robot.Name, Status: resp.StatusCode, Verdict: classifyStatus(resp.StatusCode)}
	switch {
	case readErr != nil:
		e.Err = fmt.Errorf("read reply: %w", notify.ScrubError(redact(readErr), secrets...))
	default:
		e.Err = fmt.Errorf("HTTP %d with unreadable reply %q", resp.StatusCode, formatter.Shorten(notify.Scrub(string(raw), secrets...), 120))
	}
	return e
}

// request builds the send request, signed when the robot has a secret; it
// returns the signature too, to scrub it from what comes back.
func (c *Client) request(ctx context.Context, robot Robot, body []byte) (*http.Request, string, error) {
	endpoint := robot.URL
	if endpoint == "" {
		endpoint = DefaultURL
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("robot %s: bad send URL: %w", robot.Name, redact(err))
	}
	q := u.Query()
	q.Set("access_token", robot.Token)
	sign := ""
	if robot.Secret != "" {
		// A fresh signature per request: a cached one expires after an hour.
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		ts := now().UnixMilli()
		sign = Sign(robot.Secret, ts)
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", sign)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("robot %s: %w", robot.Name, redact(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "sentry-dingtalk-relay")
	return req, sign, nil
}

func classifyStatus(status int) notify.Verdict {
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return notify.Retry
	case status >= 200 && status < 300:
		// A 200 without errcode is a gateway or proxy answering for
		// DingTalk: try again.
		return notify.Retry
	}
	return notify.Refused
}

// redact removes access tokens and signatures from URLs inside err.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

// RedactURL masks the access_token and drops the signature of a robot URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexByte(raw, '?'); i >= 0 {
			return raw[:i] + "?…"
		}
		return raw
	}
	q := u.Query()
	token := q.Get("access_token")
	q.Del("access_token")
	q.Del("sign")
	q.Del("timestamp")
	u.RawQuery = q.Encode()
	if token != "" {
		u.RawQuery = strings.TrimSuffix("access_token="+Mask(token)+"&"+u.RawQuery, "&")
	}
	return u.String()
}
