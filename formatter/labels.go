package formatter

import (
	"fmt"
	"strconv"
)

// Languages the card labels come in.
const (
	LangZH = "zh-CN"
	LangEN = "en"
)

// Labels are the fixed words of a card in one language.
type Labels struct {
	Project, Environment, Level, Location, Release, Rule, Events, Users, Time string
	Issues, Alerts, Levels, Projects, Assignee, Actor, Commit, PullRequests   string
	More                                                                      string
	ViewInSentry                                                              string
	// Actions name what happened, by resource.action (or resource.activity
	// for activity alerts).
	Actions map[string]string
	// Kinds name the kinds of issue-platform alerts.
	Kinds       map[string]string
	OtherKind   func(typeID string) string
	DigestTitle func(alerts, issues int) string
	MoreFollow  func(n int) string
	// Fallback introduces the note of an alert delivered here because its
	// own receiver failed.
	Fallback            string
	TestTitle, TestText string
}

var labelSets = map[string]*Labels{
	LangZH: {
		Project: "项目", Environment: "环境", Level: "级别", Location: "位置", Release: "版本",
		Rule: "规则", Events: "事件数", Users: "用户数", Time: "时间", Assignee: "处理人",
		Actor: "操作人", Commit: "提交", PullRequests: "拉取请求",
		Levels: "级别", Projects: "项目",
		ViewInSentry: "在 Sentry 中查看",
		Actions: map[string]string{
			"event_alert.triggered":                      "告警",
			"legacy.triggered":                           "告警",
			"error.created":                              "新错误",
			"issue.created":                              "新问题",
			"issue.resolved":                             "已解决",
			"issue.assigned":                             "已分配",
			"issue.ignored":                              "已忽略",
			"issue.archived":                             "已归档",
			"issue.unresolved":                           "重新打开",
			"metric_alert.critical":                      "指标告警·严重",
			"metric_alert.warning":                       "指标告警·警告",
			"metric_alert.resolved":                      "指标告警·已恢复",
			"metric_alert.open":                          "指标告警",
			"activity_alert.status_regression":           "回归",
			"activity_alert.status_escalating":           "问题升级",
			"activity_alert.status_resolved":             "已解决",
			"activity_alert.status_resolved_in_release":  "已在版本中解决",
			"activity_alert.status_resolved_in_commit":   "已在提交中解决",
			"activity_alert.status_resolved_by_age":      "长期未发生，已自动解决",
			"activity_alert.status_ignored":              "已忽略",
			"activity_alert.status_unresolved":           "重新打开",
			"activity_alert.appeared_in_pull_request":    "出现在拉取请求中",
			"activity_alert.seer_root_cause_completed":   "Seer：根因分析完成",
			"activity_alert.seer_solution_completed":     "Seer：修复方案完成",
			"activity_alert.seer_coding_completed":       "Seer：代码修改完成",
			"activity_alert.seer_pr_created":             "Seer：已创建拉取请求",
			"activity_alert.seer_pr_iteration_completed": "Seer：拉取请求已更新",
			"activity_alert.other":                       "问题动态",
			"relay.test":                                 "测试消息",
			"relay.canary_failed":                        "Sentry 告警链路中断",
			"relay.canary_recovered":                     "Sentry 告警链路已恢复",
			"relay.quiet":                                "Sentry 长时间无告警",
			"relay.quiet_recovered":                      "Sentry 告警已恢复",
		},
		Kinds: map[string]string{
			KindUptime: "可用性监控告警", KindCron: "定时任务监控告警", "performance": "性能问题告警",
			"profiling": "性能剖析告警", "replay": "会话回放告警", "feedback": "用户反馈", "metric": "指标问题告警",
		},
		OtherKind:   func(id string) string { return "问题类型 " + id + " 告警" },
		DigestTitle: func(alerts, issues int) string { return fmt.Sprintf("%d 条告警 · %d 个问题", alerts, issues) },
		MoreFollow:  func(n int) string { return fmt.Sprintf("另有 %d 条告警将在下一条消息中发送", n) },
		Fallback:    "备用通道，原接收方无法投递：",
		TestTitle:   "测试消息",
		TestText:    "这是 sentry-dingtalk-relay 的测试消息：机器人配置正确。",
	},
	LangEN: {
		Project: "Project", Environment: "Environment", Level: "Level", Location: "Location", Release: "Release",
		Rule: "Rule", Events: "Events", Users: "Users", Time: "Time", Assignee: "Assignee",
		Actor: "By", Commit: "Commit", PullRequests: "Pull requests",
		Levels: "Levels", Projects: "Projects",
		ViewInSentry: "View in Sentry",
		Actions: map[string]string{
			"event_alert.triggered":                      "Alert",
			"legacy.triggered":                           "Alert",
			"error.created":                              "New error",
			"issue.created":                              "New issue",
			"issue.resolved":                             "Resolved",
			"issue.assigned":                             "Assigned",
			"issue.ignored":                              "Ignored",
			"issue.archived":                             "Archived",
			"issue.unresolved":                           "Unresolved",
			"metric_alert.critical":                      "Metric alert · critical",
			"metric_alert.warning":                       "Metric alert · warning",
			"metric_alert.resolved":                      "Metric alert · resolved",
			"metric_alert.open":                          "Metric alert",
			"activity_alert.status_regression":           "Regression",
			"activity_alert.status_escalating":           "Escalating",
			"activity_alert.status_resolved":             "Resolved",
			"activity_alert.status_resolved_in_release":  "Resolved in a release",
			"activity_alert.status_resolved_in_commit":   "Resolved in a commit",
			"activity_alert.status_resolved_by_age":      "Resolved: not seen for a while",
			"activity_alert.status_ignored":              "Ignored",
			"activity_alert.status_unresolved":           "Unresolved",
			"activity_alert.appeared_in_pull_request":    "Appeared in a pull request",
			"activity_alert.seer_root_cause_completed":   "Seer: root cause found",
			"activity_alert.seer_solution_completed":     "Seer: solution ready",
			"activity_alert.seer_coding_completed":       "Seer: code changes ready",
			"activity_alert.seer_pr_created":             "Seer: pull request opened",
			"activity_alert.seer_pr_iteration_completed": "Seer: pull request updated",
			"activity_alert.other":                       "Issue activity",
			"relay.test":                                 "Test message",
			"relay.canary_failed":                        "Sentry alerts are not coming through",
			"relay.canary_recovered":                     "Sentry alerts come through again",
			"relay.quiet":                                "No Sentry webhooks for a long time",
			"relay.quiet_recovered":                      "Sentry webhooks arrive again",
		},
		Kinds: map[string]string{
			KindUptime: "Uptime alert", KindCron: "Cron alert", "performance": "Performance alert",
			"profiling": "Profiling alert", "replay": "Replay alert", "feedback": "User feedback", "metric": "Metric issue alert",
		},
		OtherKind:   func(id string) string { return "Issue type " + id + " alert" },
		DigestTitle: func(alerts, issues int) string { return fmt.Sprintf("%d alerts · %d issues", alerts, issues) },
		MoreFollow:  func(n int) string { return fmt.Sprintf("%d more alerts follow in the next message", n) },
		Fallback:    "Fallback, its own receiver cannot deliver: ",
		TestTitle:   "Test message",
		TestText:    "This is a test message from sentry-dingtalk-relay: the robot is configured correctly.",
	},
}

