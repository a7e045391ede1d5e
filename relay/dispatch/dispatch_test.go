package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
)

// env is a dispatcher over a real bbolt store and an in-memory DingTalk
// double, on synctest's virtual clock.
type env struct {
	t       *testing.T
	store   *queue.Bolt
	dt      *dingtalktest.Server
	d       *dispatch.Dispatcher
	robots  []robot
	metrics *metrics.Metrics
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	n       int
}

func token(i int) string { return fmt.Sprintf("%064d", i+1) }

// robot is a receiver of the test and the token the double knows it by.
type robot struct {
	dispatch.Receiver
	Token string
}

// newEnv must run inside a synctest bubble.
func newEnv(t *testing.T, robots int, maxAge time.Duration) *env {
	return newEnvWith(t, robots, maxAge, nil)
}

// newEnvWith is newEnv with edit applied to the receivers and the
// configuration before the dispatcher starts.
func newEnvWith(t *testing.T, robots int, maxAge time.Duration, edit func([]dispatch.Receiver, *dispatch.Config)) *env {
	var servers []dingtalktest.Robot
	for i := range robots {
		servers = append(servers, dingtalktest.Robot{Token: token(i), Keyword: "Sentry"})
	}
	e := &env{t: t, dt: dingtalktest.New(servers...)}
	var err error
	e.store, err = queue.OpenBolt(t.TempDir(), queue.BoltOptions{DedupeWindow: time.Hour, Notify: func(r string) { e.d.Wake(r) }})
	if err != nil {
		t.Fatal(err)
	}
	client := &dingtalk.Client{HTTP: &http.Client{Transport: e.dt.Transport()}}
	var receivers []dispatch.Receiver
	for i := range robots {
		name := fmt.Sprintf("robot-%d", i+1)
		r := robot{Token: token(i), Receiver: dispatch.Receiver{
			Name: name, Type: "dingtalk", Key: queue.RobotKey(token(i)), Rate: ratelimit.Rate{PerMinute: 18},
			Receiver: dingtalk.NewReceiver(dingtalk.Robot{Name: name, Token: token(i), URL: "http://dingtalk.test/robot/send", Keyword: "Sentry",
				Where: fmt.Sprintf("DINGTALK_TOKENS line %d", i+1)}, formatter.Renderer{Language: formatter.LangEN}, client),
		}}
		e.robots = append(e.robots, r)
		receivers = append(receivers, r.Receiver)
	}
	e.metrics = metrics.New(prometheus.NewRegistry())
	cfg := dispatch.Config{
		Store: e.store, Limiter: ratelimit.NewWindow(ratelimit.Period, nil),
		Metrics: e.metrics, MaxAge: maxAge,
	}
	if edit != nil {
		edit(receivers, &cfg)
	}
	e.d = dispatch.New(cfg, receivers)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Go(func() { e.d.Run(ctx) })
	return e
}

func (e *env) stop() {
	e.cancel()
	e.wg.Wait()
	e.store.Close()
}

// alert queues one alert for every robot. Titles carry a unique marker
// "alert-NNNNN:" so the double can count where each one went.
func (e *env) alert(issue int, mentions ...string) {
	e.alertFor(e.robots, issue, mentions...)
}

// alertFor queues one alert for the given robots only.
func (e *env) alertFor(robots []robot, issue int, mentions ...string) {
	e.n++
	sub := queue.Submission{
		AlertID:   queue.NewID(time.Now()),
		DedupeKey: fmt.Sprint("k", e.n),
		Alert: formatter.Alert{
			Resource: "event_alert", Action: "triggered", Title: fmt.Sprintf("alert-%05d: boom", issue),
			Project: fmt.Sprintf("proj-%d", issue%3), Level: "error", IssueID: fmt.Sprint(issue),
			Link: fmt.Sprintf("https://sentry.example.com/issues/%d/", issue), Time: time.Now(),
		},
		Accepted: time.Now(),
	}
	for _, r := range robots {
		sub.Targets = append(sub.Targets, queue.Target{Robot: r.Key, Mentions: formatter.Mentions{Mobiles: mentions}})
	}
	if _, err := e.store.Enqueue(context.Background(), sub); err != nil {
		e.t.Fatal(err)
	}
}

