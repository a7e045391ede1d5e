package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
)

// The recipes of the README's Deployment section cannot run here (no
// docker, no systemd as PID 1, no GitHub runner): these tests check what
// can be checked, the files they install parsed as their tools parse them,
// the README showing those files verbatim, and every name one recipe gives
// another (image, binary path, user, directories, URLs) agreeing.

// buildCommand is what a go build line decides about the binary.
type buildCommand struct {
	env     []string // assignments that are not GOOS/GOARCH
	flags   []string
	ldflags string
	out     string
	pkg     string
}

var versionRef = regexp.MustCompile(`main\.version=\S+`)

// parseBuild reads a shell go build command line, with the version
// reference, whatever its spelling, replaced by VERSION.
func parseBuild(t *testing.T, line string) buildCommand {
	t.Helper()
	var words []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	var c buildCommand
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "="); i++ {
		if k, _, _ := strings.Cut(words[i], "="); k != "GOOS" && k != "GOARCH" {
			c.env = append(c.env, words[i])
		}
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		t.Fatalf("not a go build command: %s", line)
	}
	for i += 2; i < len(words); i++ {
		switch words[i] {
		case "-ldflags":
			i++
			c.ldflags = versionRef.ReplaceAllString(words[i], "main.version=VERSION")
		case "-o":
			i++
			c.out = words[i]
		default:
			if strings.HasPrefix(words[i], "-") {
				c.flags = append(c.flags, words[i])
			} else {
				c.pkg = words[i]
			}
		}
	}
	return c
}

// makeBuild is the Makefile's build of the relay, as make runs it.
func makeBuild(t *testing.T) buildCommand {
	t.Helper()
	cmd := exec.Command("make", "-n", "build", "VERSION=v0.0.0-test")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "./cmd/sentry-dingtalk-relay") {
			return parseBuild(t, line)
		}
	}
	t.Fatalf("make -n build does not build ./cmd/sentry-dingtalk-relay:\n%s", out)
	return buildCommand{}
}

type workflowStep struct {
	ID   string         `yaml:"id"`
	Name string         `yaml:"name"`
	Uses string         `yaml:"uses"`
	Run  string         `yaml:"run"`
	With map[string]any `yaml:"with"`
	Dir  string         `yaml:"working-directory"`
}

type workflowJob struct {
	RunsOn      string            `yaml:"runs-on"`
	Needs       []string          `yaml:"needs"`
	Permissions map[string]string `yaml:"permissions"`
	Strategy    struct {
		Matrix map[string][]string `yaml:"matrix"`
	} `yaml:"strategy"`
	Env   map[string]string `yaml:"env"`
	Steps []workflowStep    `yaml:"steps"`
}

type workflow struct {
	Name string `yaml:"name"`
	On   struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Permissions map[string]string      `yaml:"permissions"`
	Jobs        map[string]workflowJob `yaml:"jobs"`
}

