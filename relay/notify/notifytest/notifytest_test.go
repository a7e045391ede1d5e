package notifytest_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify/notifytest"
)

// service is a minimal service double: it records every call under the
// request's key and answers {"ok":true}.
type service struct {
	mu      sync.Mutex
	handled int
	seen    []time.Time
}

func (s *service) answer(r *http.Request, clock func() time.Time, calls *notifytest.Calls) notifytest.Answer {
	now := clock()
	calls.Record(r.URL.Query().Get("key"), now)
	s.mu.Lock()
	s.handled++
	s.seen = append(s.seen, now)
	s.mu.Unlock()
	return notifytest.Answer{Body: []byte(`{"ok":true}`)}
}

func (s *service) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled
}

// client is how a test reaches a double: over a loopback socket or
// through its in-memory Transport.
type client struct {
	name string
	do   func(t *testing.T, d *notifytest.Double, target string) (*http.Response, error)
}

var clients = []client{
	{"socket", func(t *testing.T, d *notifytest.Double, target string) (*http.Response, error) {
		ts := httptest.NewServer(d)
		t.Cleanup(ts.Close)
		return ts.Client().Post(ts.URL+target, "application/json", strings.NewReader("{}"))
	}},
	{"transport", func(t *testing.T, d *notifytest.Double, target string) (*http.Response, error) {
		c := &http.Client{Transport: d.Transport()}
		return c.Post("http://service.test"+target, "application/json", strings.NewReader("{}"))
	}},
}

func TestFaults(t *testing.T) {
	const target = "/send?key=k&sign=a%2Bb%2F%3D"
	for _, c := range []struct {
		name        string
		fault       notifytest.Fault
		wantErr     bool
		wantStatus  int
		wantType    string
		wantBody    []string
		wantHandled int
	}{
		{name: "none", wantStatus: 200, wantType: "application/json", wantBody: []string{`{"ok":true}`}, wantHandled: 1},
		{name: "bad gateway", fault: notifytest.FaultBadGateway, wantStatus: 502, wantType: "text/html", wantBody: []string{"502 Bad Gateway"}},
		{name: "reset", fault: notifytest.FaultReset, wantErr: true},
		{name: "lost reply", fault: notifytest.FaultLostReply, wantErr: true, wantHandled: 1},
		{name: "echo", fault: notifytest.FaultEcho, wantStatus: 200, wantType: "text/html", wantBody: []string{"POST " + target, "sign=a+b/="}},
	} {
		for _, cl := range clients {
			t.Run(c.name+"/"+cl.name, func(t *testing.T) {
				svc := &service{}
				d := notifytest.New(svc.answer)
				d.Faults(c.fault, 1)
				resp, err := cl.do(t, d, target)
				if c.wantErr {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("status %d, want a failed connection", resp.StatusCode)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != c.wantStatus || resp.Header.Get("Content-Type") != c.wantType {
						t.Errorf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Type"), c.wantStatus, c.wantType)
					}
					for _, want := range c.wantBody {
						if !strings.Contains(string(body), want) {
							t.Errorf("body %q does not hold %q", body, want)
						}
					}
				}
				if got := svc.count(); got != c.wantHandled {
					t.Errorf("the service handled %d requests, want %d", got, c.wantHandled)
				}
				if got := d.MaxInWindow("k", time.Hour); got != c.wantHandled {
					t.Errorf("%d calls recorded, want %d", got, c.wantHandled)
				}
				if d.Requests() != 1 {
					t.Errorf("%d requests counted, want 1", d.Requests())
				}
			})
		}
	}
}

func TestTransportResetIsConnReset(t *testing.T) {
	d := notifytest.New((&service{}).answer)
	d.Faults(notifytest.FaultReset, 1)
	_, err := (&http.Client{Transport: d.Transport()}).Get("http://service.test/")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("err = %v, want ECONNRESET", err)
	}
}