// settle lets the store move what was just journaled (it batches for a few
// milliseconds) and every goroutine finish what that started.
func (e *env) settle() {
	time.Sleep(100 * time.Millisecond)
	synctest.Wait()
}

// drain waits (virtually) until no robot has anything waiting.
func (e *env) drain(limit time.Duration) {
	e.store.Sync(context.Background())
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		synctest.Wait()
		empty := true
		for _, r := range e.robots {
			if e.store.Depth(context.Background(), r.Key) > 0 {
				empty = false
			}
		}
		if empty {
			return
		}
		time.Sleep(time.Second)
	}
	e.t.Fatalf("queues not drained within %v: %s", limit, e.dt)
}

func TestLoneAlertGoesOutAtOnceAsFullCard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		e.alert(1, "13800000000")
		e.settle()
		msgs := e.dt.Messages("")
		if len(msgs) != 1 {
			t.Fatalf("%d messages within 100 ms, want 1", len(msgs))
		}
		m := msgs[0]
		if !strings.Contains(m.Text, "**[alert-00001: boom](https://sentry.example.com/issues/1/)**") || strings.Contains(m.Text, "×") {
			t.Errorf("not a full card:\n%s", m.Text)
		}
		if len(m.Pinged) != 1 || m.UUID == "" {
			t.Errorf("pinged %v uuid %q", m.Pinged, m.UUID)
		}
		if e.store.Depth(context.Background(), e.robots[0].Key) != 0 {
			t.Error("delivered alert still queued")
		}
		if got := testutil.ToFloat64(e.metrics.Sends.WithLabelValues("robot-1", "dingtalk", "ok")); got != 1 {
			t.Errorf("dingtalk_requests_total ok = %v", got)
		}
	})
}

// TestStorm: hundreds of alerts in a burst, to 3 robots, against a double
// that throttles for 10 minutes past 20 a minute.
func TestStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3, 24*time.Hour)
		defer e.stop()
		const n = 600
		start := time.Now()
		// A burst, then a steady stream for three minutes: every robot
		// runs at its budget the whole time.
		for i := range n {
			e.alert(i)
			if i >= 100 {
				time.Sleep(360 * time.Millisecond)
			}
		}
		e.drain(30 * time.Minute)
		if c := e.dt.Replies(130101); c != 0 {
			t.Errorf("%d answers were 130101", c)
		}
		for i, r := range e.robots {
			if max := e.dt.MaxInWindow(r.Token, time.Minute); max > 18 {
				t.Errorf("robot %d: %d messages in one minute", i+1, max)
			}
			msgs := e.dt.Messages(r.Token)
			for a := range n {
				marker := fmt.Sprintf("alert-%05d:", a)
				got := 0
				for _, m := range msgs {
					got += dingtalktest.CountIn(m.Text, marker)
				}
				if got != 1 {
					t.Fatalf("robot %d: alert %d appears %d times", i+1, a, got)
				}
			}
			t.Logf("robot %d: %d alerts in %d messages over %v", i+1, n, len(msgs), time.Since(start))
			if len(msgs) > 4*18 {
				t.Errorf("robot %d: %d messages for a burst of %d", i+1, len(msgs), n)
			}
		}
		if got := testutil.ToFloat64(e.metrics.DigestAlerts.WithLabelValues("robot-1")); got < n-20 {
			t.Errorf("digest_alerts_total = %v", got)
		}
	})
}