// step returns the job's only step using action (owner/name).
func (j workflowJob) step(t *testing.T, action string) workflowStep {
	t.Helper()
	var found []workflowStep
	for _, s := range j.Steps {
		if name, _, _ := strings.Cut(s.Uses, "@"); name == action {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d steps use %s, want 1", len(found), action)
	}
	return found[0]
}

func with(s workflowStep, key string) string { return fmt.Sprint(s.With[key]) }

// lines splits a multi-line action input into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// chartImage is the chart's default image repository and its appVersion.
func chartImage(t *testing.T) (repository, appVersion string) {
	t.Helper()
	var values struct {
		Image struct {
			Repository string `yaml:"repository"`
		} `yaml:"image"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "charts/sentry-dingtalk-relay/values.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "charts/sentry-dingtalk-relay/Chart.yaml")), &chart); err != nil {
		t.Fatal(err)
	}
	return values.Image.Repository, chart.AppVersion
}

// modulePath is the main module's path, github.com/<owner>/<repo>.
func modulePath(t *testing.T) string {
	t.Helper()
	first, _, _ := strings.Cut(readRepoFile(t, "go.mod"), "\n")
	path, ok := strings.CutPrefix(first, "module ")
	if !ok {
		t.Fatalf("go.mod starts with %q", first)
	}
	return path
}

var pinnedMajor = regexp.MustCompile(`^[\w.-]+/[\w.-]+@v\d+$`)

// TestReleaseWorkflow checks .github/workflows/release.yml, which only
// GitHub can run: the tag trigger, the multi-arch GHCR push of the image the
// chart defaults to, release binaries built exactly as the Makefile and the
// Dockerfile build them, their checksums, and the README's names for them.
func TestReleaseWorkflow(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(readRepoFile(t, ".github/workflows/release.yml")))
	dec.KnownFields(true)
	var wf workflow
	if err := dec.Decode(&wf); err != nil {
		t.Fatalf("release.yml: %v", err)
	}
	if !slices.Equal(wf.On.Push.Tags, []string{"v*"}) {
		t.Errorf("on.push.tags = %v, want [v*]", wf.On.Push.Tags)
	}
	if len(wf.Permissions) != 0 {
		t.Errorf("workflow permissions %v, want none beyond each job's own", wf.Permissions)
	}
	for name, job := range wf.Jobs {
		for _, s := range job.Steps {
			if s.Uses != "" && !pinnedMajor.MatchString(s.Uses) {
				t.Errorf("job %s uses %s, want an action pinned by major version (owner/name@vN)", name, s.Uses)
			}
		}
	}

	image := wf.Jobs["image"]
	if image.Permissions["packages"] != "write" {
		t.Errorf("image job permissions %v, want packages: write", image.Permissions)
	}
	image.step(t, "docker/setup-qemu-action")
	image.step(t, "docker/setup-buildx-action")
	if login := image.step(t, "docker/login-action"); with(login, "registry") != "ghcr.io" || with(login, "password") != "${{ secrets.GITHUB_TOKEN }}" {
		t.Errorf("login = %v, want ghcr.io with the workflow's token", login.With)
	}
	meta := image.step(t, "docker/metadata-action")
	repo, appVersion := chartImage(t)
	owner := strings.TrimPrefix(modulePath(t), "github.com/")
	if got := with(meta, "images"); got != "ghcr.io/${{ github.repository }}" || repo != "ghcr.io/"+owner {
		t.Errorf("the workflow pushes %s (for %s), the chart defaults to %s", got, owner, repo)
	}
	if tags := lines(with(meta, "tags")); !slices.Contains(tags, "type=semver,pattern={{version}}") {
		t.Errorf("image tags %v lack type=semver,pattern={{version}}: the chart's tag %s (appVersion) would never be pushed for v%s", tags, appVersion, appVersion)
	}
	push := image.step(t, "docker/build-push-action")
	if platforms := strings.Split(with(push, "platforms"), ","); !slices.Contains(platforms, "linux/amd64") || !slices.Contains(platforms, "linux/arm64") {
		t.Errorf("platforms = %v, want linux/amd64 and linux/arm64", platforms)
	}
	if with(push, "push") != "true" {
		t.Errorf("push = %v, want true", push.With["push"])
	}
	if args := lines(with(push, "build-args")); !slices.Contains(args, "VERSION=${{ github.ref_name }}") {
		t.Errorf("build-args = %v, want VERSION=${{ github.ref_name }}", args)
	}
	for key, want := range map[string]string{"tags": "${{ steps.meta.outputs.tags }}", "labels": "${{ steps.meta.outputs.labels }}"} {
		if got := with(push, key); got != want || meta.ID != "meta" {
			t.Errorf("build-push %s = %q (metadata step id %q), want %q", key, got, meta.ID, want)
		}
	}
	if l := lines(with(meta, "labels")); !slices.ContainsFunc(l, func(s string) bool { return strings.HasPrefix(s, "org.opencontainers.image.") }) {
		t.Errorf("metadata labels %v set no OCI label", l)
	}

	bin := wf.Jobs["binaries"]
	if m := bin.Strategy.Matrix; !slices.Equal(m["goos"], []string{"linux", "darwin"}) || !slices.Equal(m["goarch"], []string{"amd64", "arm64"}) {
		t.Errorf("binaries matrix = %v, want goos linux, darwin × goarch amd64, arm64", m)
	}
	if bin.Env["GOOS"] != "${{ matrix.goos }}" || bin.Env["GOARCH"] != "${{ matrix.goarch }}" || bin.Env["VERSION"] != "${{ github.ref_name }}" {
		t.Errorf("binaries env = %v, want GOOS/GOARCH from the matrix and VERSION from the tag", bin.Env)
	}
	if s := bin.step(t, "actions/setup-go"); with(s, "go-version-file") != "go.mod" {
		t.Errorf("setup-go = %v, want go-version-file: go.mod", s.With)
	}
	var buildLine, tarball string
	for _, s := range bin.Steps {
		for _, l := range strings.Split(s.Run, "\n") {
			l = strings.TrimSpace(l)
			if strings.Contains(l, "go build") {
				buildLine = l
			}
			if v, ok := strings.CutPrefix(l, "name="); ok {
				tarball = strings.Trim(v, `"`)
			}
		}
	}
	dockerLine, err := dockerfileBuild(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	release, mk, docker := parseBuild(t, buildLine), makeBuild(t), parseBuild(t, dockerLine)
	for what, c := range map[string]buildCommand{"Makefile": mk, "Dockerfile": docker} {
		if !slices.Equal(release.env, c.env) || !slices.Equal(release.flags, c.flags) || release.ldflags != c.ldflags || release.pkg != c.pkg {
			t.Errorf("release build %+v differs from the %s's %+v", release, what, c)
		}
	}
	if !slices.Contains(release.env, "CGO_ENABLED=0") || !slices.Contains(release.flags, "-trimpath") || release.ldflags != "-s -w -X main.version=VERSION" {
		t.Errorf("release build %+v, want CGO_ENABLED=0 -trimpath -ldflags \"-s -w -X main.version=<tag>\"", release)
	}
	if filepath.Base(release.out) != "sentry-dingtalk-relay" {
		t.Errorf("release binary %s, want it named sentry-dingtalk-relay", release.out)
	}

	rel := wf.Jobs["release"]
	if !slices.Contains(rel.Needs, "image") || !slices.Contains(rel.Needs, "binaries") || rel.Permissions["contents"] != "write" {
		t.Errorf("release job needs %v, permissions %v: want both other jobs and contents: write", rel.Needs, rel.Permissions)
	}
	if dl := rel.step(t, "actions/download-artifact"); with(dl, "path") != "dist" {
		t.Errorf("artifacts downloaded to %v, want dist", dl.With["path"])
	}
	var sums bool
	for _, s := range rel.Steps {
		sums = sums || (s.Dir == "dist" && strings.Contains(s.Run, "sha256sum *.tar.gz > SHA256SUMS"))
	}
	gh := rel.step(t, "softprops/action-gh-release")
	if files := lines(with(gh, "files")); !sums || !slices.Contains(files, "dist/*.tar.gz") || !slices.Contains(files, "dist/SHA256SUMS") {
		t.Errorf("release files %v (checksums made: %v), want the archives and SHA256SUMS", files, sums)
	}

	// The README's release example is what the workflow names.
	example := strings.NewReplacer("${VERSION}", "v0.1.0", "${GOOS}", "linux", "${GOARCH}", "amd64").Replace(tarball)
	section := readmeSection(t, "### Getting the binary")
	for _, want := range []string{
		"tar -xzf " + example + ".tar.gz",
		"install -m 0755 " + example + "/sentry-dingtalk-relay /usr/local/bin/",
		"sha256sum --ignore-missing -c SHA256SUMS",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("README Getting the binary lacks %q (the workflow's archive is %s.tar.gz)", want, tarball)
		}
	}
	if img := readmeSection(t, "### Build and push your own image"); !strings.Contains(img, "`"+repo+"`") {
		t.Errorf("README Build and push your own image does not name the released image %s", repo)
	}
}

