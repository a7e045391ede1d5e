package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter/sentry/sentrytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

// binary is the relay built the way the Dockerfile builds it.
var binary string

// TestMain builds the relay with the Dockerfile's own build command, so the
// process tests run what the image ships.
// defaultProcs is Go's GOMAXPROCS for a process without the variable,
// read before the testing package applies -cpu.
var defaultProcs = runtime.GOMAXPROCS(0)

func TestMain(m *testing.M) {
	if os.Getenv("GOMAXPROCS") != "" {
		// This process's count was set, not chosen by Go.
		defaultProcs = runtime.NumCPU()
	}
	dir, err := os.MkdirTemp("", "relay-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sentry-dingtalk-relay")
	line, err := dockerfileBuild("../../Dockerfile")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("sh", "-c", strings.Replace(line, "/out/sentry-dingtalk-relay", binary, 1))
	build.Dir = "../.."
	build.Env = append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH, "VERSION=test")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the relay as the Dockerfile does (%s): %v\n%s", line, err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dockerfileBuild returns the Dockerfile's go build command.
func dockerfileBuild(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if cmd, ok := strings.CutPrefix(l, "RUN "); ok && strings.Contains(cmd, "go build") {
			return cmd, nil
		}
	}
	return "", fmt.Errorf("%s has no RUN ... go build line", path)
}

