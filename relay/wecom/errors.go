package wecom

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// WeCom's errcodes the relay acts on.
const (
	CodeBusy        = -1
	CodeInvalidKey  = 93000
	CodeRateLimited = 45009
	CodeTooLong     = 40058
	CodeTooLarge    = 45002
	CodeBadChars    = 40033
	CodeBadMsgType  = 40008
)

// Classify maps a WeCom errcode to what it means for delivery. It never
// looks at errmsg, whose wording WeCom changes and which carries a hint
// and the caller's IP.
func Classify(errcode int) notify.Verdict {
	switch errcode {
	case CodeBusy:
		return notify.Retry
	case CodeRateLimited:
		return notify.Throttled
	case CodeTooLong, CodeTooLarge, CodeBadChars, CodeBadMsgType:
		return notify.Content
	}
	// 93000 and codes the relay does not know: keep the alerts, tell the
	// operator, retry slowly; nothing is lost.
	return notify.Refused
}

// codeError is the failure WeCom answered with errcode.
func (r *Receiver) codeError(errcode int, errmsg string) *notify.Error {
	e := &notify.Error{Receiver: r.name, Verdict: Classify(errcode), Code: strconv.Itoa(errcode), Detail: r.scrub(errmsg)}
	if e.Verdict == notify.Throttled {
		e.Wait = ThrottleWait
	}
	where := "url (or key, key_file) of receiver " + r.name + " in the routes file"
	switch errcode {
	case CodeBusy:
		e.Hint = "WeCom is busy: a running relay retries it by itself"
	case CodeRateLimited:
		e.Hint = "WeCom allows a robot 20 messages a minute, failed ones included: is another system sending through the same robot? Alerts wait a minute and go out as a digest"
	case CodeInvalidKey:
		e.Hint = "WeCom does not know this webhook key: was the robot removed from the group? Copy the webhook URL again from the group's robot settings (群机器人) into " + where
	case CodeTooLong:
		e.Hint = "the message was over WeCom's limit (4096 bytes of markdown, 2048 of text): a minimal message is sent instead"
	case CodeTooLarge:
		e.Hint = "the message was larger than WeCom accepts: a minimal message is sent instead"
	case CodeBadChars:
		e.Hint = "WeCom refused characters in the message: a minimal message is sent instead"
	case CodeBadMsgType:
		e.Hint = "WeCom refused the message type (a private WeCom deployment without markdown?): a minimal text message is sent instead"
	default:
		e.Hint = fmt.Sprintf("WeCom refused the message with errcode %d: look it up at https://developer.work.weixin.qq.com/document/path/90455 and check %s; the alerts are kept and retried every few minutes", errcode, where)
	}
	return e
}

// statusError is the failure of an HTTP answer without an errcode: a
// gateway or proxy answered for WeCom.
func (r *Receiver) statusError(status int, raw []byte, readErr error) *notify.Error {
	e := &notify.Error{Receiver: r.name, Code: "http_" + strconv.Itoa(status)}
	if readErr != nil {
		e.Err = fmt.Errorf("read reply: %w", notify.ScrubError(readErr, r.key))
	} else {
		e.Err = fmt.Errorf("HTTP %d with a reply that is not WeCom's: %q", status, r.scrub(string(raw)))
	}
	switch {
	case status >= 500, status == http.StatusRequestTimeout, status >= 200 && status < 300:
		e.Verdict = notify.Retry
		e.Hint = fmt.Sprintf("HTTP %d without a WeCom answer (a gateway or proxy failed): a running relay retries it by itself; if it persists check api_url and HTTPS_PROXY", status)
	case status == http.StatusTooManyRequests:
		e.Verdict, e.Wait = notify.Throttled, ThrottleWait
		e.Hint = "a gateway in front of WeCom throttles the relay: alerts wait and go out as a digest"
	case status == http.StatusNotFound:
		e.Verdict = notify.Refused
		e.Hint = fmt.Sprintf("the send URL answered 404: check api_url of receiver %s (%s)", r.name, DefaultURL)
	case status >= 300 && status < 400:
		e.Verdict = notify.Refused
		e.Hint = "the send URL redirects, which the relay does not follow (it would carry the key elsewhere): check api_url and any proxy in between"
	default:
		e.Verdict = notify.Refused
		e.Hint = fmt.Sprintf("HTTP %d without a WeCom answer: check api_url and any proxy in between (HTTPS_PROXY)", status)
	}
	return e
}

// scrub makes text that came back from the network fit for an error: no
// key, and short.
func (r *Receiver) scrub(s string) string {
	return formatter.Shorten(notify.Scrub(s, r.key), 300)
}

// service is where the receiver's calls go, as network hints name it.
var service = notify.Service{Name: "WeCom", Host: "qyapi.weixin.qq.com", Setting: "url (or api_url) in the routes file"}
