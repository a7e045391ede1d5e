// Command relay-load measures a relay under load: it runs the relay binary
// against a DingTalk double (which throttles past 20 messages a minute like
// DingTalk), fires signed Sentry webhooks at a fixed rate, and reports ack
// latency, throughput, messages sent, 130101 answers, alerts lost and the
// relay's peak memory.
//
//	relay-load -relay bin/sentry-dingtalk-relay -rate 1000 -duration 10s
//	relay-load -relay bin/sentry-dingtalk-relay -rate 167 -duration 60s -issues 200 -wait 5m
//	relay-load -relay bin/sentry-dingtalk-relay -replicas 2 -rate 500 -duration 20s
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

const clientSecret = "load-test-client-secret"

type options struct {
	relay       string
	rate        int
	duration    time.Duration
	robots      int
	issues      int
	concurrency int
	wait        time.Duration
	keep        bool
	down        bool
	replicas    int
	redis       string
	diskProbe   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.relay, "relay", "bin/sentry-dingtalk-relay", "relay binary to run")
	flag.IntVar(&o.rate, "rate", 1000, "webhooks per second")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to fire")
	flag.IntVar(&o.robots, "robots", 3, "DingTalk robots every alert goes to")
	flag.IntVar(&o.issues, "issues", 0, "distinct Sentry issues the alerts belong to (0: every alert its own issue)")
	flag.IntVar(&o.concurrency, "concurrency", 256, "most webhooks in flight")
	flag.DurationVar(&o.wait, "wait", 2*time.Minute, "how long to wait for every alert to reach every robot")
	flag.BoolVar(&o.down, "dingtalk-down", false, "point the relay at a closed port: measures ingestion alone (alerts stay queued)")
	flag.IntVar(&o.replicas, "replicas", 1, "relay processes; more than one share a Redis (started here unless -redis is given)")
	flag.StringVar(&o.redis, "redis", "", "Redis URL for the relays (RELAY_REDIS_URL); empty: bbolt, or a local redis-server with -replicas > 1")
	flag.BoolVar(&o.keep, "keep", false, "keep the relay's data directory (and print where it is)")
	flag.DurationVar(&o.diskProbe, "disk-probe", 5*time.Second, "first measure the disk alone for this long: group-committed write+fsync at -rate (0: skip)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "relay-load:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.diskProbe > 0 {
		floor, err := probeDisk(o.rate, o.diskProbe)
		if err != nil {
			return err
		}
		fmt.Printf("disk alone (3 KB writes + fsync, group-committed, %d/s for %v in %s): p50 %v  p99 %v\n",
			o.rate, o.diskProbe, os.TempDir(), pct(floor, 50), pct(floor, 99))
	}
	var robots []dingtalktest.Robot
	var tokens, secrets []string
	for i := range o.robots {
		r := dingtalktest.Robot{Token: fmt.Sprintf("%064d", i+1), Secret: fmt.Sprintf("SEC%064d", i+1), Keyword: "Sentry"}
		robots = append(robots, r)
		tokens, secrets = append(tokens, r.Token), append(secrets, r.Secret)
	}
	dt := dingtalktest.New(robots...)
	ts := httptest.NewServer(dt)
	defer ts.Close()

	apiURL := ts.URL + "/robot/send"
	if o.down {
		closed, err := freeAddr()
		if err != nil {
			return err
		}
		apiURL = "http://" + closed + "/robot/send"
	}
	env := []string{
		"LOG_LEVEL=warn", "DINGTALK_API_URL=" + apiURL, "DINGTALK_KEYWORD=Sentry",
		"DINGTALK_TOKENS=" + strings.Join(tokens, "\n"), "DINGTALK_SECRETS=" + strings.Join(secrets, "\n"),
		"SENTRY_CLIENT_SECRET=" + clientSecret,
	}
	if o.replicas > 1 && o.redis == "" {
		url, stop, err := startRedis()
		if err != nil {
			return err
		}
		defer stop()
		o.redis = url
	}
	if o.redis != "" {
		env = append(env, "RELAY_REDIS_URL="+o.redis)
	}
	var relays []*relayProcess
	for i := range max(o.replicas, 1) {
		rp, err := startRelay(o, env)
		if err != nil {
			return err
		}
		defer rp.stop(o.keep)
		if o.keep {
			fmt.Printf("relay %d data directory: %s\n", i+1, rp.dir)
		}
		relays = append(relays, rp)
	}
	var bases []string
	for _, rp := range relays {
		bases = append(bases, rp.base)
	}

	bodies := prepare(o)
	mode := "bbolt"
	if o.redis != "" {
		mode = fmt.Sprintf("%d replicas on Redis", len(relays))
	}
	fmt.Printf("firing %d webhooks/s for %v at %s (%s; %d robots, %s)\n", o.rate, o.duration, o.relay, mode, o.robots, issuesText(o))
	res := fire(bases, o, bodies)
	fmt.Printf("webhooks: %d sent, %d accepted (202), %d other answers, %d errors, in %v\n",
		res.sent, res.accepted, res.other, res.errors, res.elapsed.Round(time.Millisecond))
	fmt.Printf("throughput: %.0f webhooks/s\n", float64(res.accepted)/res.elapsed.Seconds())
	// Go timers on a busy VM wake late (p50 0.6 ms, p99 2.4 ms on the
	// project machine with nothing else running), so the generator cannot
	// write every request when it is due; the ack latency is what a sender
	// sees, from its request written to the answer, and the count from the
	// due time is printed too. Requests are sent without waiting for
	// earlier answers, so a slow relay does not hold them back.
	fmt.Printf("ack latency (request written -> answer): p50 %v  p90 %v  p99 %v  max %v\n",
		pct(res.answers, 50), pct(res.answers, 90), pct(res.answers, 99), pct(res.answers, 100))
	fmt.Printf("  counted from when each was due: p50 %v  p99 %v  max %v (the generator's own lag: p50 %v  p99 %v)\n",
		pct(res.latencies, 50), pct(res.latencies, 99), pct(res.latencies, 100), pct(res.lags, 50), pct(res.lags, 99))
	for i, rp := range relays {
		fmt.Printf("relay %d answer time (its own histogram): %s\n", i+1, serverLatency(rp.base))
	}
	lost := 0
	if !o.down {
		lost = deliveries(dt, robots, res, o)
	}
	fmt.Printf("130101 answers: %d\n", dt.Replies(130101))
	fmt.Printf("alerts lost: %d\n", lost)
	for i, rp := range relays {
		fmt.Printf("relay %d RSS: peak %.1f MB\n", i+1, float64(rp.peak())/(1<<20))
		if logs := rp.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
			fmt.Printf("relay %d logged errors:\n%s\n", i+1, tail(logs, 2000))
		}
	}
	return nil
}