// TestFaultsCountAndShare: Faults fails the next n requests only,
// FaultShare a share of all from then on, drawn the same on every run,
// and each ends the other.
func TestFaultsCountAndShare(t *testing.T) {
	const n = 300
	failures := func(d *notifytest.Double) []bool {
		c := &http.Client{Transport: d.Transport()}
		out := make([]bool, n)
		for i := range out {
			resp, err := c.Get("http://service.test/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out[i] = resp.StatusCode != 200
		}
		return out
	}
	count := func(fs []bool) int {
		k := 0
		for _, f := range fs {
			if f {
				k++
			}
		}
		return k
	}
	for _, c := range []struct {
		name     string
		set      func(d *notifytest.Double)
		min, max int
	}{
		{"next 2", func(d *notifytest.Double) { d.Faults(notifytest.FaultBadGateway, 2) }, 2, 2},
		{"none", func(d *notifytest.Double) { d.Faults(notifytest.FaultBadGateway, 0) }, 0, 0},
		{"a third", func(d *notifytest.Double) { d.FaultShare(notifytest.FaultBadGateway, 1.0/3) }, n/3 - 30, n/3 + 30},
		{"all", func(d *notifytest.Double) { d.FaultShare(notifytest.FaultBadGateway, 1) }, n, n},
		{"share ended by Faults", func(d *notifytest.Double) {
			d.FaultShare(notifytest.FaultBadGateway, 1)
			d.Faults(notifytest.FaultBadGateway, 1)
		}, 1, 1},
		{"count ended by FaultShare", func(d *notifytest.Double) {
			d.Faults(notifytest.FaultBadGateway, n)
			d.FaultShare(notifytest.FaultBadGateway, 0)
		}, 0, 0},
		{"no fault kind", func(d *notifytest.Double) { d.FaultShare(0, 1) }, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := notifytest.New((&service{}).answer)
			c.set(d)
			got := failures(d)
			if k := count(got); k < c.min || k > c.max {
				t.Errorf("%d of %d requests failed, want %d..%d", k, n, c.min, c.max)
			}
			if c.min == c.max && c.min > 0 && c.min < n && (!got[c.min-1] || got[c.min]) {
				t.Errorf("the failures are not the first %d requests", c.min)
			}
			again := notifytest.New((&service{}).answer)
			c.set(again)
			for i, f := range failures(again) {
				if f != got[i] {
					t.Fatalf("request %d: failed %v, and %v on a new double", i, got[i], f)
				}
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	for _, c := range []struct {
		name       string
		answer     notifytest.Answer
		wantStatus string
		wantType   string
	}{
		{"zero status", notifytest.Answer{Body: []byte("{}")}, "200 OK", "application/json"},
		{"status and header", notifytest.Answer{Status: 429, Header: http.Header{"Content-Type": {"text/plain"}, "Retry-After": {"7"}}, Body: []byte("slow")}, "429 Too Many Requests", "text/plain"},
	} {
		for _, cl := range clients {
			t.Run(c.name+"/"+cl.name, func(t *testing.T) {
				d := notifytest.New(func(*http.Request, func() time.Time, *notifytest.Calls) notifytest.Answer { return c.answer })
				resp, err := cl.do(t, d, "/")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.Status != c.wantStatus || resp.Header.Get("Content-Type") != c.wantType || string(body) != string(c.answer.Body) || resp.ContentLength != int64(len(body)) {
					t.Errorf("%q %q %d %q, want %q %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.ContentLength, body, c.wantStatus, c.wantType, c.answer.Body)
				}
				if want := c.answer.Header.Get("Retry-After"); resp.Header.Get("Retry-After") != want {
					t.Errorf("Retry-After %q, want %q", resp.Header.Get("Retry-After"), want)
				}
			})
		}
	}
}

// TestHandlerReset: a service's own answer may reset the connection.
func TestHandlerReset(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			d := notifytest.New(func(*http.Request, func() time.Time, *notifytest.Calls) notifytest.Answer {
				return notifytest.Answer{Reset: true}
			})
			if resp, err := cl.do(t, d, "/"); err == nil {
				resp.Body.Close()
				t.Errorf("status %d, want a failed connection", resp.StatusCode)
			}
		})
	}
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestTransportClosesTheBody(t *testing.T) {
	for _, fault := range []notifytest.Fault{0, notifytest.FaultReset} {
		d := notifytest.New((&service{}).answer)
		d.Faults(fault, 1)
		body := &closeCounter{Reader: strings.NewReader("{}")}
		req, _ := http.NewRequest(http.MethodPost, "http://service.test/", body)
		if resp, err := d.Transport().RoundTrip(req); err == nil {
			resp.Body.Close()
		}
		if body.closed == 0 {
			t.Errorf("fault %d: the request body was not closed", fault)
		}
	}
}

func TestClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{}
		d := notifytest.New(svc.answer)
		c := &http.Client{Transport: d.Transport()}
		get := func() {
			resp, err := c.Get("http://service.test/?key=k")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		get()
		fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		d.Now = func() time.Time { return fixed }
		get()
		if want := []time.Time{time.Now(), fixed}; len(svc.seen) != 2 || !svc.seen[0].Equal(want[0]) || !svc.seen[1].Equal(want[1]) {
			t.Errorf("the handler's clock read %v, want %v", svc.seen, want)
		}
	})
}

func TestRequestsUnderLoad(t *testing.T) {
	svc := &service{}
	d := notifytest.New(svc.answer)
	d.FaultShare(notifytest.FaultReset, 0.5)
	c := &http.Client{Transport: d.Transport()}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				if resp, err := c.Post("http://service.test/?key=k", "application/json", strings.NewReader("{}")); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if d.Requests() != 200 || svc.count() >= 200 || svc.count() == 0 {
		t.Errorf("%d requests, %d handled; want 200, some but not all", d.Requests(), svc.count())
	}
}

func TestCalls(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(secs ...int) []time.Time {
		var out []time.Time
		for _, s := range secs {
			out = append(out, t0.Add(time.Duration(s)*time.Second))
		}
		return out
	}
	for _, c := range []struct {
		name       string
		calls      []time.Time
		window     time.Duration
		wantMax    int
		now        time.Time
		wantRecent int
	}{
		{name: "none", window: time.Minute, now: t0},
		{name: "one", calls: at(0), window: time.Minute, wantMax: 1, now: t0, wantRecent: 1},
		{name: "all within", calls: at(0, 10, 59), window: time.Minute, wantMax: 3, now: t0.Add(59 * time.Second), wantRecent: 3},
		{name: "a window apart is two windows", calls: at(0, 60), window: time.Minute, wantMax: 1, now: t0.Add(time.Minute), wantRecent: 1},
		{name: "the densest window", calls: at(0, 50, 55, 58, 100, 170), window: time.Minute, wantMax: 4, now: t0.Add(171 * time.Second), wantRecent: 1},
		{name: "second windows", calls: at(0, 0, 0, 1, 1), window: time.Second, wantMax: 3, now: t0.Add(time.Second), wantRecent: 2},
		{name: "a later clock sees none", calls: at(0, 1), window: time.Minute, wantMax: 2, now: t0.Add(time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls notifytest.Calls
			for _, at := range c.calls {
				calls.Record("k", at)
				calls.Record("other", at)
			}
			calls.Record("other", t0)
			if got := calls.MaxInWindow("k", c.window); got != c.wantMax {
				t.Errorf("MaxInWindow = %d, want %d", got, c.wantMax)
			}
			recent := calls.Recent("k", c.now, c.window)
			if len(recent) != c.wantRecent {
				t.Errorf("Recent = %v, want %d calls", recent, c.wantRecent)
			}
			for i := 1; i < len(recent); i++ {
				if recent[i].Before(recent[i-1]) {
					t.Errorf("Recent = %v, not oldest first", recent)
				}
			}
		})
	}
}

// TestMaxInWindowReadsTheHandlersCalls: what a handler records is what the
// double reports, per key.
func TestMaxInWindowReadsTheHandlersCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := notifytest.New((&service{}).answer)
		c := &http.Client{Transport: d.Transport()}
		for i := range 5 {
			for _, key := range []string{"a", "b"}[:1+i%2] {
				resp, err := c.Get("http://service.test/?key=" + key)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			time.Sleep(20 * time.Second)
		}
		if a, b := d.MaxInWindow("a", time.Minute), d.MaxInWindow("b", time.Minute); a != 3 || b != 2 {
			t.Errorf("MaxInWindow a %d b %d, want 3 and 2", a, b)
		}
	})
}

func TestScript(t *testing.T) {
	var s notifytest.Script[string]
	if _, ok := s.Next(""); ok {
		t.Fatal("an empty script gave a reply")
	}
	s.Add("a", "a1", "a2")
	s.Add("", "x")
	s.Add("a", "a3")
	for _, want := range []struct {
		key, reply string
		ok         bool
	}{
		{"a", "a1", true}, {"", "x", true}, {"a", "a2", true}, {"a", "a3", true}, {"a", "", false}, {"", "", false}, {"b", "", false},
	} {
		if got, ok := s.Next(want.key); got != want.reply || ok != want.ok {
			t.Errorf("Next(%q) = %q %v, want %q %v", want.key, got, ok, want.reply, want.ok)
		}
	}
}
