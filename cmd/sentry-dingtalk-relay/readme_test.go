package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// The README's commands and examples, run or parsed where they can be here.

const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlock is a fenced block of the README.
type codeBlock struct {
	lang, body string
}

// readmeSection returns the text under the heading (a line starting with
// heading) down to the next heading of the same or a higher level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	level := strings.IndexByte(heading, ' ')
	var b strings.Builder
	in, fenced := false, false
	for _, line := range strings.SplitAfter(readRepoFile(t, "README.md"), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			fenced = !fenced
		}
		if in && !fenced && strings.HasPrefix(line, "#") {
			if l := strings.IndexByte(line, ' '); l > 0 && l <= level && strings.Trim(line[:l], "#") == "" {
				break
			}
		}
		if strings.HasPrefix(line, heading) {
			in = true
		}
		if in {
			b.WriteString(line)
		}
	}
	if !in {
		t.Fatalf("README has no %q", heading)
	}
	return b.String()
}

// codeBlocks returns the fenced blocks of text, list-item indentation removed.
func codeBlocks(text string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	var indent string
	for _, line := range strings.SplitAfter(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if lang, ok := strings.CutPrefix(trimmed, "```"); ok {
				cur = &codeBlock{lang: strings.TrimSpace(lang)}
				indent = line[:len(line)-len(trimmed)]
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur.body += strings.TrimPrefix(line, indent)
	}
	return blocks
}

// readmeShows fails unless the section shows file verbatim in a block.
func readmeShows(t *testing.T, heading, file string) {
	t.Helper()
	want := readRepoFile(t, file)
	for _, b := range codeBlocks(readmeSection(t, heading)) {
		if b.body == want {
			return
		}
	}
	t.Errorf("README %q does not show %s verbatim", heading, file)
}

// shellWords splits a shell command of the README: continuation lines
// joined, single and double quotes removed.
func shellWords(cmd string) []string {
	cmd = strings.ReplaceAll(cmd, "\\\n", " ")
	var words []string
	var w strings.Builder
	quote, in := rune(0), false
	for _, r := range cmd {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// TestReadmeQuickStart posts the Quick start's curl, as written, to the
// relay on its embedded defaults, and finds the answer the README shows and
// the card in the log; then checks the metrics the README lists against the
// ones the relay serves.
func TestReadmeQuickStart(t *testing.T) {
	var curl, answer string
	for _, b := range codeBlocks(readmeSection(t, "## Quick start")) {
		if strings.HasPrefix(b.body, "curl ") {
			curl, _, _ = strings.Cut(b.body, "\n# ")
			_, answer, _ = strings.Cut(b.body, "\n# ")
		}
	}
	if curl == "" {
		t.Fatal("README Quick start has no curl example")
	}
	words := shellWords(curl)
	req, _ := http.NewRequest(http.MethodGet, "", nil)
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-sS":
		case "-X":
			i++
			req.Method = words[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(words[i], ": ")
			req.Header.Set(k, v)
		case "--data-binary":
			i++
			body, err := os.ReadFile(filepath.Join(repoRoot, strings.TrimPrefix(words[i], "@")))
			if err != nil {
				t.Fatalf("the curl example posts a file that does not exist: %v", err)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		default:
			if !strings.HasPrefix(w, "localhost:8080/") {
				t.Fatalf("curl argument %q: teach this test what it means", w)
			}
			req.URL.Path = strings.TrimPrefix(w, "localhost:8080")
		}
	}
	p := startRelay(t, t.TempDir())
	req.URL.Scheme, req.URL.Host = "http", p.addr
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got, shown map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	if err := json.Unmarshal([]byte(strings.ReplaceAll(strings.TrimSpace(answer), "…", "")), &shown); err != nil {
		t.Fatalf("the README's answer %q is not JSON: %v", answer, err)
	}
	if resp.StatusCode != http.StatusAccepted || got["status"] != shown["status"] || got["id"] == "" {
		t.Fatalf("curl answered %d %v; the README shows %s", resp.StatusCode, got, answer)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), "ReferenceError: heck is not defined") {
		if time.Now().After(deadline) {
			t.Fatalf("the card did not appear in the log: %s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	mresp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	exposition, _ := io.ReadAll(mresp.Body)
	metrics := readmeSection(t, "## Metrics and self-reporting")
	for _, m := range regexp.MustCompile(`(?m)^# TYPE sentry_dingtalk_relay_(\w+) (\w+)`).FindAllStringSubmatch(string(exposition), -1) {
		name := strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_total")
		if m[2] == "counter" {
			name += "_total"
		}
		if !strings.Contains(metrics, "`"+name+"`") {
			t.Errorf("the relay serves sentry_dingtalk_relay_%s; the README's metrics table does not list it", name)
		}
	}
}

// TestReadmeNamesEveryVariable: every variable the relay reads is in the
// README's configuration table.
func TestReadmeNamesEveryVariable(t *testing.T) {
	src := readRepoFile(t, "config/config.go")
	table := readmeSection(t, "## Configuration")
	found := 0
	for _, m := range regexp.MustCompile(`env:"([A-Z0-9_]+)`).FindAllStringSubmatch(src, -1) {
		found++
		name := m[1]
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && name != "RELAY_ROUTES_FILE" && name != "RELAY_TEMPLATE_FILE" {
			if !strings.Contains(table, "`"+name+"`") {
				t.Errorf("the relay reads %s; the README's configuration section does not name it", name)
			}
			name = base
		}
		if !strings.Contains(table, "| `"+name+"`") && !strings.Contains(table, "/ `"+name+"` |") {
			t.Errorf("the relay reads %s; the README's configuration table has no row for it", name)
		}
	}
	if found < 30 {
		t.Errorf("found only %d variables in config/config.go: has its tag format changed?", found)
	}
}

// TestReadmeExamplesParse: the card template and the routes file the README
// shows are accepted by the relay (the routes file with real-looking
// tokens in place of its "…").
func TestReadmeExamplesParse(t *testing.T) {
	for _, b := range codeBlocks(readmeSection(t, "### Card template")) {
		if b.lang == "gotemplate" {
			if _, err := formatter.ParseTemplate("README", b.body, time.UTC); err != nil {
				t.Errorf("the README's card template: %v", err)
			}
		}
	}
	var routes string
	for _, b := range codeBlocks(readmeSection(t, "## Routing")) {
		if b.lang == "yaml" {
			routes = b.body
		}
	}
	if routes == "" {
		t.Fatal("README Routing shows no routes file")
	}
	n := 0
	routes = regexp.MustCompile(`"(SEC)?…"`).ReplaceAllStringFunc(routes, func(s string) string {
		n++
		if strings.HasPrefix(s, `"SEC`) {
			return sec1
		}
		return strings.Repeat(string(rune('a'+n)), 64)
	})
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load([]string{"RELAY_ROUTES_FILE=" + file}); err != nil {
		t.Errorf("the README's routes file: %v\n%s", err, routes)
	}
}
