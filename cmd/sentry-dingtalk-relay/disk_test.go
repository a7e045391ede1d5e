package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dingtalk/dingtalktest"
)

// mountTmpfs mounts a tmpfs of size at dir, as root or through sudo (as
// scripts/ensure-redis.sh installs redis-server), and unmounts it at the
// end of the test.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	args := []string{"mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0700", "tmpfs", dir}
	if os.Geteuid() != 0 {
		args = append([]string{"sudo", "-n"}, args...)
	}
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("the full-disk test mounts a small tmpfs and needs root or passwordless sudo: %s: %v %s", strings.Join(args, " "), err, out)
	}
	t.Cleanup(func() {
		umount := []string{"umount", dir}
		if os.Geteuid() != 0 {
			umount = append([]string{"sudo", "-n"}, umount...)
		}
		exec.Command(umount[0], umount[1:]...).Run()
	})
}

// fill writes a file into dir until its file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// bulkyAlert is legacyAlert with as much text as the relay keeps of an
// alert, so the journal fills in fewer webhooks.
func bulkyAlert(i int) []byte {
	var tags [][]string
	for k := range 25 {
		tags = append(tags, []string{fmt.Sprint("tag", k), strings.Repeat("值", 128)})
	}
	b, _ := json.Marshal(map[string]any{
		"id": fmt.Sprint(1000 + i), "project_slug": "crash", "project_name": "Crash", "level": "error",
		"message": strings.Repeat("满", 1000),
		"url":     fmt.Sprintf("https://sentry.example.com/organizations/acme/issues/%d/", 1000+i),
		"event":   map[string]any{"event_id": fmt.Sprintf("%032d", i), "title": fmt.Sprintf("crash-%05d: boom", i), "tags": tags},
	})
	return b
}

func readyz(t *testing.T, p *process) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestFullDisk fills the data directory's file system under a running
// relay: webhooks get 503 once the journal has no room, readiness says so
// for as long as it lasts (not only for the seconds after a refused
// webhook), and everything comes back by itself when space does, with
// every alert answered 202 delivered once.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// Room for the journal's segment and, once the filler is gone, for
	// the queue file to take what the segment holds and a new segment.
	mountTmpfs(t, data, "64m")
	dt := dingtalktest.New(dingtalktest.Robot{Token: tok1})
	ts := dt.Start(t)
	p := startRelay(t, dir, "DINGTALK_TOKENS="+tok1, "DINGTALK_API_URL="+ts.URL+"/robot/send", "RELAY_DATA_DIR="+data)

	filler := fill(t, data)
	var accepted []int
	refused := false
	for i := 0; i < 20000 && !refused; i++ {
		status, answer := p.post(t, "/sentry/webhook", bulkyAlert(i), "")
		switch {
		case status == http.StatusAccepted:
			accepted = append(accepted, i)
		case status == http.StatusServiceUnavailable && strings.Contains(answer["error"], "no space left on device"):
			refused = true
		default:
			t.Fatalf("alert %d: %d %v", i, status, answer)
		}
	}
	if !refused {
		t.Fatalf("%d webhooks accepted on a full file system: the journal never ran out of room", len(accepted))
	}
	// Past the seconds a refused webhook keeps the relay unready, the
	// readiness probe itself must find the journal without room.
	until := time.Now().Add(12 * time.Second)
	for time.Now().Before(until) {
		if status, body := readyz(t, p); status != http.StatusServiceUnavailable || !strings.Contains(body, "no space left on device") {
			t.Fatalf("readyz %d %q while the file system is full", status, body)
		}
		time.Sleep(500 * time.Millisecond)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := readyz(t, p)
		if status == http.StatusOK && body == "ok\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %d %q after space came back", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	next := len(accepted) + 1
	if status, answer := p.post(t, "/sentry/webhook", legacyAlert(next), ""); status != http.StatusAccepted {
		t.Fatalf("after space came back: %d %v", status, answer)
	}
	accepted = append(accepted, next)

	deadline = time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, i := range accepted {
			if n := dt.Count(fmt.Sprintf("crash-%05d:", i)); n > 1 {
				t.Fatalf("alert %d delivered %d times", i, n)
			} else if n == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted alerts not delivered: %s", missing, len(accepted), p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