// LabelsFor returns the labels of a language; unknown languages get zh-CN.
func LabelsFor(lang string) *Labels {
	if l, ok := labelSets[lang]; ok {
		return l
	}
	return labelSets[LangZH]
}

// Heading names what happened, e.g. "New issue" for issue.created.
func (l *Labels) Heading(a Alert) string {
	if a.Resource == "activity_alert" {
		if s, ok := l.Actions[a.Resource+"."+a.Activity]; ok {
			return s
		}
		return l.Actions["activity_alert.other"]
	}
	if a.Kind != "" {
		if s, ok := l.Kinds[a.Kind]; ok {
			return s
		}
		if _, err := strconv.Atoi(a.Kind); err == nil {
			return l.OtherKind(a.Kind)
		}
	}
	if s, ok := l.Actions[a.Resource+"."+a.Action]; ok {
		return s
	}
	return l.Actions["event_alert.triggered"]
}

// LevelStyle is how a level looks on a card.
type LevelStyle struct {
	Emoji, Color string
}

// Colours follow Sentry's own Slack cards; DingTalk needs full 6-digit hex.
var levelStyles = map[string]LevelStyle{
	"fatal":    {"🔴", "#FA4747"},
	"critical": {"🔴", "#FA4747"},
	"error":    {"🔴", "#E03E2F"},
	"warning":  {"🟠", "#F5A623"},
	"info":     {"🔵", "#2788CE"},
	"debug":    {"⚪", "#8D8D8D"},
	"resolved": {"✅", "#2BA185"},
}

// StyleOf returns the level an alert shows and its style: resolutions are
// green and regressions red whatever the level of the issue was, and a
// level Sentry made up looks like an error.
func StyleOf(a Alert) (string, LevelStyle) {
	level := NormalizeLevel(a.Level)
	if a.Resolved() {
		level = "resolved"
	}
	if level == "" {
		level = "error"
	}
	st, ok := levelStyles[level]
	if !ok || (a.Worsened() && severity(level) < severity("error")) {
		st = levelStyles["error"]
	}
	return level, st
}