// binaryPrefix matches a relay command in a README example with what comes
// before the binary's name on the same word.
var binaryPrefix = regexp.MustCompile(`(\S*)sentry-dingtalk-relay (serve|test|render|smoke|deadletters|schema|version)\b`)

// TestRecipeCommandsNameTheBinary: in the deployment recipes every command
// names the binary where the recipe put it (make build's output, the
// installed copy, the image's), never a bare name no step installed.
func TestRecipeCommandsNameTheBinary(t *testing.T) {
	mk := makeBuild(t)
	if mk.out != "bin/sentry-dingtalk-relay" {
		t.Fatalf("make build writes %s, the README says bin/sentry-dingtalk-relay", mk.out)
	}
	install := "install -m 0755 " + mk.out + " /usr/local/bin/"
	allowed := map[string]string{
		"./bin/":                 "make build's output",
		"/usr/local/bin/":        "installed by " + install,
		"/":                      "the image's entrypoint",
		`"$(go env GOPATH)/bin/`: "go install's",
	}
	for _, heading := range []string{"### Getting the binary", "### Build and push your own image", "### Container",
		"### docker compose", "### systemd", "### supervisor"} {
		section := readmeSection(t, heading)
		for _, m := range binaryPrefix.FindAllStringSubmatch(section, -1) {
			prefix := m[1]
			if i := strings.LastIndexAny(prefix, "=`"); i >= 0 {
				prefix = prefix[i+1:]
			}
			if _, ok := allowed[prefix]; !ok {
				t.Errorf("README %s runs %q: name the binary as built (%v)", heading, m[0], allowed)
			}
		}
		if strings.Contains(section, "/usr/local/bin/sentry-dingtalk-relay") &&
			!strings.Contains(section, install) && !strings.Contains(section, "Getting the binary") {
			t.Errorf("README %s uses /usr/local/bin/sentry-dingtalk-relay without saying how it gets there", heading)
		}
	}
	var built bool
	for _, b := range codeBlocks(readmeSection(t, "### Getting the binary")) {
		built = built || (strings.HasPrefix(b.body, "make build\n") && strings.Contains(b.body, "\n"+install+"\n"))
	}
	if !built {
		t.Errorf("README Getting the binary lacks make build followed by %q", install)
	}
	if s := readmeSection(t, "### Getting the binary"); !strings.Contains(s, "go install "+modulePath(t)+"/cmd/sentry-dingtalk-relay@latest") {
		t.Errorf("README Getting the binary lacks go install of %s/cmd/sentry-dingtalk-relay", modulePath(t))
	}
}