// relayProcess is a relay under load.
type relayProcess struct {
	cmd  *exec.Cmd
	base string
	dir  string
	logs *bytes.Buffer
	peak func() int64
}

func startRelay(o options, env []string) (*relayProcess, error) {
	dir, err := os.MkdirTemp("", "relay-load")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	rp := &relayProcess{cmd: exec.Command(o.relay), base: "http://" + addr, dir: dir, logs: &bytes.Buffer{}}
	rp.cmd.Env = append(append(os.Environ(), env...), "RELAY_ADDR="+addr, "RELAY_DATA_DIR="+dir)
	rp.cmd.Stdout, rp.cmd.Stderr = rp.logs, rp.logs
	if err := rp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.relay, err)
	}
	if err := waitReady(rp.base); err != nil {
		rp.stop(false)
		return nil, fmt.Errorf("%w\n%s", err, rp.logs.String())
	}
	rp.peak = watchRSS(rp.cmd.Process.Pid)
	return rp, nil
}

func (rp *relayProcess) stop(keep bool) {
	rp.cmd.Process.Signal(syscall.SIGTERM)
	rp.cmd.Wait()
	if !keep {
		os.RemoveAll(rp.dir)
	}
}

// startRedis runs a redis-server (Debian's package) on a free port, with
// the persistence the README recommends (AOF, fsync every second).
func startRedis() (url string, stop func(), err error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "relay-load-redis")
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "everysec")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server (scripts/ensure-redis.sh installs it): %w", err)
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
	}
	stop()
	return "", nil, errors.New("redis-server did not start")
}

