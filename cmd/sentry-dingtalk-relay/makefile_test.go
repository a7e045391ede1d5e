package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipeFormatCheckWorksWithoutGit: make test's gofmt check must see
// the files of a tree that is not a git checkout (a tarball, a copy), and
// fail on a file gofmt cannot read.
func TestRecipeFormatCheckWorksWithoutGit(t *testing.T) {
	makefile := readRepoFile(t, "Makefile")
	for _, tc := range []struct {
		name, src string
		fails     bool
	}{
		{"formatted", "package a\n\nfunc F() {}\n", false},
		{"unformatted", "package a\nfunc  F(){}\n", true},
		{"unparsable", "package a\nfunc (\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(makefile), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "pkg", "a"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "pkg", "a", "a.go"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("make", "-s", "fmt-check")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if tc.fails != (err != nil) {
				t.Errorf("make fmt-check: %v, want failure %v:\n%s", err, tc.fails, out.String())
			}
			if tc.fails && !strings.Contains(out.String(), "a.go") {
				t.Errorf("make fmt-check does not name the file:\n%s", out.String())
			}
		})
	}
}
