package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The wire client must read each answer whole, reuse kept-alive
// connections, and drop one the server closes.
func TestWireClient(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sentry-Hook-Resource") != "event_alert" || r.ContentLength != 2 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"status":"queued"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := &wireClient{addr: strings.TrimPrefix(srv.URL, "http://"), idle: make(chan *wireConn, 4)}
	raw := func(query string) []byte {
		return []byte("POST /sentry/webhook" + query + " HTTP/1.1\r\nHost: relay\r\nSentry-Hook-Resource: event_alert\r\nContent-Length: 2\r\n\r\n{}")
	}
	for i := range 3 {
		status, wrote, err := c.do(raw(""))
		if err != nil || status != http.StatusAccepted || wrote.IsZero() {
			t.Fatalf("request %d: status %d, wrote %v, err %v", i, status, wrote, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sequential requests; want 1 kept alive", n)
	}
	if status, _, err := c.do(raw("?close=1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("closing answer: %d, %v", status, err)
	}
	if status, _, err := c.do(raw("")); err != nil || status != http.StatusAccepted {
		t.Fatalf("after a closed connection: %d, %v", status, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want a new one after the server closed the first", n)
	}
}

func TestProbeDisk(t *testing.T) {
	lats, err := probeDisk(200, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(lats) != 20 || lats[0] <= 0 {
		t.Errorf("%d latencies, first %v; want 20 positive ones", len(lats), lats)
	}
}
