package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// waitUntil polls cond for up to limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func issueAlert(id, project string) []byte {
	return []byte(`{"action":"created","data":{"issue":{"id":"` + id + `","title":"issue ` + id + `","level":"error","project":{"slug":"` + project + `"}}}}`)
}

// TestRoutesFileKeepsTheEnvRobots: a routes file for one project must not
// lose the other projects' alerts, and what is lost anyway says so.
func TestRoutesFileKeepsTheEnvRobots(t *testing.T) {
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1}, dingtalktest.Robot{Token: tok2})
	ts := dt.Start(t)
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	os.WriteFile(routes, []byte("robots:\n  ops: {token: "+tok2+"}\nroutes:\n  - name: payments\n    match: {projects: [payments]}\n    robots: [ops]\n"), 0o600)
	env := []string{"DINGTALK_API_URL=" + ts.URL + "/robot/send", "RELAY_ROUTES_FILE=" + routes}
	p := startRelay(t, dir, append(env, "DINGTALK_TOKENS="+tok1, "DINGTALK_AT_MOBILES=13800000000")...)
	p.post(t, "/sentry/webhook", issueAlert("1", "payments"), "issue")
	p.post(t, "/sentry/webhook", issueAlert("2", "web"), "issue")
	waitUntil(t, 10*time.Second, "both alerts", func() bool { return len(dt.Messages(tok1)) == 1 && len(dt.Messages(tok2)) == 1 })
	if m := dt.Messages(tok1)[0]; !strings.Contains(m.Text, "issue 2") || len(m.Pinged) != 1 {
		t.Errorf("robot-1 (DINGTALK_TOKENS, the catch-all) got %q pinging %v", m.Text, m.Pinged)
	}
	p.kill()

	// Neither a catch-all nor robots of DINGTALK_TOKENS: the alert is
	// answered, logged at warn and counted as no_route.
	p = startRelay(t, dir, env...)
	status, answer := p.post(t, "/sentry/webhook", issueAlert("3", "web"), "issue")
	if status != 200 || answer["reason"] != "no route matches this alert" {
		t.Fatalf("%d %v", status, answer)
	}
	// The log reaches the test through a pipe, after the answer.
	logged := func() bool {
		logs := p.logs.String()
		return strings.Contains(logs, "level=WARN msg=\"no route takes every alert") && strings.Contains(logs, "level=WARN msg=\"no route matches this alert") && strings.Contains(logs, "project=web")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !logged() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !logged() {
		t.Errorf("the lost alert is not logged at warn:\n%s", p.logs)
	}
	if _, metrics := p.get(t, "/metrics"); !strings.Contains(metrics, `webhooks_received_total{action="created",outcome="no_route",resource="issue"} 1`) {
		t.Errorf("no_route not counted")
	}
}

// TestAdminCommandsNeverCreateAStore: a mistyped RELAY_DATA_DIR is an error,
// not an empty store, and a robot the environment does not name says how
// to see its name.
func TestAdminCommandsNeverCreateAStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	cmd := exec.Command(binary, "deadletters", "list")
	cmd.Env = []string{"RELAY_DATA_DIR=" + missing}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "RELAY_DATA_DIR "+missing) || strings.Contains(string(out), "no dead letters") {
		t.Errorf("missing data dir: %v %s", err, out)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("deadletters list created the data directory")
	}
	empty := t.TempDir()
	cmd = exec.Command(binary, "deadletters", "list")
	cmd.Env = []string{"RELAY_DATA_DIR=" + empty}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "holds no relay queue") {
		t.Errorf("a directory without a queue: %v %s", err, out)
	}

	// A dead letter of robot-1: DingTalk refuses its content twice.
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	dt.Script(tok1, dingtalktest.Reply{ErrCode: 460101, ErrMsg: "message too long"}, dingtalktest.Reply{ErrCode: 460101, ErrMsg: "message too long"})
	ts := dt.Start(t)
	dir := t.TempDir()
	p := startRelay(t, dir, "DINGTALK_TOKENS="+tok1, "DINGTALK_API_URL="+ts.URL+"/robot/send", "RELAY_DATA_DIR="+dir)
	p.post(t, "/sentry/webhook", issueAlert("7", "web"), "issue")
	waitUntil(t, 10*time.Second, "the dead letter", func() bool {
		cmd := exec.Command(binary, "deadletters", "list")
		cmd.Env = []string{"RELAY_DATA_DIR=" + dir, "DINGTALK_TOKENS=" + tok1}
		out, _ := cmd.CombinedOutput()
		return strings.Contains(string(out), "460101")
	})
	p.kill()
	cmd = exec.Command(binary, "deadletters", "list")
	cmd.Env = []string{"RELAY_DATA_DIR=" + dir}
	out, err = cmd.CombinedOutput()
	key := queue.RobotKey(tok1)
	if err != nil || !strings.Contains(string(out), key+" (not configured here: run with the relay's DINGTALK_TOKENS") {
		t.Errorf("list without the relay's environment: %v %s", err, out)
	}
	cmd = exec.Command(binary, "deadletters", "replay", "--all")
	cmd.Env = []string{"RELAY_DATA_DIR=" + dir}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "run with the relay's DINGTALK_TOKENS (or routes file)") {
		t.Errorf("replay without the relay's environment: %v %s", err, out)
	}
	cmd = exec.Command(binary, "deadletters", "list")
	cmd.Env = []string{"RELAY_DATA_DIR=" + dir, "DINGTALK_TOKENS=" + tok1}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "robot-1") {
		t.Errorf("list with the relay's environment: %v %s", err, out)
	}
}

// TestTestCommandScrubsEchoedSecrets: a gateway that echoes the request
// line must not put the access token on the screen.
func TestTestCommandScrubsEchoedSecrets(t *testing.T) {
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1, Secret: sec1})
	dt.FaultShare(notifytest.FaultEcho, 1)
	ts := dt.Start(t)
	cmd := exec.Command(binary, "test")
	cmd.Env = []string{"DINGTALK_TOKENS=" + tok1, "DINGTALK_SECRETS=" + sec1, "DINGTALK_API_URL=" + ts.URL + "/robot/send"}
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("FAILED")) {
		t.Fatalf("test through an echoing gateway: %v %s", err, out)
	}
	if bytes.Contains(out, []byte(tok1)) || bytes.Contains(out, []byte(sec1)) {
		t.Errorf("test printed a secret:\n%s", out)
	}
	if !bytes.Contains(out, []byte("…"+tok1[len(tok1)-4:])) {
		t.Errorf("the scrubbed reply no longer says which robot:\n%s", out)
	}
}