// TestStormSameIssue: repeats of a few issues collapse into ×N lines.
func TestStormSameIssue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		for i := range 1000 {
			e.alert(i % 5)
		}
		e.drain(10 * time.Minute)
		msgs := e.dt.Messages("")
		for issue := range 5 {
			if got := e.dt.Count(fmt.Sprintf("alert-%05d:", issue)); got != 200 {
				t.Errorf("issue %d: %d alerts delivered, want 200", issue, got)
			}
		}
		if len(msgs) > 5 {
			t.Errorf("%d messages for 1000 alerts of 5 issues", len(msgs))
		}
	})
}

// TestFaults: the double fails a third of requests (502, resets, and
// replies lost after it accepted the message): every alert arrives once.
func TestFaults(t *testing.T) {
	for _, f := range []notifytest.Fault{notifytest.FaultBadGateway, notifytest.FaultReset, notifytest.FaultLostReply} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 1, 24*time.Hour)
			defer e.stop()
			e.dt.FaultShare(f, 1.0/3)
			for i := range 60 {
				e.alert(i)
				time.Sleep(5 * time.Second) // one every 5 s: mostly single cards
			}
			e.drain(2 * time.Hour)
			for i := range 60 {
				if got := e.dt.Count(fmt.Sprintf("alert-%05d:", i)); got != 1 {
					t.Errorf("fault %d: alert %d delivered %d times", f, i, got)
				}
			}
		})
	}
}

func TestThrottledRobotIsParked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		e.dt.Script(tok, dingtalktest.Reply{ErrCode: 130101, ErrMsg: "send too fast, exceed 20 times per minute"})
		e.alert(1)
		e.settle()
		before := e.dt.Requests()
		for i := 2; i <= 30; i++ {
			e.alert(i)
		}
		time.Sleep(9*time.Minute + 59*time.Second)
		if got := e.dt.Requests(); got != before {
			t.Fatalf("%d requests while parked", got-before)
		}
		time.Sleep(2 * time.Second)
		msgs := e.dt.Messages(tok)
		if len(msgs) != 1 {
			t.Fatalf("%d messages after the park, want one digest", len(msgs))
		}
		for i := 1; i <= 30; i++ {
			if dingtalktest.CountIn(msgs[0].Text, fmt.Sprintf("alert-%05d:", i)) != 1 {
				t.Errorf("alert %d missing from the digest", i)
			}
		}
		if got := testutil.ToFloat64(e.metrics.SendFailures.WithLabelValues("robot-1", "dingtalk", "130101")); got != 1 {
			t.Errorf("rate_limited requests metric = %v", got)
		}
	})
}

func TestConfigErrorKeepsAlertsAndRetriesSlowly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		e.dt.Script(tok, dingtalktest.Reply{ErrCode: 310000, ErrMsg: "keywords not in content"}, dingtalktest.Reply{ErrCode: 310000, ErrMsg: "keywords not in content"})
		e.alert(1)
		e.settle()
		if e.dt.Requests() != 1 || e.store.Depth(context.Background(), e.robots[0].Key) != 1 {
			t.Fatalf("requests %d depth %d", e.dt.Requests(), e.store.Depth(context.Background(), e.robots[0].Key))
		}
		time.Sleep(dispatch.ConfigRetry - time.Second)
		if e.dt.Requests() != 1 {
			t.Fatalf("retried after %v", dispatch.ConfigRetry-time.Second)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if e.dt.Requests() != 2 {
			t.Fatalf("%d requests after %v, want 2", e.dt.Requests(), dispatch.ConfigRetry)
		}
		time.Sleep(dispatch.ConfigRetry)
		synctest.Wait()
		if got := e.dt.Count("alert-00001:"); got != 1 {
			t.Errorf("alert delivered %d times once the config was fixed", got)
		}
	})
}

func TestContentErrorSendsMinimalCardThenDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		e.dt.Script(tok, dingtalktest.Reply{ErrCode: 430101, ErrMsg: "含有不安全的外链"})
		e.alert(1)
		e.settle()
		msgs := e.dt.Messages(tok)
		if len(msgs) != 1 || strings.Contains(msgs[0].Text, "](") || !strings.Contains(msgs[0].Text, "alert-00001") {
			t.Fatalf("after 430101 want one minimal card without links, got %+v", msgs)
		}

		e.dt.Script(tok, dingtalktest.Reply{ErrCode: 460101}, dingtalktest.Reply{ErrCode: 460101})
		e.alert(2)
		e.settle()
		time.Sleep(10 * time.Second)
		dls, _ := e.store.DeadLetters(context.Background())
		if len(dls) != 1 || dls[0].Delivery.Alert.IssueID != "2" || !strings.Contains(dls[0].Reason, "460101") {
			t.Fatalf("dead letters %+v", dls)
		}
		if e.store.Depth(context.Background(), e.robots[0].Key) != 0 {
			t.Error("refused alert still queued")
		}
	})
}

func TestOldAlertsBecomeDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		var script []dingtalktest.Reply
		for range 100 {
			script = append(script, dingtalktest.Reply{ErrCode: 300001, ErrMsg: "token is not exist"})
		}
		e.dt.Script(tok, script...)
		e.alert(1)
		e.alert(2)
		time.Sleep(59 * time.Minute)
		if dls, _ := e.store.DeadLetters(context.Background()); len(dls) != 0 {
			t.Fatalf("%d dead letters before the max age", len(dls))
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		dls, _ := e.store.DeadLetters(context.Background())
		if len(dls) != 2 || !strings.Contains(dls[0].Reason, "300001") || !strings.Contains(dls[0].Reason, "1h0m0s") {
			t.Fatalf("dead letters %+v", dls)
		}
		if got := testutil.ToFloat64(e.metrics.DeadLetters.WithLabelValues("robot-1", "expired")); got != 2 {
			t.Errorf("dead_letters_total = %v", got)
		}
	})
}

func TestTransientBackoffGrowsAndIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		e.dt.FaultShare(notifytest.FaultBadGateway, 1)
		e.alert(1)
		var times []time.Time
		last := 0
		for time.Since(times0(times)) < 2*time.Hour {
			synctest.Wait()
			if n := e.dt.Requests(); n != last {
				times = append(times, time.Now())
				last = n
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(times) < 10 {
			t.Fatalf("only %d attempts in 2 h", len(times))
		}
		var gaps []time.Duration
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		for i, g := range gaps {
			if g < time.Second-100*time.Millisecond || g > 5*time.Minute+time.Second {
				t.Errorf("gap %d = %v, want between 1 s and 5 min", i, g)
			}
		}
		late := gaps[len(gaps)-5:]
		var sum time.Duration
		for _, g := range late {
			sum += g
		}
		if avg := sum / 5; avg < time.Minute {
			t.Errorf("late retries every %v on average: backoff does not grow", avg)
		}
	})
}

func times0(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Now()
	}
	return ts[0]
}

func TestDigestMentionsUnion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		e.dt.Script(tok, dingtalktest.Reply{ErrCode: 130101})
		e.alert(1, "13800000001")
		e.settle()
		e.alert(2, "13800000002")
		e.alert(3)
		time.Sleep(dispatch.ParkFor + time.Second)
		msgs := e.dt.Messages(tok)
		if len(msgs) != 1 {
			t.Fatalf("%d messages", len(msgs))
		}
		if got := strings.Join(msgs[0].Pinged, ","); got != "13800000001,13800000002" {
			t.Errorf("digest pinged %q, want both", got)
		}
	})
}

func TestOneRobotsTroubleDoesNotDelayOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2, 24*time.Hour)
		defer e.stop()
		// Robot 1 answers slowly and fails; robot 2 must not wait for it.
		e.dt.FaultShare(notifytest.FaultBadGateway, 0)
		bad := e.robots[0].Token
		var script []dingtalktest.Reply
		for range 50 {
			script = append(script, dingtalktest.Reply{ErrCode: -1, ErrMsg: "系统繁忙"})
		}
		e.dt.Script(bad, script...)
		for i := range 10 {
			e.alert(i)
			time.Sleep(10 * time.Second)
		}
		synctest.Wait()
		good := e.robots[1].Token
		if got := len(e.dt.Messages(good)); got != 10 {
			t.Errorf("healthy robot got %d of 10 alerts while the other failed", got)
		}
		if got := len(e.dt.Messages(bad)); got != 0 {
			t.Errorf("failing robot got %d", got)
		}
	})
}

