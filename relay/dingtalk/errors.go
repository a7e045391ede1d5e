package dingtalk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// Classify maps a DingTalk errcode to what it means for delivery: -1 (busy)
// goes away by itself; 130101/410100 throttle the robot for 10 minutes;
// 460101, 101002 and 430xxx refuse this message's content; 310000, 300001,
// 300005, 4001xx and codes DingTalk has not documented need the operator
// (retrying slowly loses nothing and a human is told). It never looks at
// errmsg, whose wording DingTalk has changed before.
func Classify(errcode int) notify.Verdict {
	switch {
	case errcode == -1, errcode == 88, errcode == 15:
		return notify.Retry
	case errcode == 130101, errcode == 410100:
		return notify.Throttled
	case errcode == 460101, errcode == 101002, errcode >= 430000 && errcode < 431000:
		return notify.Content
	}
	return notify.Refused
}

// Error is a failed send to one robot.
type Error struct {
	Robot string
	// Code and Message are DingTalk's errcode and errmsg; Code is 0 when
	// DingTalk's answer had none.
	Code    int
	Message string
	// Status is the HTTP status, 0 when no answer came.
	Status  int
	Verdict notify.Verdict
	// Err is the network or decoding error, if any. It never contains the
	// access token.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Code != 0:
		return fmt.Sprintf("robot %s: errcode %d: %s", e.Robot, e.Code, e.Message)
	case e.Err != nil:
		return fmt.Sprintf("robot %s: %v", e.Robot, e.Err)
	}
	return fmt.Sprintf("robot %s: HTTP %d", e.Robot, e.Status)
}

func (e *Error) Unwrap() error { return e.Err }

// Hint tells the operator what to do about a failed send to robot.
func Hint(err error, robot Robot) string {
	var e *Error
	if !errors.As(err, &e) {
		return notify.NetworkHint(err, service)
	}
	where, secretAt := robot.Where, robot.SecretWhere
	if where == "" {
		where = fmt.Sprintf("robot %s in the routes file", robot.Name)
	}
	if secretAt == "" {
		secretAt = "its secret in the routes file"
	}
	msg := strings.ToLower(e.Message)
	switch c := e.Code; {
	case c == 0 && e.Status == 0:
		return notify.NetworkHint(e.Err, service)
	case c == 0 && e.Status == 404:
		return "the send URL answered 404: check DINGTALK_API_URL (https://oapi.dingtalk.com/robot/send)"
	case c == 0 && e.Verdict == notify.Retry:
		return fmt.Sprintf("HTTP %d without a DingTalk answer (a gateway or proxy failed): a running relay retries such sends by itself; if it persists check DINGTALK_API_URL and HTTPS_PROXY", e.Status)
	case c == 0:
		return fmt.Sprintf("HTTP %d without a DingTalk answer: check DINGTALK_API_URL and any proxy in between (HTTPS_PROXY)", e.Status)
	case c == 310000:
		// errmsg only chooses the most useful hint; the class came from
		// the errcode.
		switch {
		case strings.Contains(msg, "keyword") || strings.Contains(msg, "关键词"):
			return "the robot requires a custom keyword: set DINGTALK_KEYWORD (or the robot's keyword in the routes file) to one of the robot's keywords"
		case strings.Contains(msg, "whitelist") || strings.Contains(msg, "白名单"):
			return "the robot only accepts listed IP addresses: add this relay's egress IP to the robot's IP whitelist"
		case !strings.Contains(msg, "not match") && !strings.Contains(msg, "不匹配") &&
			(strings.Contains(msg, "timestamp") || strings.Contains(msg, "时间戳")):
			return "the signature timestamp is more than an hour off: fix this machine's clock (NTP)"
		case strings.Contains(msg, "sign") || strings.Contains(msg, "签名"):
			if robot.Secret == "" {
				return fmt.Sprintf("the robot signs requests: put its SEC secret on %s", secretAt)
			}
			return fmt.Sprintf("%s does not belong to %s: copy the SEC secret of this robot from the group's robot settings", secretAt, where)
		}
		return fmt.Sprintf("the robot's security settings refused the message: check the keyword (DINGTALK_KEYWORD), the SEC secret (%s) and the IP whitelist", secretAt)
	case c == 300001 || c == 400101 || c == 400106:
		return fmt.Sprintf("token does not exist: was the robot removed? Copy the access_token again from the group's robot settings into %s", where)
	case c == 300005:
		return fmt.Sprintf("DingTalk refuses this token (%s): robots of external groups cannot be used, create the robot in an internal group", where)
	case c == 400102:
		return "the robot is disabled: enable it in the group's robot settings"
	case c == 400013:
		return fmt.Sprintf("the group was dissolved: remove %s", where)
	case c == 130101 || c == 410100:
		return "DingTalk throttles the robot for 10 minutes after 20 messages in a minute: is another system sending through the same robot? Alerts wait and go out as a digest"
	case c == 460101 || c == 101002:
		return "the message was over DingTalk's 20000-byte limit: a minimal card is sent instead"
	case c >= 430000 && c < 431000:
		return "DingTalk's content check refused the message (unsafe link or text): a minimal card without links is sent instead"
	case c == -1:
		return "DingTalk is busy (temporary): a running relay retries such sends by itself; `test` sends once, so run it again"
	case c >= 400100 && c < 400200:
		return fmt.Sprintf("DingTalk refused the robot (%s): check it in the group's robot settings", where)
	}
	return "DingTalk refused the message with an undocumented errcode: see errmsg; the alerts are kept and retried every few minutes"
}

// service is where the receiver's calls go, as network hints name it.
var service = notify.Service{Name: "DingTalk", Host: "oapi.dingtalk.com", Setting: "DINGTALK_API_URL"}
