package relay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadyz(t *testing.T) {
	r, err := New(Options{DataDir: t.TempDir(), RatePerMinute: 18, MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r.readyOnce = 0 // check the store on every probe
	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := probe(); code != 200 {
		t.Fatalf("readyz %d %q", code, body)
	}
	r.draining.Store(true)
	if code, body := probe(); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("draining: %d %q", code, body)
	}
	r.draining.Store(false)
	r.Close()
	if code, body := probe(); code != 503 || !strings.Contains(body, "queue not writable") {
		t.Errorf("store closed: %d %q", code, body)
	}
	// healthz does not depend on the store.
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("healthz %d", rec.Code)
	}
}