// TestDeadLetterReasonsHoldNoSecret: what DingTalk (or a gateway in front
// of it) answered is kept in a dead letter's reason and in the logs, and it
// may quote the robot's token.
func TestDeadLetterReasonsHoldNoSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, time.Hour)
		defer e.stop()
		tok := e.robots[0].Token
		echo := dingtalktest.Reply{ErrCode: 460101, ErrMsg: "too long: POST /robot/send?access_token=" + tok}
		var script []dingtalktest.Reply
		script = append(script, echo, echo)
		for range 100 {
			script = append(script, dingtalktest.Reply{ErrCode: 300001, ErrMsg: "token " + tok + " is not exist"})
		}
		e.dt.Script(tok, script...)
		e.alert(1) // refused for its content twice: a dead letter at once
		e.settle()
		e.alert(2) // refused by configuration until it is too old
		time.Sleep(61 * time.Minute)
		dls, _ := e.store.DeadLetters(context.Background())
		if len(dls) != 2 {
			t.Fatalf("%d dead letters, want 2", len(dls))
		}
		for _, dl := range dls {
			if strings.Contains(dl.Reason, tok) || !strings.Contains(dl.Reason, dingtalk.Mask(tok)) {
				t.Errorf("reason %q: want the token masked", dl.Reason)
			}
		}
	})
}

// rejecting is a receiver that will never take anything: a webhook
// answering 4xx.
type rejecting struct{ dispatch.Receiver }

func (rejecting) Notify(context.Context, notify.Message, string) error {
	return &notify.Error{Receiver: "hook", Verdict: notify.Rejected, Code: "http_422", Detail: "unprocessable"}
}

func TestRejectedAlertsBecomeDeadLettersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, 24*time.Hour)
		defer e.stop()
		e.cancel()
		e.wg.Wait()
		hook := e.robots[0].Receiver
		hook.Receiver = rejecting{hook}
		d := dispatch.New(dispatch.Config{Store: e.store, Limiter: ratelimit.NewWindow(ratelimit.Period, nil), Metrics: e.metrics, MaxAge: 24 * time.Hour}, []dispatch.Receiver{hook})
		e.d = d
		ctx, cancel := context.WithCancel(context.Background())
		e.cancel = cancel
		e.wg.Go(func() { d.Run(ctx) })
		e.alert(1)
		e.settle()
		dls, _ := e.store.DeadLetters(context.Background())
		if len(dls) != 1 || !strings.Contains(dls[0].Reason, "http_422") {
			t.Fatalf("dead letters %+v, want the rejected alert at once", dls)
		}
		if got := testutil.ToFloat64(e.metrics.DeadLetters.WithLabelValues("robot-1", "rejected")); got != 1 {
			t.Errorf("dead_letters_total{reason=rejected} = %v", got)
		}
	})
}

