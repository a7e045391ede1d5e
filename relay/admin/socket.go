package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"
)

// SocketPath is the path of the admin socket in a data directory.
func SocketPath(dataDir string) string {
	return filepath.Join(dataDir, "admin.sock")
}

// Server serves the admin service on a Unix socket in the data directory.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	path string
}

// Listen opens the admin socket in dataDir (mode 0600). wake is told the
// receivers whose dead letters were replayed; extra are more handlers the
// relay serves there (path to handler).
func Listen(dataDir string, svc *Service, wake func(keys []string), log *slog.Logger, extra map[string]http.Handler) (*Server, error) {
	path := SocketPath(dataDir)
	// The relay holds the store's lock, so a socket file left here is stale.
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /deadletters", func(w http.ResponseWriter, req *http.Request) {
		list, err := svc.List(req.Context())
		answer(w, list, err)
	})
	mux.HandleFunc("POST /deadletters/replay", func(w http.ResponseWriter, req *http.Request) {
		var rr ReplayRequest
		if err := json.NewDecoder(req.Body).Decode(&rr); err != nil {
			answer(w, nil, fmt.Errorf("bad request: %w", err))
			return
		}
		res, err := svc.Replay(req.Context(), rr)
		if err == nil {
			wake(res.Keys)
			log.Info("dead letters replayed", "count", res.Replayed, "robots", res.Robots)
		}
		answer(w, res, err)
	})
	for p, h := range extra {
		mux.Handle(p, h)
	}
	// Profiles are served here, not on the public port: only who can reach
	// the data directory can take them.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, path: path}, nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops serving and removes the socket.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

func answer(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// Client talks to a running relay's admin socket.
type Client struct {
	http *http.Client
}

// Dial returns a client for the admin socket of the relay running on
// dataDir, or an error when no relay answers there.
func Dial(dataDir string) (*Client, error) {
	path := SocketPath(dataDir)
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return &Client{http: &http.Client{
		Timeout: 30 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}, nil
}

// List lists dead letters.
func (c *Client) List(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := c.Call(ctx, http.MethodGet, "/deadletters", nil, &out)
	return out, err
}

// Replay replays dead letters.
func (c *Client) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	var out ReplayResult
	err := c.Call(ctx, http.MethodPost, "/deadletters/replay", req, &out)
	return out, err
}

// Call sends in (JSON, or no body when nil) to path and decodes the answer
// into out; an answer other than 200 is an error with the relay's reason.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://relay"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
			return fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
		}
		return errors.New(e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