func issuesText(o options) string {
	if o.issues == 0 {
		return "every alert a new issue"
	}
	return fmt.Sprintf("%d distinct issues", o.issues)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(base string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("relay not ready after 10s")
}

// watchRSS samples the relay's resident memory and returns a function
// giving the peak seen.
func watchRSS(pid int) func() int64 {
	var peak atomic.Int64
	go func() {
		for {
			if kb := statusKB(pid, "VmRSS:"); kb > 0 && kb*1024 > peak.Load() {
				peak.Store(kb * 1024)
			} else if kb == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() int64 {
		if hwm := statusKB(pid, "VmHWM:") * 1024; hwm > peak.Load() {
			return hwm
		}
		return peak.Load()
	}
}

func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

type result struct {
	sent, accepted, other, errors int
	latencies                     []time.Duration
	// lags is how late each accepted webhook was written, and answers how
	// long its answer took after that: the generator's share of the
	// latency and the relay's (with the loopback network).
	lags, answers []time.Duration
	elapsed       time.Duration
	perIssue      map[string]int // alerts accepted per issue marker
}

// payload is an event_alert webhook, like Sentry's docs example, for one
// alert of an issue.
func payload(alert, issue int) []byte {
	b, _ := json.Marshal(map[string]any{
		"action": "triggered",
		"actor":  map[string]any{"id": "sentry", "name": "Sentry", "type": "application"},
		"data": map[string]any{
			"triggered_rule": "Load test rule",
			"event": map[string]any{
				"event_id": fmt.Sprintf("%032x", alert), "issue_id": fmt.Sprint(issue),
				"title":   fmt.Sprintf("load-%06d: ValueError: invalid literal for int() with base 10", issue),
				"culprit": "app/views.py in index", "level": "error", "environment": "production", "release": "api@1.0.0",
				"datetime": time.Now().UTC().Format(time.RFC3339Nano),
				"url":      fmt.Sprintf("https://sentry.example.com/api/0/projects/acme/api/events/%032x/", alert),
				"web_url":  fmt.Sprintf("https://sentry.example.com/organizations/acme/issues/%d/events/%032x/", issue, alert),
				"exception": map[string]any{"values": []any{map[string]any{
					"type": "ValueError", "value": "invalid literal for int() with base 10: 'abc'",
					"stacktrace": map[string]any{"frames": frames()},
				}}},
				"tags": [][]string{{"environment", "production"}, {"level", "error"}, {"server_name", "web-1"}},
			},
		},
		"installation": map[string]any{"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
	})
	return b
}

func frames() []map[string]any {
	var fs []map[string]any
	for i := range 20 {
		fs = append(fs, map[string]any{"filename": fmt.Sprintf("app/mod%d.py", i), "lineno": i + 1, "function": fmt.Sprintf("f%d", i),
			"in_app": i%2 == 0, "context_line": "    value = int(request.args['n'])"})
	}
	return fs
}

type request struct {
	raw    []byte // the whole HTTP request
	marker string
}

// prepare builds and signs every webhook before the clock starts, so the
// generator spends its CPU on sending, not on encoding.
func prepare(o options) []request {
	total := int(float64(o.rate) * o.duration.Seconds())
	out := make([]request, total)
	for i := range out {
		issue := i
		if o.issues > 0 {
			issue = i % o.issues
		}
		body := payload(i, issue)
		raw := fmt.Appendf(nil, "POST /sentry/webhook HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"+
			"Sentry-Hook-Resource: event_alert\r\nSentry-Hook-Signature: %s\r\nContent-Length: %d\r\n\r\n", sentrytest.Sign(clientSecret, body), len(body))
		out[i] = request{raw: append(raw, body...), marker: fmt.Sprintf("load-%06d:", issue)}
	}
	return out
}

// fire sends webhooks at a fixed rate. Each answer is timed from its
// request written and from when it was due, so a relay that falls behind
// shows it.
func fire(bases []string, o options, reqs []request) result {
	var clients []*wireClient
	for _, b := range bases {
		clients = append(clients, &wireClient{addr: strings.TrimPrefix(b, "http://"), idle: make(chan *wireConn, o.concurrency)})
	}
	res := result{perIssue: map[string]int{}}
	var mu sync.Mutex
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(o.rate)
	start := time.Now()
	for i, r := range reqs {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			status, wrote, err := clients[i%len(clients)].do(r.raw)
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			res.sent++
			switch {
			case err != nil:
				res.errors++
			case status == http.StatusAccepted:
				res.accepted++
				res.latencies = append(res.latencies, end.Sub(due))
				res.lags = append(res.lags, wrote.Sub(due))
				res.answers = append(res.answers, end.Sub(wrote))
				res.perIssue[r.marker]++
			default:
				res.other++
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	slices.Sort(res.lags)
	slices.Sort(res.answers)
	return res
}

// probeDisk measures what the relay's durability costs on this disk before
// any relay code runs: writes of a webhook's size at rate, each waiting for
// an fsync shared with the writes that arrived meanwhile, as the relay's
// journal does. Its p99 is the floor under the relay's ack latency.
func probeDisk(rate int, d time.Duration) ([]time.Duration, error) {
	f, err := os.CreateTemp("", "relay-load-disk")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	due := make(chan time.Time, rate)
	var lats []time.Duration
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for t := range due {
			group := []time.Time{t}
		gather:
			for {
				select {
				case t, ok := <-due:
					if !ok {
						break gather
					}
					group = append(group, t)
				default:
					break gather
				}
			}
			if _, err := f.Write(make([]byte, 3000*len(group))); err != nil {
				werr = err
			} else if err := f.Sync(); err != nil {
				werr = err
			}
			now := time.Now()
			for _, t := range group {
				lats = append(lats, now.Sub(t))
			}
		}
	}()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range int(d.Seconds() * float64(rate)) {
		t := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(t))
		due <- t
	}
	close(due)
	<-done
	slices.Sort(lats)
	return lats, werr
}

// wireClient writes prebuilt HTTP/1.1 requests on kept-alive connections.
// net/http's client spends about as much CPU per request as the relay
// spends serving it; on a machine shared with the relay that CPU would be
// measured as relay latency.
type wireClient struct {
	addr string
	idle chan *wireConn
}

type wireConn struct {
	net.Conn
	r *bufio.Reader
}

// do sends one request and returns the answer's status and when the
// request had been written.
func (c *wireClient) do(raw []byte) (status int, wrote time.Time, err error) {
	var wc *wireConn
	select {
	case wc = <-c.idle:
	default:
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0, time.Time{}, err
		}
		wc = &wireConn{Conn: conn, r: bufio.NewReader(conn)}
	}
	wc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := wc.Write(raw); err != nil {
		wc.Close()
		return 0, time.Time{}, err
	}
	wrote = time.Now()
	resp, err := http.ReadResponse(wc.r, nil)
	if err != nil {
		wc.Close()
		return 0, wrote, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		wc.Close()
		return resp.StatusCode, wrote, err
	}
	select {
	case c.idle <- wc:
	default:
		wc.Close()
	}
	return resp.StatusCode, wrote, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i].Round(10 * time.Microsecond)
}

var markerRE = regexp.MustCompile(`load-\d{6}:`)

// deliveries waits until every accepted alert reached every robot (or the
// wait ends), prints what each robot received and returns how many
// alert deliveries are missing.
func deliveries(dt *dingtalktest.Server, robots []dingtalktest.Robot, res result, o options) int {
	want := res.accepted
	start := time.Now()
	missing := 0
	for {
		missing = 0
		for _, r := range robots {
			got := 0
			for _, m := range dt.Messages(r.Token) {
				for marker, n := range dingtalktest.Tally(m.Text, markerRE) {
					if res.perIssue[marker] > 0 {
						got += n
					}
				}
			}
			missing += max(0, want-got)
		}
		if missing == 0 || time.Since(start) > o.wait {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i, r := range robots {
		msgs := dt.Messages(r.Token)
		fmt.Printf("robot-%d: %d messages, at most %d in any 60 s\n", i+1, len(msgs), dt.MaxInWindow(r.Token, time.Minute))
	}
	if missing == 0 {
		fmt.Printf("every alert reached every robot %v after the last webhook\n", time.Since(start).Round(time.Second))
	} else {
		fmt.Printf("after -wait %v, %d alert deliveries are still queued or lost\n", o.wait, missing)
	}
	return missing
}

// serverLatency reads the relay's own webhook_duration_seconds histogram:
// the share of webhooks answered within each bucket, as the relay saw it.
func serverLatency(base string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var total float64
	buckets := map[string]float64{}
	var order []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "sentry_dingtalk_relay_webhook_duration_seconds_bucket{le=\""); ok {
			le, v, _ := strings.Cut(rest, "\"} ")
			n, _ := strconv.ParseFloat(v, 64)
			buckets[le] = n
			order = append(order, le)
		}
		if v, ok := strings.CutPrefix(line, "sentry_dingtalk_relay_webhook_duration_seconds_count "); ok {
			total, _ = strconv.ParseFloat(v, 64)
		}
	}
	if total == 0 {
		return "no data"
	}
	var parts []string
	for _, le := range order {
		if le == "0.0025" || le == "0.005" || le == "0.01" || le == "0.05" {
			parts = append(parts, fmt.Sprintf("%.2f%% within %sms", 100*buckets[le]/total, strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", mustFloat(le)*1000), "0"), ".")))
		}
	}
	return strings.Join(parts, ", ")
}

func mustFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