// djangoHost is the host part of Django's URLValidator, which Sentry's URL
// fields use: dotted labels ending in an alphabetic top-level domain, or
// localhost. A single-label host is "Enter a valid URL".
var djangoHost = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$`)

func sentryAcceptsHost(host string) bool {
	return host == "localhost" || djangoHost.MatchString(strings.ToLower(host))
}

func TestComposeSentryAcceptsHost(t *testing.T) {
	for host, want := range map[string]bool{
		"sentry-dingtalk-relay":          false,
		"sentry-dingtalk-relay.internal": true,
		"relay.sentry.svc":               true,
		"localhost":                      true,
		"a.b1":                           false,
		"relay.x":                        false,
		"-relay.internal":                false,
	} {
		if got := sentryAcceptsHost(host); got != want {
			t.Errorf("sentryAcceptsHost(%q) = %v, want %v", host, got, want)
		}
	}
}

type composeOverride struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Restart     string            `yaml:"restart"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Networks    map[string]struct {
			Aliases []string `yaml:"aliases"`
		} `yaml:"networks"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

var webhookURL = regexp.MustCompile(`http://([^/:\s` + "`" + `]+):(\d+)/sentry/webhook`)

// TestComposeOverride checks deploy/compose/docker-compose.override.yml and
// its README recipe: the relay on Sentry's default network under a dotted
// alias that Sentry's URL field accepts, the webhook URL using it, the
// chart's image, and restart commands naming the services self-hosted
// really has.
func TestComposeOverride(t *testing.T) {
	const file = "deploy/compose/docker-compose.override.yml"
	dec := yaml.NewDecoder(strings.NewReader(readRepoFile(t, file)))
	dec.KnownFields(true)
	var c composeOverride
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	svc, ok := c.Services["sentry-dingtalk-relay"]
	if !ok {
		t.Fatalf("%s has no service sentry-dingtalk-relay", file)
	}
	repo, appVersion := chartImage(t)
	if svc.Image != repo+":"+appVersion {
		t.Errorf("image = %s, want the chart's %s:%s", svc.Image, repo, appVersion)
	}
	if !slices.Contains(svc.Volumes, "sentry-dingtalk-relay:/data") || c.Volumes == nil {
		t.Errorf("volumes %v, want the named volume sentry-dingtalk-relay on the image's /data", svc.Volumes)
	} else if _, ok := c.Volumes["sentry-dingtalk-relay"]; !ok {
		t.Errorf("the volume sentry-dingtalk-relay is not declared")
	}
	aliases := svc.Networks["default"].Aliases
	if len(aliases) == 0 {
		t.Fatalf("no alias on Sentry's default network: networks = %+v", svc.Networks)
	}
	for _, a := range aliases {
		if !sentryAcceptsHost(a) {
			t.Errorf("alias %q: Sentry's URL field refuses it", a)
		}
	}
	for _, key := range []string{"DINGTALK_TOKENS", "SENTRY_CLIENT_SECRET"} {
		if _, ok := svc.Environment[key]; !ok {
			t.Errorf("environment lacks %s", key)
		}
	}

	section := readmeSection(t, "### docker compose")
	readmeShows(t, "### docker compose", file)
	urls := webhookURL.FindAllStringSubmatch(section, -1)
	var good int
	for _, u := range urls {
		if slices.Contains(aliases, u[1]) && u[2] == "8080" {
			good++
		} else if sentryAcceptsHost(u[1]) {
			t.Errorf("README webhook URL %s does not use the alias %v on port 8080", u[0], aliases)
		}
	}
	if good == 0 {
		t.Errorf("README gives no webhook URL on the alias %v: %v", aliases, urls)
	}

	services := selfHostedServices(t)
	seen := map[string]bool{}
	for _, b := range codeBlocks(section) {
		for _, line := range strings.Split(b.body, "\n") {
			cmd, release, ok := strings.Cut(line, "#")
			args, isRestart := strings.CutPrefix(strings.TrimSpace(cmd), "docker compose restart ")
			if !isRestart {
				continue
			}
			release = strings.TrimSpace(release)
			have, known := services[release]
			if !ok || !known {
				t.Errorf("README restart line %q names no release the test knows (%v)", line, slices.Collect(maps.Keys(services)))
				continue
			}
			seen[release] = true
			named := strings.Fields(args)
			for _, s := range named {
				if !slices.Contains(have, s) {
					t.Errorf("%s: self-hosted has no service %q", release, s)
				}
			}
			// web calls the alert-rule-action URL; the workers send the webhooks.
			for _, s := range []string{"web", "worker", "taskworker"} {
				if slices.Contains(have, s) && !slices.Contains(named, s) {
					t.Errorf("%s: %q does not restart %s, which reads sentry.conf.py and calls the relay", release, line, s)
				}
			}
		}
	}
	for release := range services {
		if !seen[release] {
			t.Errorf("README gives no restart command for %s", release)
		}
	}
}

