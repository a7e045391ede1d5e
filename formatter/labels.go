package formatter

import "fmt"

// Languages the card labels come in.
const (
	LangZH = "zh-CN"
	LangEN = "en"
)

// labels are the fixed words of a card in one language.
type labels struct {
	Project, Environment, Level, Location, Release, Rule, Events, Users, Time string
	Issues, Alerts, Levels, Projects, Assignee                                string
	More                                                                      string
	ViewInSentry                                                              string
	Actions                                                                   map[string]string
	DigestTitle                                                               func(alerts, issues int) string
	MoreFollow                                                                func(n int) string
	TestTitle, TestText                                                       string
}

var labelSets = map[string]*labels{
	LangZH: {
		Project: "项目", Environment: "环境", Level: "级别", Location: "位置", Release: "版本",
		Rule: "规则", Events: "事件数", Users: "用户数", Time: "时间", Assignee: "处理人",
		Levels: "级别", Projects: "项目",
		ViewInSentry: "在 Sentry 中查看",
		Actions: map[string]string{
			"event_alert.triggered": "告警",
			"legacy.triggered":      "告警",
			"error.created":         "新错误",
			"issue.created":         "新问题",
			"issue.resolved":        "已解决",
			"issue.assigned":        "已分配",
			"issue.ignored":         "已忽略",
			"issue.archived":        "已归档",
			"issue.unresolved":      "重新打开",
			"metric_alert.critical": "指标告警·严重",
			"metric_alert.warning":  "指标告警·警告",
			"metric_alert.resolved": "指标告警·已恢复",
			"metric_alert.open":     "指标告警",
			"relay.test":            "测试消息",
		},
		DigestTitle: func(alerts, issues int) string { return fmt.Sprintf("%d 条告警 · %d 个问题", alerts, issues) },
		MoreFollow:  func(n int) string { return fmt.Sprintf("另有 %d 条告警将在下一条消息中发送", n) },
		TestTitle:   "测试消息",
		TestText:    "这是 sentry-dingtalk-relay 的测试消息：机器人配置正确。",
	},
	LangEN: {
		Project: "Project", Environment: "Environment", Level: "Level", Location: "Location", Release: "Release",
		Rule: "Rule", Events: "Events", Users: "Users", Time: "Time", Assignee: "Assignee",
		Levels: "Levels", Projects: "Projects",
		ViewInSentry: "View in Sentry",
		Actions: map[string]string{
			"event_alert.triggered": "Alert",
			"legacy.triggered":      "Alert",
			"error.created":         "New error",
			"issue.created":         "New issue",
			"issue.resolved":        "Resolved",
			"issue.assigned":        "Assigned",
			"issue.ignored":         "Ignored",
			"issue.archived":        "Archived",
			"issue.unresolved":      "Unresolved",
			"metric_alert.critical": "Metric alert · critical",
			"metric_alert.warning":  "Metric alert · warning",
			"metric_alert.resolved": "Metric alert · resolved",
			"metric_alert.open":     "Metric alert",
			"relay.test":            "Test message",
		},
		DigestTitle: func(alerts, issues int) string { return fmt.Sprintf("%d alerts · %d issues", alerts, issues) },
		MoreFollow:  func(n int) string { return fmt.Sprintf("%d more alerts follow in the next message", n) },
		TestTitle:   "Test message",
		TestText:    "This is a test message from sentry-dingtalk-relay: the robot is configured correctly.",
	},
}

// actionLabel names what happened, e.g. "New issue" for issue.created.
func (l *labels) actionLabel(a Alert) string {
	if s, ok := l.Actions[a.Resource+"."+a.Action]; ok {
		return s
	}
	return l.Actions["event_alert.triggered"]
}

// levelStyle is how a level looks on a card.
type levelStyle struct {
	Emoji, Color string
}

// Colours follow Sentry's own Slack cards; DingTalk needs full 6-digit hex.
var levelStyles = map[string]levelStyle{
	"fatal":    {"🔴", "#FA4747"},
	"critical": {"🔴", "#FA4747"},
	"error":    {"🔴", "#E03E2F"},
	"warning":  {"🟠", "#F5A623"},
	"info":     {"🔵", "#2788CE"},
	"debug":    {"⚪", "#8D8D8D"},
	"resolved": {"✅", "#2BA185"},
}

// styleOf returns the style of an alert: resolutions are green whatever the
// level of the issue was.
func styleOf(a Alert) (string, levelStyle) {
	level := NormalizeLevel(a.Level)
	if a.Resolved() {
		level = "resolved"
	}
	if level == "" {
		level = "error"
	}
	st, ok := levelStyles[level]
	if !ok {
		st = levelStyles["error"]
	}
	return level, st
}