// TestFallbackAfterConfigurationErrors: a robot refused (310000) for longer
// than FallbackAfter has its waiting alerts sent to its fallback, once
// each, marked with the reason; when it recovers it delivers them itself,
// and nothing is lost or sent twice to either.
func TestFallbackAfterConfigurationErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvWith(t, 2, 24*time.Hour, func(rs []dispatch.Receiver, cfg *dispatch.Config) {
			rs[0].Fallback = []string{rs[1].Key}
			cfg.FallbackAfter = 30 * time.Second
		})
		defer e.stop()
		primary, fallback := e.robots[0], e.robots[1]
		var refusals []dingtalktest.Reply
		for range 5 {
			refusals = append(refusals, dingtalktest.Reply{ErrCode: 310000, ErrMsg: "sign not match"})
		}
		e.dt.Script(primary.Token, refusals...)
		e.alertFor(e.robots[:1], 1)
		e.alertFor(e.robots[:1], 2)
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := len(e.dt.Messages(fallback.Token)); n != 0 {
			t.Fatalf("the fallback got %d messages before FallbackAfter", n)
		}
		time.Sleep(2 * time.Second)
		e.settle()
		// A third alert while the robot is still refused goes the same way.
		e.alertFor(e.robots[:1], 3)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for _, marker := range []string{"alert-00001", "alert-00002", "alert-00003"} {
			if n := strings.Count(strings.Join(texts(e.dt.Messages(fallback.Token)), "\n"), marker); n != 1 {
				t.Errorf("%s reached the fallback %d times, want once", marker, n)
			}
		}
		msgs := e.dt.Messages(fallback.Token)
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text, "DingTalk robot robot-1: errcode 310000 sign not match since") {
			t.Errorf("the fallback's card does not say why:\n%v", texts(msgs))
		}
		// The robot recovers (the script runs out) and delivers its own.
		time.Sleep(30 * time.Minute)
		e.drain(time.Hour)
		got := strings.Join(texts(e.dt.Messages(primary.Token)), "\n")
		for _, marker := range []string{"alert-00001", "alert-00002", "alert-00003"} {
			if n := strings.Count(got, marker); n != 1 {
				t.Errorf("%s reached the recovered robot %d times, want once", marker, n)
			}
		}
		if n := len(e.dt.Messages(fallback.Token)); n != len(msgs) {
			t.Errorf("the fallback got %d more messages after the recovery", n-len(msgs))
		}
		if got := testutil.ToFloat64(e.metrics.FallbackAlerts.WithLabelValues("robot-1")); got != 3 {
			t.Errorf("fallback_alerts_total = %v, want 3", got)
		}
	})
}

// TestFallbackWhenThrottled: a robot DingTalk throttles (130101) hands its
// waiting alerts to its fallback at once.
func TestFallbackWhenThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvWith(t, 2, 24*time.Hour, func(rs []dispatch.Receiver, cfg *dispatch.Config) {
			rs[0].Fallback = []string{rs[1].Key}
		})
		defer e.stop()
		e.dt.Script(e.robots[0].Token, dingtalktest.Reply{ErrCode: 130101, ErrMsg: "send too fast"})
		e.alertFor(e.robots[:1], 1)
		e.settle()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(e.dt.Messages(e.robots[1].Token)); n != 1 || !strings.Contains(e.dt.Messages(e.robots[1].Token)[0].Text, "throttled") {
			t.Fatalf("the fallback got %d messages: %v", n, texts(e.dt.Messages(e.robots[1].Token)))
		}
	})
}

func texts(ms []dingtalktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// TestFallbackBeforeDeadLetter: an alert about to become a dead letter
// goes to the fallback first.
func TestFallbackBeforeDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvWith(t, 2, time.Hour, func(rs []dispatch.Receiver, cfg *dispatch.Config) {
			rs[0].Fallback = []string{rs[1].Key}
		})
		defer e.stop()
		var busy []dingtalktest.Reply
		for range 200 {
			busy = append(busy, dingtalktest.Reply{ErrCode: -1, ErrMsg: "system busy"})
		}
		e.dt.Script(e.robots[0].Token, busy...)
		e.alertFor(e.robots[:1], 1)
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := len(e.dt.Messages(e.robots[1].Token)); n != 0 {
			t.Fatalf("a transient failure sent %d alerts to the fallback before they expired", n)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		msgs := e.dt.Messages(e.robots[1].Token)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "not delivered within 1h0m0s") {
			t.Fatalf("the fallback got %v", texts(msgs))
		}
		if dls, _ := e.store.DeadLetters(context.Background()); len(dls) != 1 {
			t.Errorf("%d dead letters: the expired alert is still a dead letter of its own robot", len(dls))
		}
	})
}