// TestDockerfileBuildsAStaticBinary: the image is distroless/static, with
// no C library: the binary must not need one.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	line, _ := dockerfileBuild("../../Dockerfile")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/sentry-dingtalk-relay"} {
		if !strings.Contains(line, want) {
			t.Errorf("the Dockerfile's build lacks %s: %s", want, line)
		}
	}
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	df, _ := os.ReadFile("../../Dockerfile")
	for _, want := range []string{"gcr.io/distroless/static-debian12:nonroot", "USER nonroot:nonroot", "EXPOSE 8080", "VOLUME /data", `ENTRYPOINT ["/sentry-dingtalk-relay"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// process is a relay process.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRelay runs the relay binary in dir with env and waits until it is ready.
func startRelay(t *testing.T, dir string, env ...string) *process {
	t.Helper()
	return startRelayAt(t, dir, freeAddr(t), env...)
}

// startRelayAt is startRelay listening on addr.
func startRelayAt(t *testing.T, dir, addr string, env ...string) *process {
	t.Helper()
	p := &process{addr: addr, logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"RELAY_ADDR=" + p.addr, "LOG_FORMAT=text", "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("relay exited: %s", p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not ready: %s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *process) post(t *testing.T, path string, body []byte, resource string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+path, bytes.NewReader(body))
	if resource != "" {
		req.Header.Set("Sentry-Hook-Resource", resource)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]string
	json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

// legacyAlert is a legacy-plugin payload with a unique title.
func legacyAlert(i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": fmt.Sprint(1000 + i), "project_slug": "crash", "project_name": "Crash", "level": "error",
		"url":   fmt.Sprintf("https://sentry.example.com/organizations/acme/issues/%d/", 1000+i),
		"event": map[string]any{"event_id": fmt.Sprintf("%032d", i), "title": fmt.Sprintf("crash-%05d: boom", i)},
	})
	return b
}

// oversizedAlert is an event alert of a few megabytes: an alert-rule
// setting, a message and tags far beyond what a card shows.
func oversizedAlert(t *testing.T, i int) []byte {
	var p map[string]any
	if err := json.Unmarshal(sentrytest.Fixture(t, "event_alert.triggered.json"), &p); err != nil {
		t.Fatal(err)
	}
	data := p["data"].(map[string]any)
	event := data["event"].(map[string]any)
	event["event_id"] = fmt.Sprintf("%032d", i)
	event["title"] = fmt.Sprintf("crash-%05d: boom", i)
	event["message"] = strings.Repeat("m", 2<<20)
	var tags [][]string
	for k := range 500 {
		tags = append(tags, []string{fmt.Sprint("tag", k), strings.Repeat("v", 2<<10)})
	}
	event["tags"] = tags
	data["issue_alert"] = map[string]any{"id": 7, "title": "storm", "settings": []map[string]any{
		{"name": strings.Repeat("n", 1<<20), "value": strings.Repeat("s", 4<<20)},
	}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCrashRecovery: a relay with DingTalk down accepts alerts (one of
// them megabytes large), is killed with SIGKILL, and delivers every one of
// them after a restart with DingTalk back: nothing answered 202 is past
// what replay reads back.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	down := freeAddr(t) // nothing listens there
	env := []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=" + sec1, "DINGTALK_KEYWORD=Sentry"}
	p := startRelay(t, dir, append(env, "DINGTALK_API_URL=http://"+down+"/robot/send")...)
	const n = 40
	for i := range n {
		body, resource := legacyAlert(i), ""
		if i == n/2 {
			body, resource = oversizedAlert(t, i), "event_alert"
		}
		if status, answer := p.post(t, "/sentry/webhook", body, resource); status != 202 || answer["status"] != "queued" {
			t.Fatalf("alert %d: %d %v", i, status, answer)
		}
	}
	p.kill()

	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1, Secret: sec1, Keyword: "Sentry"})
	ts := dt.Start(t)
	p = startRelay(t, dir, append(env, "DINGTALK_API_URL="+ts.URL+"/robot/send")...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing := 0
		for i := range n {
			if dt.Count(fmt.Sprintf("crash-%05d:", i)) != 1 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d alerts not delivered after restart: %s\n%s", missing, n, dt, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dt.Replies(130101) != 0 {
		t.Error("DingTalk throttled the robot")
	}
}

// TestRunsOnDefaults: no configuration at all, as `go run` on a fresh
// machine: dry run into the log, ./data as the queue, clean exit on SIGTERM.
func TestRunsOnDefaults(t *testing.T) {
	dir := t.TempDir()
	p := startRelay(t, dir)
	body := sentrytest.Fixture(t, "issue.created.json")
	if status, _ := p.post(t, "/sentry/webhook", body, "issue"); status != 202 {
		t.Fatalf("status %d", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), "blooopy is not defined") {
		if time.Now().After(deadline) {
			t.Fatalf("card not logged: %s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "no robots configured") || !strings.Contains(logs, "without authentication") {
		t.Errorf("start-up warnings missing: %s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "queue.db")); err != nil {
		t.Errorf("queue not in ./data: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(p.logs.String(), "relay stopped") {
		t.Errorf("exit %d: %s", code, p.logs)
	}
	// The dry-run card reads as it would in DingTalk, and SIGTERM says what
	// it waits for.
	for _, want := range []string{"│ **ReferenceError: blooopy is not defined**", "shutting down: /readyz answers 503", "closing the queue"} {
		if !strings.Contains(p.logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, p.logs)
		}
	}
	if strings.Contains(p.logs.String(), `\\n`) {
		t.Errorf("the dry-run card is escaped in the log:\n%s", p.logs)
	}
}

// TestRuntimeDefaults reads the relay's own runtime metrics: its GC and
// scheduler defaults apply when the environment is silent, and the
// environment wins when it is not.
func TestRuntimeDefaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   []string
		procs int
		gogc  string
		limit string
	}{
		{"defaults", nil, defaultProcs + 1, "400", "1.00663296e+08"},
		{"environment", []string{"GOMAXPROCS=1", "GOGC=100", "GOMEMLIMIT=64MiB"}, 1, "100", "6.7108864e+07"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startRelay(t, t.TempDir(), c.env...)
			resp, err := http.Get("http://" + p.addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			want := map[string]string{
				"go_sched_gomaxprocs_threads": strconv.Itoa(c.procs),
				"go_gc_gogc_percent":          c.gogc,
				"go_gc_gomemlimit_bytes":      c.limit,
			}
			for name, v := range want {
				if line := name + " " + v + "\n"; !strings.Contains(string(body), line) {
					t.Errorf("metrics lack %q", line)
				}
			}
		})
	}
}

// TestDeadLettersCommandWhileRunning uses the running relay's admin socket.
func TestDeadLettersCommandWhileRunning(t *testing.T) {
	dir := t.TempDir()
	env := []string{"DINGTALK_TOKENS=" + tok1, "RELAY_DATA_DIR=" + dir}
	p := startRelay(t, dir, env...)
	cmd := exec.Command(binary, "deadletters", "list")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "no dead letters" {
		t.Errorf("deadletters list while running: %v %s", err, out)
	}
	p.kill()
	// And with the relay stopped, directly on the data directory.
	cmd = exec.Command(binary, "deadletters", "replay", "--all")
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 dead letters queued again") {
		t.Errorf("replay with nothing to replay: %v %s", err, out)
	}
	cmd = exec.Command(binary, "deadletters", "replay", "42")
	cmd.Env = env
	if out, err = cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no such dead letter") {
		t.Errorf("replay of an unknown id: %v %s", err, out)
	}
}

// TestProxyIsHonoured: DingTalk calls go through HTTP(S)_PROXY, except
// for hosts in NO_PROXY.
func TestProxyIsHonoured(t *testing.T) {
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	var proxied []string
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxied = append(proxied, r.URL.Host)
		mu.Unlock()
		dt.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	env := []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_API_URL=http://dingtalk.example.invalid/robot/send", "HTTP_PROXY=" + proxy.URL}
	cmd := exec.Command(binary, "test")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("test through the proxy: %v %s", err, out)
	}
	if len(proxied) != 1 || proxied[0] != "dingtalk.example.invalid" {
		t.Errorf("proxy saw %v", proxied)
	}
	cmd = exec.Command(binary, "test")
	cmd.Env = append(env, "NO_PROXY=dingtalk.example.invalid")
	out, _ = cmd.CombinedOutput()
	if len(proxied) != 1 || !strings.Contains(string(out), "cannot resolve") {
		t.Errorf("NO_PROXY ignored: proxy saw %v; output %s", proxied, out)
	}
}

func TestHelpMentionsEveryCommand(t *testing.T) {
	out, _ := exec.Command(binary, "help").Output()
	for _, c := range []string{"serve", "test", "render", "smoke", "deadletters", "schema", "version"} {
		if !strings.Contains(string(out), c) {
			t.Errorf("help lacks %s", c)
		}
	}
	v, _ := exec.Command(binary, "version").Output()
	if strings.TrimSpace(string(v)) != "sentry-dingtalk-relay test" {
		t.Errorf("version %q: -X main.version not applied", v)
	}
}
