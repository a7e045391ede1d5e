package feishu

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Feishu's codes the relay acts on.
const (
	CodeBadRequest   = 9499
	CodeInvalidToken = 19001
	CodeBadMsgType   = 19002
	CodeSignature    = 19021
	CodeKeyword      = 19024
	CodeThrottled    = 11232
)

// Classify maps a Feishu code to what it means for delivery. It never
// looks at msg, whose wording varies.
func Classify(code int) notify.Verdict {
	switch code {
	case CodeThrottled:
		return notify.Throttled
	case CodeBadRequest, CodeBadMsgType:
		return notify.Content
	}
	// 19001, 19021, 19024 and codes the relay does not know: keep the
	// alerts, tell the operator, retry slowly; nothing is lost.
	return notify.Refused
}

// codeError is the failure Feishu answered with code.
func (r *Receiver) codeError(code int, msg string) *notify.Error {
	e := &notify.Error{Receiver: r.name, Verdict: Classify(code), Code: strconv.Itoa(code), Detail: r.scrub(msg)}
	if e.Verdict == notify.Throttled {
		e.Wait = ThrottleWait
	}
	where := "of receiver " + r.name + " in the routes file"
	switch code {
	case CodeSignature:
		if r.secret == "" {
			e.Hint = "the bot checks signatures (签名校验): set secret " + where + " to the bot's signing secret"
		} else {
			e.Hint = "the signature was refused: either secret " + where + " is not this bot's (copy it again from the bot's 安全设置 → 签名校验), or this machine's clock is more than an hour off (fix it with NTP)"
		}
	case CodeKeyword:
		if r.keyword == "" {
			e.Hint = "the bot requires a custom keyword (自定义关键词): set keyword " + where + " to one of them"
		} else {
			e.Hint = fmt.Sprintf("keyword %q %s is not one of the bot's custom keywords: copy one from the bot's 安全设置 → 自定义关键词", r.keyword, where)
		}
	case CodeInvalidToken:
		e.Hint = "Feishu does not know this webhook token: was the bot removed from the group? Copy the webhook URL again from the bot's settings into url " + where
	case CodeThrottled:
		e.Hint = "Feishu throttles the bot (100 messages a minute, 5 a second, and busy on the hour and half hour): is another system sending through the same bot? Alerts wait a minute and go out as a digest"
	case CodeBadRequest:
		e.Hint = "Feishu could not take the card (bad request): a minimal card is sent instead"
	case CodeBadMsgType:
		e.Hint = "Feishu refused the message type: a minimal card is sent instead"
	default:
		e.Hint = fmt.Sprintf("Feishu refused the message with code %d: check the bot's security settings (IP allow-list, keyword, signature) and whether @all is allowed in the group; the alerts are kept and retried every few minutes", code)
	}
	return e
}

// statusError is the failure of an answer without a code: a gateway or
// proxy answered for Feishu, which always answers 200 with one.
func (r *Receiver) statusError(status int, raw []byte, readErr error) *notify.Error {
	e := &notify.Error{Receiver: r.name, Code: "http_" + strconv.Itoa(status)}
	if readErr != nil {
		e.Err = fmt.Errorf("read reply: %w", r.redact(readErr))
	} else {
		e.Err = fmt.Errorf("HTTP %d with a reply that is not Feishu's: %q", status, r.scrub(string(raw)))
	}
	switch {
	case status >= 500, status == http.StatusRequestTimeout, status >= 200 && status < 300:
		e.Verdict = notify.Retry
		e.Hint = fmt.Sprintf("HTTP %d without a Feishu answer (a gateway or proxy failed): a running relay retries it by itself; if it persists check url and HTTPS_PROXY", status)
	case status == http.StatusTooManyRequests:
		e.Verdict, e.Wait = notify.Throttled, ThrottleWait
		e.Hint = "a gateway in front of Feishu throttles the relay: alerts wait and go out as a digest"
	case status == http.StatusNotFound:
		e.Verdict = notify.Refused
		e.Hint = "the webhook URL answered 404: check url of receiver " + r.name + " (…/open-apis/bot/v2/hook/<token>)"
	case status >= 300 && status < 400:
		e.Verdict = notify.Refused
		e.Hint = "the webhook URL redirects, which the relay does not follow (it would carry the token elsewhere): check url and any proxy in between"
	default:
		e.Verdict = notify.Refused
		e.Hint = fmt.Sprintf("HTTP %d without a Feishu answer: check url and any proxy in between (HTTPS_PROXY)", status)
	}
	return e
}

// scrub makes text that came back from the network fit for an error: no
// token or secret, and short.
func (r *Receiver) scrub(s string) string {
	return formatter.Shorten(notify.Scrub(s, r.secrets()...), 300)
}

// service is where the receiver's calls go, as network hints name it.
var service = notify.Service{Name: "Feishu", Host: "open.feishu.cn (or open.larksuite.com)", Setting: "url in the routes file"}
