package relay

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/dispatch"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/ratelimit"
)

func TestReadyz(t *testing.T) {
	store, err := queue.OpenBolt(t.TempDir(), queue.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{MaxBodyBytes: 1 << 20, Receivers: []dispatch.Receiver{DryRun(slog.New(slog.DiscardHandler), formatter.Renderer{}, nil)},
		Storage: Storage{Store: store, Limiter: ratelimit.NewWindow(ratelimit.Period, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	r.readyMaxAge = 0 // check the store on every probe
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
