package action

import (
	"fmt"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// actionText is what people read about one action.
type actionText struct {
	Label   string // the card's link and the page's button
	Title   string // the confirmation page's heading
	Explain string // what confirming will do
	Done    string // after Sentry took the change
	Already string // when the issue is in that state already
}

// texts are a page's words in one language.
type texts struct {
	Lang                                string
	Actions                             map[kind]actionText
	OpenInDingTalk, OpenInSentry        string
	Review                              func(n int) string
	ReviewTitle                         string
	ReviewExplain                       string
	ShortID, Project, Level, Status     string
	Assignee                            string
	Unassigned                          string
	Levels                              map[string]string
	Statuses                            map[string]string
	IgnoredUntil                        func(t string) string
	NothingChanged                      string
	Footer                              string
	ErrorTitle, DoneTitle, AlreadyTitle string
	ForgedTitle, Forged                 string
	CrossSite                           string
	ExpiredTitle, Expired               string
	NotFoundTitle, NotFound             string
	MethodTitle, Method                 string
	RateLimitedTitle, RateLimited       string
	SentryUnauthorized, SentryForbidden string
	SentryGone, SentryUnreachable       string
	SentryUncertain, SentryBadAnswer    string
	SentryStatus                        func(code int) string
	Missing                             string
	Internal                            string
}

var textSets = map[string]*texts{
	formatter.LangZH: {
		Lang: formatter.LangZH,
		Actions: map[kind]actionText{
			kindResolve: {
				Label:   "解决",
				Title:   "解决此问题？",
				Explain: "确认后，此问题将在 Sentry 中标记为已解决；再次出现时会重新提醒。",
				Done:    "已在 Sentry 中标记为已解决。",
				Already: "此问题已经是已解决状态，没有做任何更改。",
			},
			kindIgnoreHour: {
				Label:   "忽略 1 小时",
				Title:   "忽略此问题 1 小时？",
				Explain: "确认后，Sentry 将忽略此问题 1 小时；之后的新事件会再次提醒。",
				Done:    "已在 Sentry 中忽略 1 小时。",
				Already: "此问题已在限时忽略中，没有做任何更改。",
			},
			kindIgnoreEscalating: {
				Label:   "忽略直到升级",
				Title:   "忽略此问题直到它升级？",
				Explain: "确认后，Sentry 将忽略此问题，直到它的事件量明显上升（升级）时再提醒。",
				Done:    "已在 Sentry 中忽略，直到问题升级。",
				Already: "此问题已经是“忽略直到升级”状态，没有做任何更改。",
			},
		},
		OpenInDingTalk: "在钉钉中打开",
		OpenInSentry:   "在 Sentry 中查看",
		Review:         func(n int) string { return fmt.Sprintf("查看这 %d 个问题", n) },
		ReviewTitle:    "待处理的问题",
		ReviewExplain:  "每个操作都会先打开一个确认页面；打开页面不会改变任何东西。",
		ShortID:        "编号", Project: "项目", Level: "级别", Status: "状态", Assignee: "处理人",
		Unassigned: "未分配",
		Levels: map[string]string{
			"fatal": "致命", "error": "错误", "warning": "警告", "info": "信息", "debug": "调试", "sample": "示例",
		},
		Statuses: map[string]string{
			"resolved":                             "已解决",
			"resolvedInNextRelease":                "已解决（下一版本）",
			"unresolved":                           "未解决",
			"unresolved/new":                       "未解决（新问题）",
			"unresolved/ongoing":                   "未解决（持续）",
			"unresolved/escalating":                "未解决（升级）",
			"unresolved/regressed":                 "未解决（回归）",
			"ignored":                              "已忽略",
			"ignored/archived_until_escalating":    "已忽略，直到升级",
			"ignored/archived_until_condition_met": "已忽略，直到满足条件",
			"ignored/archived_forever":             "已永久忽略",
			"pending_deletion":                     "等待删除",
			"deletion_in_progress":                 "正在删除",
			"pending_merge":                        "等待合并",
			"reprocessing":                         "重新处理中",
		},
		IgnoredUntil:       func(t string) string { return "已忽略，直到 " + t },
		NothingChanged:     "打开此页面不会改变任何东西；只有点击按钮才会操作。",
		Footer:             "钉钉自定义机器人无法告诉中继是谁点击了链接：Sentry 会把此操作记录为集成（而不是你）所做。",
		ErrorTitle:         "未能完成",
		DoneTitle:          "已完成",
		AlreadyTitle:       "无需更改",
		ForgedTitle:        "链接无效",
		Forged:             "此链接不是由本中继签发的，或已被改动。请使用卡片中的原始链接。",
		CrossSite:          "此请求来自其他网站，已被拒绝。请在本页面上点击按钮。",
		ExpiredTitle:       "链接已过期",
		Expired:            "此操作链接已过期，没有做任何更改。你仍可以在 Sentry 中处理此问题。",
		NotFoundTitle:      "页面不存在",
		NotFound:           "没有这个页面。",
		MethodTitle:        "不支持的请求",
		Method:             "此页面只能打开，或通过按钮确认。",
		RateLimitedTitle:   "操作太频繁",
		RateLimited:        "操作太频繁，请一分钟后再试。没有做任何更改。",
		SentryUnauthorized: "Sentry 拒绝了中继的令牌（401）：请检查 SENTRY_AUTH_TOKEN。",
		SentryForbidden:    "Sentry 拒绝了此操作（403）：内部集成需要 Issue & Event: Read & Write 权限。",
		SentryGone:         "Sentry 中已没有此问题（404）：它可能已被删除或合并。",
		SentryUnreachable:  "无法连接 Sentry，没有做任何更改。请稍后再试。",
		SentryUncertain:    "Sentry 没有回应：更改可能已经生效，也可能没有。请先在 Sentry 中查看此问题，再决定是否重试。",
		SentryBadAnswer:    "无法读取 Sentry 的回答，没有做任何更改。",
		SentryStatus:       func(code int) string { return fmt.Sprintf("Sentry 返回了 HTTP %d，没有完成操作。", code) },
		Missing:            "Sentry 中已没有此问题：它可能已被删除或合并。",
		Internal:           "中继出现内部错误。",
	},
	formatter.LangEN: {
		Lang: formatter.LangEN,
		Actions: map[kind]actionText{
			kindResolve: {
				Label:   "Resolve",
				Title:   "Resolve this issue?",
				Explain: "Confirming marks the issue resolved in Sentry; it alerts again if it comes back.",
				Done:    "Marked resolved in Sentry.",
				Already: "The issue is resolved already; nothing was changed.",
			},
			kindIgnoreHour: {
				Label:   "Ignore for 1 hour",
				Title:   "Ignore this issue for 1 hour?",
				Explain: "Confirming makes Sentry ignore the issue for 1 hour; new events alert again after that.",
				Done:    "Ignored in Sentry for 1 hour.",
				Already: "The issue is ignored for a while already; nothing was changed.",
			},
			kindIgnoreEscalating: {
				Label:   "Ignore until it escalates",
				Title:   "Ignore this issue until it escalates?",
				Explain: "Confirming makes Sentry ignore the issue until its event volume rises sharply (escalates).",
				Done:    "Ignored in Sentry until it escalates.",
				Already: "The issue is ignored until it escalates already; nothing was changed.",
			},
		},
		OpenInDingTalk: "Open in DingTalk",
		OpenInSentry:   "Open in Sentry",
		Review: func(n int) string {
			if n == 1 {
				return "Review this issue"
			}
			return fmt.Sprintf("Review these %d issues", n)
		},
		ReviewTitle:   "Issues to review",
		ReviewExplain: "Each action opens a confirmation page first; opening a page changes nothing.",
		ShortID:       "ID", Project: "Project", Level: "Level", Status: "Status", Assignee: "Assignee",
		Unassigned: "Unassigned",
		Levels: map[string]string{
			"fatal": "Fatal", "error": "Error", "warning": "Warning", "info": "Info", "debug": "Debug", "sample": "Sample",
		},
		Statuses: map[string]string{
			"resolved":                             "Resolved",
			"resolvedInNextRelease":                "Resolved in the next release",
			"unresolved":                           "Unresolved",
			"unresolved/new":                       "Unresolved (new)",
			"unresolved/ongoing":                   "Unresolved (ongoing)",
			"unresolved/escalating":                "Unresolved (escalating)",
			"unresolved/regressed":                 "Unresolved (regressed)",
			"ignored":                              "Ignored",
			"ignored/archived_until_escalating":    "Ignored until it escalates",
			"ignored/archived_until_condition_met": "Ignored until a condition is met",
			"ignored/archived_forever":             "Ignored forever",
			"pending_deletion":                     "Pending deletion",
			"deletion_in_progress":                 "Being deleted",
			"pending_merge":                        "Pending merge",
			"reprocessing":                         "Reprocessing",
		},
		IgnoredUntil:       func(t string) string { return "Ignored until " + t },
		NothingChanged:     "Opening this page changed nothing; only the button acts.",
		Footer:             "DingTalk custom robots cannot tell the relay who clicked: Sentry records the integration, not you, as the one who acted.",
		ErrorTitle:         "Not done",
		DoneTitle:          "Done",
		AlreadyTitle:       "Nothing to change",
		ForgedTitle:        "Invalid link",
		Forged:             "This link was not made by this relay, or it was changed. Use the link from the card.",
		CrossSite:          "This request came from another site and was refused. Use the button on this page.",
		ExpiredTitle:       "Link expired",
		Expired:            "This action link has expired; nothing was changed. You can still act on the issue in Sentry.",
		NotFoundTitle:      "No such page",
		NotFound:           "There is no such page.",
		MethodTitle:        "Not supported",
		Method:             "This page can only be opened, or confirmed with its button.",
		RateLimitedTitle:   "Too many actions",
		RateLimited:        "Too many actions; try again in a minute. Nothing was changed.",
		SentryUnauthorized: "Sentry rejected the relay's token (401): check SENTRY_AUTH_TOKEN.",
		SentryForbidden:    "Sentry refused (403): the internal integration needs the Issue & Event: Read & Write permission.",
		SentryGone:         "Sentry no longer has this issue (404): it may have been deleted or merged.",
		SentryUnreachable:  "Sentry unreachable; nothing was changed. Try again later.",
		SentryUncertain:    "Sentry did not answer: the change may or may not have been made. Check the issue in Sentry before trying again.",
		SentryBadAnswer:    "Sentry's answer could not be read; nothing was changed.",
		SentryStatus:       func(code int) string { return fmt.Sprintf("Sentry answered HTTP %d; the action was not done.", code) },
		Missing:            "Sentry no longer has this issue: it may have been deleted or merged.",
		Internal:           "The relay failed internally.",
	},
}

// statusText names an issue's state; ignoreUntil is Sentry's end of a timed
// ignore, shown in UTC because the page does not know the reader's zone.
func (t *texts) statusText(status, substatus string, ignoreUntil time.Time) string {
	if status == "ignored" && !ignoreUntil.IsZero() {
		return t.IgnoredUntil(ignoreUntil.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if s, ok := t.Statuses[status+"/"+substatus]; ok {
		return s
	}
	if s, ok := t.Statuses[status]; ok {
		return s
	}
	return status
}

// levelText names a level, or shows Sentry's word for one it does not know.
func (t *texts) levelText(level string) string {
	if s, ok := t.Levels[level]; ok {
		return s
	}
	return level
}
