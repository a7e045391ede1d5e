// Package sentrytest is the Sentry side of the relay's tests: the webhook
// payloads Sentry sends (testdata/, with their sources in SOURCES.md),
// signed as Sentry signs them. It is the counterpart of dingtalktest.
package sentrytest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed testdata/*.json
var fixtures embed.FS

// Fixtures returns the names of every payload.
func Fixtures() []string {
	entries, _ := fs.ReadDir(fixtures, "testdata")
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

// Fixture returns a payload by file name (event_alert.triggered.json...).
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("sentrytest: no fixture %s", name)
	}
	return b
}

// File writes a payload to a file of its own and returns its path, for
// commands that read a file.
func File(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, Fixture(t, name), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Resource is the Sentry-Hook-Resource a fixture was sent with: the part
// of its name before the first dot; "" for the legacy plugin.
func Resource(name string) string {
	if strings.HasPrefix(name, "legacy_webhook") {
		return ""
	}
	return strings.SplitN(name, ".", 2)[0]
}

// Sign is Sentry's signature of body: lowercase hex HMAC-SHA256 keyed by
// the integration's client secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Request is the webhook Sentry would post to url: body with the
// resource header (none for "", the legacy plugin) and, when secret is
// set, its signature.
func Request(url, resource, secret string, body []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if resource != "" {
		req.Header.Set("Sentry-Hook-Resource", resource)
	}
	if secret != "" {
		req.Header.Set("Sentry-Hook-Signature", Sign(secret, body))
	}
	return req
}