// selfHostedServices reads testdata/self-hosted-services.txt: release
// label → the services running Sentry's image.
func selfHostedServices(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("testdata/self-hosted-services.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		release, list, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("self-hosted-services.txt: %q", line)
		}
		out[release] = strings.Fields(list)
	}
	return out
}

// iniFile is a systemd unit or a supervisor config: section → key → values
// in order (systemd keys such as Environment= repeat).
type iniFile map[string]map[string][]string

func parseINI(t *testing.T, text string) iniFile {
	t.Helper()
	f := iniFile{}
	var section string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if f[section] == nil {
				f[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("line %d: %q is not key=value in a section", n, line)
			}
			f[section][strings.TrimSpace(k)] = append(f[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return f
}

func (f iniFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := f[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s = %v, want one value", section, key, v)
	}
	return v[0]
}

// secretFiles are the relay's *_FILE variables a recipe must set.
var secretFiles = []string{"DINGTALK_TOKENS_FILE", "DINGTALK_SECRETS_FILE", "SENTRY_CLIENT_SECRET_FILE"}

// loadsConfig checks the relay accepts env, with each secret file written
// where env points.
func loadsConfig(t *testing.T, env map[string]string) {
	t.Helper()
	contents := map[string]string{"DINGTALK_TOKENS_FILE": tok1 + "\n", "DINGTALK_SECRETS_FILE": sec1 + "\n", "SENTRY_CLIENT_SECRET_FILE": "client-secret\n"}
	var environ []string
	for k, v := range env {
		if c, ok := contents[k]; ok {
			if err := os.MkdirAll(filepath.Dir(v), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(v, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatalf("the relay refuses the recipe's environment: %v", err)
	}
	if len(cfg.Robots) != 1 || cfg.Robots[0].DingTalk.Token != tok1 || cfg.Robots[0].DingTalk.Secret != sec1 || cfg.ClientSecret != "client-secret" {
		t.Errorf("the recipe's files did not reach the relay: robots %d, client secret set %v", len(cfg.Robots), cfg.ClientSecret != "")
	}
}

// TestSystemdUnit checks deploy/systemd/sentry-dingtalk-relay.service: a
// dynamic user cannot read root-only secret files, so each secret comes in
// through LoadCredential= and a *_FILE=%d/<id> variable; the queue lives in
// the StateDirectory; the relay accepts the resulting environment.
func TestSystemdUnit(t *testing.T) {
	const file = "deploy/systemd/sentry-dingtalk-relay.service"
	u := parseINI(t, readRepoFile(t, file))
	readmeShows(t, "### systemd", file)
	if got := u.one(t, "Service", "DynamicUser"); got != "yes" {
		t.Errorf("DynamicUser = %s, want yes", got)
	}
	if got := u.one(t, "Service", "ExecStart"); got != "/usr/local/bin/sentry-dingtalk-relay serve" {
		t.Errorf("ExecStart = %s", got)
	}
	state := u.one(t, "Service", "StateDirectory")
	creds := map[string]string{}
	for _, lc := range u["Service"]["LoadCredential"] {
		id, path, ok := strings.Cut(lc, ":")
		if !ok || !filepath.IsAbs(path) {
			t.Errorf("LoadCredential=%s, want id:/absolute/path", lc)
		}
		creds[id] = path
	}
	env := map[string]string{}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if want := "/var/lib/" + state; env["RELAY_DATA_DIR"] != want {
		t.Errorf("RELAY_DATA_DIR = %q, want the StateDirectory %s", env["RELAY_DATA_DIR"], want)
	}
	used := map[string]bool{}
	for _, name := range secretFiles {
		id, ok := strings.CutPrefix(env[name], "%d/")
		if _, loaded := creds[id]; !ok || !loaded {
			t.Errorf("%s = %q, want %%d/<id> of a LoadCredential= (%v)", name, env[name], creds)
		}
		used[id] = true
		if _, plain := env[strings.TrimSuffix(name, "_FILE")]; plain {
			t.Errorf("the unit sets %s in plain text", strings.TrimSuffix(name, "_FILE"))
		}
	}
	for id := range creds {
		if !used[id] {
			t.Errorf("credential %s is loaded but no variable reads it", id)
		}
	}

	// The README creates every file the unit loads, root-only.
	section := readmeSection(t, "### systemd")
	for _, path := range creds {
		if want := "install -m 0600 /dev/null " + path; !strings.Contains(section, want) {
			t.Errorf("README systemd lacks %q", want)
		}
	}
	if !strings.Contains(section, "install -m 0644 "+file+" /etc/systemd/system/") {
		t.Errorf("README systemd does not install %s", file)
	}
	if want := "RELAY_DATA_DIR=" + env["RELAY_DATA_DIR"]; !strings.Contains(section, want) {
		t.Errorf("README systemd's deadletters command lacks %s", want)
	}

	// What systemd hands the relay: %d is the credentials directory.
	dir := t.TempDir()
	expanded := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(v, "%d/") {
			v = filepath.Join(dir, "credentials", strings.TrimPrefix(v, "%d/"))
		} else if k == "RELAY_DATA_DIR" {
			v = filepath.Join(dir, "state")
		}
		expanded[k] = v
	}
	loadsConfig(t, expanded)
}

var supervisorEnv = regexp.MustCompile(`([A-Z_]+)="([^"]*)"`)

// TestRecipeSupervisor checks deploy/supervisor/sentry-dingtalk-relay.conf:
// the user it runs as is created, owns the state directory and can read
// the secret files, and the relay accepts the environment.
func TestRecipeSupervisor(t *testing.T) {
	const file = "deploy/supervisor/sentry-dingtalk-relay.conf"
	f := parseINI(t, readRepoFile(t, file))
	readmeShows(t, "### supervisor", file)
	const program = "program:sentry-dingtalk-relay"
	if got := f.one(t, program, "command"); got != "/usr/local/bin/sentry-dingtalk-relay serve" {
		t.Errorf("command = %s", got)
	}
	user := f.one(t, program, "user")
	env := map[string]string{}
	for _, m := range supervisorEnv.FindAllStringSubmatch(f.one(t, program, "environment"), -1) {
		env[m[1]] = m[2]
	}
	state := env["RELAY_DATA_DIR"]
	if state == "" || f.one(t, program, "directory") != state {
		t.Errorf("RELAY_DATA_DIR = %q, directory = %q: want the state directory in both", state, f.one(t, program, "directory"))
	}
	section := readmeSection(t, "### supervisor")
	for _, want := range []string{
		"useradd --system --home-dir " + state + " --shell /usr/sbin/nologin " + user,
		"install -d -o " + user + " -g " + user + " -m 0750 " + state,
		"install -m 0644 " + file + " /etc/supervisor/conf.d/",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("README supervisor lacks %q", want)
		}
	}
	dir := t.TempDir()
	for _, name := range secretFiles {
		path := env[name]
		if want := "install -m 0640 -g " + user + " /dev/null " + path; path == "" || !strings.Contains(section, want) {
			t.Errorf("%s = %q: README supervisor lacks %q", name, path, want)
		}
		env[name] = filepath.Join(dir, path)
	}
	env["RELAY_DATA_DIR"] = filepath.Join(dir, state)
	loadsConfig(t, env)
}
