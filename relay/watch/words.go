package watch

import (
	"fmt"
	"strings"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// words are what the relay's own warning and recovery cards say, in one
// language. Every message must fit in maxMessageRunes, so messages name an
// event by its shortEventID.
type words struct {
	hour, minute, second string

	canarySendTitle    string
	canaryTimeoutTitle func(timeout string) string
	canarySend         func(event, since, err string) string
	canaryTimeout      func(event, since, timeout string) string
	canaryRecovered    func(broken string) string
	canaryRecoveredMsg func(event, since, took string) string

	quietTitle        func(after string) string
	quietSince        func(last string) string
	quietSinceStart   func(start string) string
	quietRecovered    string
	quietRecoveredMsg func(at, silent string) string
}

// maxMessageRunes is how much of an alert's message a card shows
// (formatter shortens longer ones), so every likely cause must fit in it.
const maxMessageRunes = 400

var wordSets = map[string]*words{
	formatter.LangZH: {
		hour: "小时", minute: "分钟", second: "秒",
		canarySendTitle:    "Sentry 探针失败：事件发送不出去",
		canaryTimeoutTitle: func(t string) string { return "Sentry 探针失败：" + t + "内没有收到 webhook" },
		canarySend: func(event, since, err string) string {
			return "探针事件 " + event + " 发往 Sentry 失败：" + err + "\n" +
				"自 " + since + " 起失败。可能的原因：\n" +
				"- DSN 有误，或中继访问不到 Sentry（网络、代理、DNS）\n" +
				"- Sentry 的接收服务（ingest）宕机\n" +
				"- 项目的速率限制或配额拒收了事件"
		},
		canaryTimeout: func(event, since, t string) string {
			return "探针事件 " + event + " 已发送，但 " + t + "内没有收到它的 webhook。\n" +
				"自 " + since + " 起失败。可能的原因：\n" +
				"- 没有告警规则（Automation）把探针项目的新问题发到本集成\n" +
				"- 自建 Sentry 26.7+：升级前建的规则不再触发，需重建或重新保存\n" +
				"- Sentry 访问不到中继的 webhook 地址（见集成的请求日志）\n" +
				"- Sentry 的 ingest 或 worker 宕机\n" +
				"- 速率限制或入站过滤丢弃了事件"
		},
		canaryRecovered: func(b string) string { return "Sentry 探针恢复正常（中断了 " + b + "）" },
		canaryRecoveredMsg: func(event, since, took string) string {
			return "探针事件 " + event + " 的 webhook 在 " + took + "后收到，Sentry 的告警又能送达了。\n" +
				"自 " + since + " 起曾失败。"
		},
		quietTitle: func(a string) string { return "已有 " + a + "没有收到 Sentry 的 webhook" },
		quietSince: func(last string) string {
			return "最后一个 Sentry webhook 收到于 " + last + "。\n" +
				"如果这段时间本该有告警：自建 Sentry 26.7+ 升级前建的规则不再触发，需重建或重新保存；" +
				"也请查看集成的请求日志，确认 Sentry 能访问中继。"
		},
		quietSinceStart: func(start string) string {
			return "中继自 " + start + " 启动以来还没有收到过 Sentry 的 webhook。\n" +
				"如果这段时间本该有告警：自建 Sentry 26.7+ 升级前建的规则不再触发，需重建或重新保存；" +
				"也请查看集成的请求日志，确认 Sentry 能访问中继。"
		},
		quietRecovered: "又收到 Sentry 的 webhook 了",
		quietRecoveredMsg: func(at, silent string) string {
			return "Sentry webhook 于 " + at + " 恢复，此前 " + silent + "没有收到。"
		},
	},
	formatter.LangEN: {
		hour: "h", minute: "m", second: "s",
		canarySendTitle:    "Sentry canary failed: the event could not be sent",
		canaryTimeoutTitle: func(t string) string { return "Sentry canary failed: no webhook within " + t },
		canarySend: func(event, since, err string) string {
			return "Sending canary event " + event + " to Sentry failed: " + err + "\n" +
				"Failing since " + since + ". Likely causes:\n" +
				"- a wrong DSN, or Sentry unreachable from the relay (network, proxy, DNS)\n" +
				"- Sentry's ingest is down\n" +
				"- the project's rate limit or quota refused the event"
		},
		canaryTimeout: func(event, since, t string) string {
			return "Canary event " + event + " got no webhook within " + t + ".\n" +
				"Failing since " + since + ". Likely causes:\n" +
				"- no Automation sends the canary project's new issues here\n" +
				"- self-hosted 26.7+: old rules stop until re-created or re-saved\n" +
				"- Sentry cannot reach the relay's webhook URL (see the integration's request log)\n" +
				"- Sentry's ingest or workers down\n" +
				"- rate limits or inbound filters dropped it"
		},
		canaryRecovered: func(b string) string { return "Sentry canary works again (broken for " + b + ")" },
		canaryRecoveredMsg: func(event, since, took string) string {
			return "The webhook of canary event " + event + " came back in " + took + ": Sentry's alerts reach the relay again.\n" +
				"It had failed since " + since + "."
		},
		quietTitle: func(a string) string { return "No Sentry webhook for " + a },
		quietSince: func(last string) string {
			return "The last Sentry webhook arrived at " + last + ".\n" +
				"If alerts were due: on self-hosted 26.7+, rules from before the upgrade stop firing until re-created or re-saved; " +
				"the integration's request log shows whether Sentry reaches the relay."
		},
		quietSinceStart: func(start string) string {
			return "No Sentry webhook has arrived since the relay started at " + start + ".\n" +
				"If alerts were due: on self-hosted 26.7+, rules from before the upgrade stop firing until re-created or re-saved; " +
				"the integration's request log shows whether Sentry reaches the relay."
		},
		quietRecovered: "Sentry webhooks are arriving again",
		quietRecoveredMsg: func(at, silent string) string {
			return "A Sentry webhook arrived at " + at + " after " + silent + " without any."
		},
	},
}

// wordsFor returns the words of lang, Chinese for anything else as the
// renderer does.
func wordsFor(lang string) *words {
	if w, ok := wordSets[lang]; ok {
		return w
	}
	return wordSets[formatter.LangZH]
}

// duration says d the way a person would: to the minute from an hour up,
// to the second below, without zero parts ("6h", "2h15m", "15m", "5s").
func (w *words) duration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	if d < time.Second {
		return "0" + w.second
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var b strings.Builder
	for _, p := range []struct {
		n    int64
		unit string
	}{{h, w.hour}, {m, w.minute}, {s, w.second}} {
		if p.n > 0 {
			fmt.Fprintf(&b, "%d%s", p.n, p.unit)
		}
	}
	return b.String()
}

// shortEventID is how a card names a canary event: enough to find its
// issue in Sentry ("sentry-dingtalk-relay canary 9f2c4e1a…"); logs and
// errors have the whole id.
func shortEventID(id string) string {
	return id[:min(8, len(id))]
}

// timeFormat is the renderer's, so times in a message read like the card's.
const timeFormat = "2006-01-02 15:04:05 MST"

func formatTime(t time.Time, zone *time.Location) string {
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(timeFormat)
}
