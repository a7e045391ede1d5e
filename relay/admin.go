package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// DeadLetterStore is what dead-letter administration needs of a store.
type DeadLetterStore interface {
	DeadLetters(ctx context.Context) ([]queue.DeadLetter, error)
	Replay(ctx context.Context, ids []string, robot string) ([]queue.DeadLetter, error)
}

// DeadLetterAdmin lists and replays dead letters, naming robots as the
// configuration does. The `deadletters` commands use it through the running
// relay's admin socket, or directly on the data directory when no relay runs.
type DeadLetterAdmin struct {
	Store DeadLetterStore
	// Robots maps queue keys to robot names.
	Robots map[string]string
}

// DeadLetterView is a dead letter as the deadletters commands show it.
type DeadLetterView struct {
	ID       string    `json:"id"`
	AlertID  string    `json:"alert_id"`
	Robot    string    `json:"robot"`
	Title    string    `json:"title"`
	Project  string    `json:"project,omitempty"`
	Level    string    `json:"level,omitempty"`
	Link     string    `json:"link,omitempty"`
	Reason   string    `json:"reason"`
	Accepted time.Time `json:"accepted"`
	Buried   time.Time `json:"buried"`
	// Unreadable: the stored bytes (quoted in Reason) could not be
	// decoded; listed, never replayed.
	Unreadable bool `json:"unreadable,omitempty"`
}

// ReplayRequest selects dead letters to queue again.
type ReplayRequest struct {
	// IDs are dead-letter or alert IDs.
	IDs []string `json:"ids,omitempty"`
	// All replays every dead letter.
	All bool `json:"all,omitempty"`
	// Robot sends them to this robot instead of the one each was for.
	Robot string `json:"robot,omitempty"`
}

// ReplayResult tells what was queued again.
type ReplayResult struct {
	Replayed int      `json:"replayed"`
	Robots   []string `json:"robots"`
}

func (a *DeadLetterAdmin) robotName(key string) string {
	if n, ok := a.Robots[key]; ok {
		return n
	}
	return key + " (not configured)"
}

// List returns every dead letter, oldest first.
func (a *DeadLetterAdmin) List(ctx context.Context) ([]DeadLetterView, error) {
	dls, err := a.Store.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetterView, len(dls))
	for i, dl := range dls {
		d := dl.Delivery
		out[i] = DeadLetterView{
			ID: dl.ID, AlertID: d.AlertID, Robot: a.robotName(d.Robot), Title: d.Alert.Title,
			Project: d.Alert.DisplayProject(), Level: d.Alert.Level, Link: d.Alert.Link,
			Reason: dl.Reason, Accepted: d.Accepted, Buried: dl.Buried, Unreadable: dl.Unreadable,
		}
	}
	return out, nil
}

// Replay queues the selected dead letters again. Dead letters of robots no
// longer configured need Robot set.
func (a *DeadLetterAdmin) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	if !req.All && len(req.IDs) == 0 {
		return ReplayResult{}, errors.New("name dead letters to replay, or --all")
	}
	target := ""
	if req.Robot != "" {
		for key, name := range a.Robots {
			if name == req.Robot {
				target = key
			}
		}
		if target == "" {
			return ReplayResult{}, fmt.Errorf("unknown robot %q", req.Robot)
		}
	} else {
		dls, err := a.Store.DeadLetters(ctx)
		if err != nil {
			return ReplayResult{}, err
		}
		for _, dl := range dls {
			selected := req.All || slices.Contains(req.IDs, dl.ID) || slices.Contains(req.IDs, dl.Delivery.AlertID)
			// An unreadable one is passed over, or refused by the store
			// when named: its robot does not matter.
			if _, ok := a.Robots[dl.Delivery.Robot]; selected && !ok && !dl.Unreadable {
				return ReplayResult{}, fmt.Errorf("dead letter %s was for a robot that is no longer configured: replay it with --robot NAME", dl.ID)
			}
		}
	}
	ids := req.IDs
	if req.All {
		ids = nil
	}
	replayed, err := a.Store.Replay(ctx, ids, target)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{Replayed: len(replayed), Robots: []string{}}
	for _, dl := range replayed {
		if !slices.Contains(res.Robots, dl.Delivery.Robot) {
			res.Robots = append(res.Robots, dl.Delivery.Robot)
		}
	}
	return res, nil
}

type adminServer struct {
	srv  *http.Server
	ln   net.Listener
	path string
}

// listenAdmin serves dead-letter administration on a Unix socket in the data
// directory: only who can reach the data directory can use it.
func (r *Relay) listenAdmin() (*adminServer, error) {
	path := AdminSocket(r.opts.DataDir)
	// The relay holds the queue's lock, so a socket file left here is stale.
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	names := map[string]string{}
	for _, rb := range r.robots {
		names[rb.Key] = rb.Name
	}
	admin := &DeadLetterAdmin{Store: r.store, Robots: names}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /deadletters", func(w http.ResponseWriter, req *http.Request) {
		list, err := admin.List(req.Context())
		answer(w, list, err)
	})
	mux.HandleFunc("POST /deadletters/replay", func(w http.ResponseWriter, req *http.Request) {
		var rr ReplayRequest
		if err := json.NewDecoder(req.Body).Decode(&rr); err != nil {
			answer(w, nil, fmt.Errorf("bad request: %w", err))
			return
		}
		res, err := admin.Replay(req.Context(), rr)
		if err == nil {
			for _, key := range res.Robots {
				r.dispatcher.Wake(key)
			}
			for i, key := range res.Robots {
				res.Robots[i] = admin.robotName(key)
			}
			r.log.Info("dead letters replayed", "count", res.Replayed, "robots", res.Robots)
		}
		answer(w, res, err)
	})
	// Profiles are served here, not on the public port: only who can reach
	// the data directory can take them.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &adminServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, path: path}, nil
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

// AdminClient talks to a running relay's admin socket.
type AdminClient struct {
	http *http.Client
}

// DialAdmin returns a client for the admin socket of the relay running on
// dataDir, or an error when no relay answers there.
func DialAdmin(dataDir string) (*AdminClient, error) {
	path := AdminSocket(dataDir)
	c := &AdminClient{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

// List lists dead letters.
func (c *AdminClient) List(ctx context.Context) ([]DeadLetterView, error) {
	var out []DeadLetterView
	err := c.call(ctx, http.MethodGet, "/deadletters", nil, &out)
	return out, err
}

// Replay replays dead letters.
func (c *AdminClient) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	var out ReplayResult
	err := c.call(ctx, http.MethodPost, "/deadletters/replay", req, &out)
	return out, err
}

func (c *AdminClient) call(ctx context.Context, method, path string, in, out any) error {
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
