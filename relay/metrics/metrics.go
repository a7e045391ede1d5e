// Package metrics defines the relay's Prometheus metrics, all in the
// sentry_dingtalk_relay namespace. Receivers are labelled robot= by name
// (robot-1... or their routes-file name), never by token, whatever their
// type. The counters worth alerting on exist from the start, at 0, for
// every configured receiver (see Init): increase() over a series that
// appears at its first event misses that event.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric.
const Namespace = "sentry_dingtalk_relay"

// Metrics are the relay's instruments.
type Metrics struct {
	// WebhooksReceived counts webhooks by resource, action and outcome
	// (queued, ignored, duplicate, invalid, unauthorized, too_large,
	// unknown_route, store_error).
	WebhooksReceived *prometheus.CounterVec
	// WebhookDuration is how long answering Sentry took.
	WebhookDuration prometheus.Histogram
	// Sends counts sends by receiver, type and outcome (ok, transient,
	// rate_limited, config, content, rejected).
	Sends *prometheus.CounterVec
	// SendFailures counts failed sends by receiver, type and the
	// receiver's code (DingTalk's errcode, http_<status>, network).
	SendFailures *prometheus.CounterVec
	// DeliveryLatency is the time from accepting an alert to DingTalk
	// taking the message that carries it.
	DeliveryLatency prometheus.Histogram
	// DigestAlerts counts alerts delivered inside digests.
	DigestAlerts *prometheus.CounterVec
	// DeadLetters counts deliveries given up on, by robot and reason.
	DeadLetters *prometheus.CounterVec
	// RateLimited counts the times a robot had to wait for its send budget.
	RateLimited *prometheus.CounterVec
	// FallbackAlerts counts alerts a receiver could not deliver that went
	// to its fallback receivers, by receiver.
	FallbackAlerts *prometheus.CounterVec
}

// New creates the metrics and registers them with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		WebhooksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhooks_received_total",
			Help: "Sentry webhooks received, by resource, action and outcome.",
		}, []string{"resource", "action", "outcome"}),
		WebhookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "webhook_duration_seconds",
			Help:    "Time to answer a Sentry webhook.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "sends_total",
			Help: "Messages sent to receivers, by receiver, type and outcome.",
		}, []string{"robot", "type", "outcome"}),
		SendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "send_failures_total",
			Help: "Failed sends to receivers, by receiver, type and the receiver's code (errcode, http_<status>, network).",
		}, []string{"robot", "type", "code"}),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "delivery_latency_seconds",
			Help:    "Time from accepting an alert to DingTalk accepting the message that carries it.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		DigestAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "digest_alerts_total",
			Help: "Alerts delivered inside digest messages, by robot.",
		}, []string{"robot"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "dead_letters_total",
			Help: "Deliveries that became dead letters, by robot and reason.",
		}, []string{"robot", "reason"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rate_limited_total",
			Help: "Times a robot's next message had to wait for its send budget or a DingTalk throttle.",
		}, []string{"robot"}),
		FallbackAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "fallback_alerts_total",
			Help: "Alerts a receiver could not deliver that went to its fallback receivers, by receiver.",
		}, []string{"robot"}),
	}
	reg.MustRegister(m.WebhooksReceived, m.WebhookDuration, m.Sends, m.SendFailures, m.DeliveryLatency,
		m.DigestAlerts, m.DeadLetters, m.RateLimited, m.FallbackAlerts)
	return m
}

// Receiver names a configured receiver for Init.
type Receiver struct{ Name, Type string }

// Outcomes of a send (notify.Verdict names, and ok).
var Outcomes = []string{"ok", "transient", "rate_limited", "config", "content", "rejected"}

// DeadLetterReasons are the reasons a delivery becomes a dead letter.
var DeadLetterReasons = []string{"expired", "content", "rejected"}

// WebhookOutcomes are the outcomes of a webhook worth alerting on.
var WebhookOutcomes = []string{"queued", "duplicate", "no_route", "store_error", "invalid", "too_large", "unauthorized"}

// Init creates the series worth alerting on at 0: every receiver's sends,
// dead letters, waits and digests, and the webhooks of every resource and
// action that makes a card (actions: resource to actions).
func (m *Metrics) Init(receivers []Receiver, actions map[string][]string) {
	for _, r := range receivers {
		for _, o := range Outcomes {
			m.Sends.WithLabelValues(r.Name, r.Type, o)
		}
		for _, reason := range DeadLetterReasons {
			m.DeadLetters.WithLabelValues(r.Name, reason)
		}
		m.RateLimited.WithLabelValues(r.Name)
		m.DigestAlerts.WithLabelValues(r.Name)
		m.FallbackAlerts.WithLabelValues(r.Name)
	}
	for resource, acts := range actions {
		for _, a := range acts {
			for _, o := range WebhookOutcomes {
				m.WebhooksReceived.WithLabelValues(resource, a, o)
			}
		}
	}
}

// QueueDepth is a collector of queue_depth{robot}: deliveries waiting per robot.
type QueueDepth struct {
	desc   *prometheus.Desc
	robots map[string]string // queue key -> robot name
	depth  func(key string) int
}

// NewQueueDepth returns the collector for the given robots (queue key to
// name), reading depths from depth.
func NewQueueDepth(robots map[string]string, depth func(key string) int) *QueueDepth {
	return &QueueDepth{
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "queue_depth"),
			"Deliveries waiting, by robot.", []string{"robot"}, nil),
		robots: robots, depth: depth,
	}
}

// Describe implements prometheus.Collector.
func (q *QueueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

// Collect implements prometheus.Collector.
func (q *QueueDepth) Collect(ch chan<- prometheus.Metric) {
	for key, name := range q.robots {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(q.depth(key)), name)
	}
}
