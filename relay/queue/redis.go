package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared store of several relay replicas: one Redis stream per
// robot, read through a consumer group, so an entry a replica took but
// never acknowledged (it died mid-send) is claimed by another after
// ClaimIdle. Dedupe keys are SET NX with the dedupe window; the queue keys
// never expire (Redis may evict keys with a TTL). While Redis cannot be
// reached, accepted alerts go to a local spool (a Bolt store in the data
// directory) and move to Redis when it answers again.
//
// Every key shares the hash tag {sdr}, so the multi-key scripts also run on
// a Redis Cluster (on one node). Only Redis 6.2 commands are used: what
// self-hosted Sentry runs.
type Redis struct {
	client   *redis.Client
	consumer string
	window   time.Duration
	now      func() time.Time
	notify   func(robot string)
	log      *slog.Logger
	spool    *Bolt
	spools   []*Bolt // the spool, and a bbolt queue left from before Redis
	timeout  time.Duration

	mu        sync.Mutex
	groups    map[string]bool // streams whose consumer group exists
	held      map[string]bool // robots whose lease this replica holds
	depth     map[string]int  // last XLEN seen, per robot
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	// DedupeWindow is how long a dedupe key is remembered.
	DedupeWindow time.Duration
	// Now is the clock of the times the store records (when a dead letter
	// was buried, a replay's new age); nil means time.Now. Dedupe windows
	// and claims run on Redis's clock.
	Now func() time.Time
	// SpoolDir holds the local spool used while Redis is unreachable.
	SpoolDir string
	// Notify is called with a robot once new deliveries for it can be read.
	Notify func(robot string)
	// Log receives the store's errors; nil discards.
	Log *slog.Logger
	// Consumer names this replica in the consumer groups; "" makes one
	// from the host name and a random suffix.
	Consumer string
	// Timeout bounds each Redis call; 0 means 2 s.
	Timeout time.Duration
	// Migrate is the data directory of a relay that ran on bbolt: alerts
	// still queued there move to Redis. "" or no queue file: nothing to do.
	Migrate string
}

// Key names. The {sdr} hash tag keeps every key in one cluster slot.
const (
	keyPrefix = "{sdr}:"
	groupName = "relay"
	// ClaimIdle is how long an entry read by a replica may stay
	// unacknowledged before another replica takes it over.
	ClaimIdle = 30 * time.Second
)

func streamKey(robot string) string { return keyPrefix + "q:" + robot }

var (
	keyDead = keyPrefix + "dead"
	keyPing = keyPrefix + "ping"
)

func dedupeRedisKey(key string) string { return keyPrefix + "dd:" + hex.EncodeToString(hashKey(key)) }

// OpenRedis connects to the Redis at url (redis:// or rediss://, password
// and database in the URL) and opens the local spool.
func OpenRedis(url string, opts RedisOptions) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("queue: RELAY_REDIS_URL: %w", redactRedis(err, url))
	}
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 2 * time.Second
	o.WriteTimeout = 2 * time.Second
	spool, err := OpenBolt(opts.SpoolDir, BoltOptions{DedupeWindow: opts.DedupeWindow, Now: opts.Now, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	r := &Redis{
		client: redis.NewClient(o), consumer: opts.Consumer, window: opts.DedupeWindow, now: opts.Now,
		notify: opts.Notify, log: opts.Log, spool: spool, timeout: opts.Timeout,
		groups: map[string]bool{}, held: map[string]bool{}, depth: map[string]int{},
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.timeout == 0 {
		r.timeout = 2 * time.Second
	}
	if r.consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		r.consumer = host + "-" + hex.EncodeToString(b[:])
	}
	r.spools = []*Bolt{spool}
	if opts.Migrate != "" {
		if _, err := os.Stat(filepath.Join(opts.Migrate, FileName)); err == nil {
			old, err := OpenBolt(opts.Migrate, BoltOptions{Log: opts.Log})
			if err != nil {
				spool.Close()
				return nil, fmt.Errorf("queue: open the bbolt queue to move to Redis: %w", err)
			}
			if robots := old.Robots(); len(robots) > 0 {
				r.log.Warn("alerts queued before the switch to Redis move there", "dir", opts.Migrate, "robots", len(robots))
			}
			r.spools = append(r.spools, old)
		}
	}
	go r.unspool()
	return r, nil
}

// redactRedis keeps a Redis URL's password out of an error.
func redactRedis(err error, url string) error {
	if i := strings.Index(url, "@"); i > 0 {
		return errors.New(strings.ReplaceAll(err.Error(), url[:i], "redis://…"))
	}
	return err
}

// Close stops moving the spool, hands back the robots' leases (so another
// replica takes over at once, not when they lapse) and closes the
// connections.
func (r *Redis) Close() error {
	first := false
	r.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	close(r.stop)
	<-r.stopped
	r.mu.Lock()
	held := r.held
	r.held = map[string]bool{}
	r.mu.Unlock()
	for robot := range held {
		ctx, cancel := r.ctx(context.Background())
		releaseScript.Run(ctx, r.client, []string{leaseKey(robot)}, r.consumer)
		cancel()
	}
	var err error
	for _, sp := range r.spools {
		if cerr := sp.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := r.client.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *Redis) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, r.timeout)
}

// storedDelivery is a stream entry.
type storedDelivery struct {
	AlertID  string          `json:"alert_id"`
	Alert    json.RawMessage `json:"alert"`
	Mentions json.RawMessage `json:"mentions"`
	Type     string          `json:"type,omitempty"`
	Note     string          `json:"note,omitempty"`
	Accepted time.Time       `json:"accepted"`
}

// encodeEntry is a stream entry's JSON. Its parts are strings, slices and
// times: encoding cannot fail.
func encodeEntry(alertID string, alert []byte, t Target, accepted time.Time) []byte {
	m, _ := json.Marshal(t.Mentions)
	b, _ := json.Marshal(storedDelivery{AlertID: alertID, Alert: alert, Mentions: m, Type: t.Type, Note: t.Note, Accepted: accepted})
	return b
}

// deliveryEntry is the stream entry of a delivery moved or replayed into Redis.
func deliveryEntry(d Delivery, accepted time.Time) []byte {
	alert, _ := json.Marshal(d.Alert)
	return encodeEntry(d.AlertID, alert, Target{Mentions: d.Mentions, Type: d.Type, Note: d.Note}, accepted)
}

// enqueueScript sets the dedupe key (if any) and adds one entry per robot,
// atomically. KEYS: dedupe key, then the robots' streams. ARGV: window in
// ms, whether to dedupe, then each stream's entry.
var enqueueScript = redis.NewScript(`
if ARGV[2] == '1' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
    return 0
  end
end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], '*', 'd', ARGV[i + 1])
end
return 1
`)

// Enqueue stores a submission in Redis, or in the local spool when Redis
// cannot be reached.
func (r *Redis) Enqueue(ctx context.Context, sub Submission) (dup bool, err error) {
	alert, err := json.Marshal(sub.Alert)
	if err != nil {
		return false, fmt.Errorf("queue: encode alert: %w", err)
	}
	keys := []string{dedupeRedisKey(sub.DedupeKey)}
	dedupe := "0"
	window := r.window
	if sub.DedupeFor > 0 {
		window = sub.DedupeFor
	}
	if sub.DedupeKey != "" && window > 0 {
		dedupe = "1"
	}
	args := []any{window.Milliseconds(), dedupe}
	size := 0
	for _, t := range sub.Targets {
		keys = append(keys, streamKey(t.Robot))
		entry := encodeEntry(sub.AlertID, alert, t, sub.Accepted)
		size += len(entry)
		args = append(args, entry)
	}
	if size > MaxRecord {
		return false, tooLarge(size)
	}
	cctx, cancel := r.ctx(ctx)
	defer cancel()
	res, err := enqueueScript.Run(cctx, r.client, keys, args...).Int()
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// Redis is unreachable (or refuses): keep the alert locally.
		r.log.Warn("Redis unreachable; spooling the alert locally", "err", err)
		return r.spool.Enqueue(ctx, sub)
	}
	if res == 0 {
		return true, nil
	}
	if r.notify != nil {
		for _, t := range sub.Targets {
			r.notify(t.Robot)
		}
	}
	return false, nil
}

// unspool moves alerts spooled during a Redis outage into Redis.
func (r *Redis) unspool() {
	defer close(r.stopped)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	spools:
		for _, sp := range r.spools {
			for _, robot := range sp.Robots() {
				if err := r.moveSpool(sp, robot); err != nil {
					r.log.Debug("spooled alerts wait for Redis", "robot", robot, "err", err)
					break spools
				}
			}
		}
	}
}

func (r *Redis) moveSpool(sp *Bolt, robot string) error {
	ctx, cancel := r.ctx(context.Background())
	defer cancel()
	ds, err := sp.Pending(ctx, robot, 500)
	if err != nil || len(ds) == 0 {
		return err
	}
	pipe := r.client.TxPipeline()
	var ids []string
	for _, d := range ds {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: streamKey(robot), Values: []any{"d", deliveryEntry(d, d.Accepted)}})
		ids = append(ids, d.ID)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if err := sp.Ack(ctx, robot, ids); err != nil {
		return err
	}
	r.log.Info("spooled alerts moved to Redis", "robot", robot, "alerts", len(ids))
	if r.notify != nil {
		r.notify(robot)
	}
	return nil
}

func (r *Redis) ensureGroup(ctx context.Context, robot string) error {
	r.mu.Lock()
	ok := r.groups[robot]
	r.mu.Unlock()
	if ok {
		return nil
	}
	err := r.client.XGroupCreateMkStream(ctx, streamKey(robot), groupName, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	r.mu.Lock()
	r.groups[robot] = true
	r.mu.Unlock()
	return nil
}

// Pending returns up to max deliveries waiting for robot, oldest first:
// entries of replicas that stopped acknowledging (claimed), this replica's
// own unacknowledged ones, and new ones.
func (r *Redis) Pending(ctx context.Context, robot string, max int) ([]Delivery, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.ensureGroup(ctx, robot); err != nil {
		return nil, fmt.Errorf("queue: %s: %w", robot, err)
	}
	stream := streamKey(robot)
	seen := map[string]bool{}
	var msgs []redis.XMessage
	add := func(ms []redis.XMessage) {
		for _, m := range ms {
			if !seen[m.ID] && m.Values != nil {
				seen[m.ID] = true
				msgs = append(msgs, m)
			}
		}
	}
	claimed, _, err := r.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: groupName, Consumer: r.consumer, MinIdle: ClaimIdle, Start: "0-0", Count: int64(max),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: claim %s: %w", robot, err)
	}
	add(claimed)
	for _, id := range []string{"0", ">"} {
		if len(msgs) >= max {
			break
		}
		res, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: groupName, Consumer: r.consumer, Streams: []string{stream, id}, Count: int64(max - len(msgs)), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				r.mu.Lock()
				delete(r.groups, robot)
				r.mu.Unlock()
			}
			return nil, fmt.Errorf("queue: read %s: %w", robot, err)
		}
		for _, s := range res {
			add(s.Messages)
		}
	}
	slices.SortFunc(msgs, func(a, b redis.XMessage) int { return compareIDs(a.ID, b.ID) })
	if len(msgs) > max {
		msgs = msgs[:max]
	}
	out := make([]Delivery, 0, len(msgs))
	var bad []string
	for i, m := range msgs {
		pause(i)
		d, err := decodeEntry(robot, m)
		if err != nil {
			r.log.Error("undecodable queue entry; moving it to the dead letters", "robot", robot, "id", m.ID, "err", err)
			bad = append(bad, m.ID)
			continue
		}
		out = append(out, d)
	}
	if len(bad) > 0 {
		if err := r.Bury(ctx, robot, bad, "undecodable queue entry"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeEntry(robot string, m redis.XMessage) (Delivery, error) {
	raw, _ := m.Values["d"].(string)
	var sd storedDelivery
	if err := json.Unmarshal([]byte(raw), &sd); err != nil {
		return Delivery{}, err
	}
	d := Delivery{ID: m.ID, AlertID: sd.AlertID, Robot: robot, Type: sd.Type, Note: sd.Note, Accepted: sd.Accepted}
	if err := json.Unmarshal(sd.Alert, &d.Alert); err != nil {
		return Delivery{}, err
	}
	if len(sd.Mentions) > 0 {
		if err := json.Unmarshal(sd.Mentions, &d.Mentions); err != nil {
			return Delivery{}, err
		}
	}
	return d, nil
}

// compareIDs orders stream IDs "ms-seq".
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if len(am) != len(bm) {
		return len(am) - len(bm)
	}
	if c := strings.Compare(am, bm); c != 0 {
		return c
	}
	if len(as) != len(bs) {
		return len(as) - len(bs)
	}
	return strings.Compare(as, bs)
}

// Ack removes deliveries the robot accepted.
func (r *Redis) Ack(ctx context.Context, robot string, ids []string) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	pipe := r.client.TxPipeline()
	pipe.XAck(ctx, streamKey(robot), groupName, ids...)
	pipe.XDel(ctx, streamKey(robot), ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: ack %s: %w", robot, err)
	}
	return nil
}

// buryScript moves entries to the dead letters. KEYS: the stream, the dead
// letters. ARGV: group, reason, time, then ids.
var buryScript = redis.NewScript(`
local n = 0
for i = 4, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e == 1 then
    local fields = e[1][2]
    local d = ''
    for j = 1, #fields, 2 do
      if fields[j] == 'd' then d = fields[j + 1] end
    end
    redis.call('XADD', KEYS[2], '*', 'robot', string.sub(KEYS[1], 9), 'd', d, 'reason', ARGV[2], 'buried', ARGV[3])
    n = n + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return n
`)

// Bury turns deliveries into dead letters.
func (r *Redis) Bury(ctx context.Context, robot string, ids []string, reason string) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	args := []any{groupName, reason, r.now().UTC().Format(time.RFC3339Nano)}
	for _, id := range ids {
		args = append(args, id)
	}
	if err := buryScript.Run(ctx, r.client, []string{streamKey(robot), keyDead}, args...).Err(); err != nil {
		return fmt.Errorf("queue: bury %s: %w", robot, err)
	}
	return nil
}

// DeadLetters returns every dead letter, oldest first.
func (r *Redis) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	msgs, err := r.client.XRange(ctx, keyDead, "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("queue: read dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		robot, _ := m.Values["robot"].(string)
		reason, _ := m.Values["reason"].(string)
		buried, _ := m.Values["buried"].(string)
		bt, _ := time.Parse(time.RFC3339Nano, buried)
		d, err := decodeEntry(robot, m)
		if err != nil {
			raw, _ := m.Values["d"].(string)
			out = append(out, DeadLetter{ID: m.ID, Delivery: Delivery{Robot: robot}, Buried: bt, Unreadable: true,
				Reason: reason + " (" + err.Error() + "): " + strconv.Quote(raw)})
			continue
		}
		d.ID = ""
		out = append(out, DeadLetter{ID: m.ID, Delivery: d, Reason: reason, Buried: bt})
	}
	return out, nil
}

// Replay queues dead letters again (see Bolt.Replay).
func (r *Redis) Replay(ctx context.Context, ids []string, robot string) ([]DeadLetter, error) {
	all, err := r.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	var replayed []DeadLetter
	now := r.now()
	for _, dl := range all {
		selected, err := SelectForReplay(dl, ids)
		if err != nil {
			return replayed, err
		}
		if !selected {
			continue
		}
		if robot != "" {
			dl.Delivery.Robot = robot
		}
		d := dl.Delivery
		pipe := r.client.TxPipeline()
		// A replayed alert gets a fresh age, or it would expire again at once.
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: streamKey(d.Robot), Values: []any{"d", deliveryEntry(d, now)}})
		pipe.XDel(ctx, keyDead, dl.ID)
		if _, err := pipe.Exec(ctx); err != nil {
			return replayed, fmt.Errorf("queue: replay: %w", err)
		}
		replayed = append(replayed, dl)
		if r.notify != nil {
			r.notify(d.Robot)
		}
	}
	if len(ids) > 0 && len(replayed) == 0 {
		return nil, ErrNotFound
	}
	return replayed, nil
}

// Depth returns how many deliveries wait for robot (in Redis and spooled).
func (r *Redis) Depth(ctx context.Context, robot string) int {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := r.client.XLen(ctx, streamKey(robot)).Result()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.depth[robot] = int(n)
	}
	return r.depth[robot] + r.spool.Depth(ctx, robot)
}

// Check reports whether alerts can be stored: nil when Redis answers, an
// error wrapping ErrDegraded when only the local spool can take them.
func (r *Redis) Check(ctx context.Context) error {
	cctx, cancel := r.ctx(ctx)
	defer cancel()
	rerr := r.client.Set(cctx, keyPing, "1", time.Minute).Err()
	if rerr == nil {
		return nil
	}
	if serr := r.spool.Check(ctx); serr != nil {
		return fmt.Errorf("Redis unreachable (%v) and the local spool is not writable: %w", rerr, serr)
	}
	return fmt.Errorf("%w: Redis unreachable (%v); alerts are spooled in the data directory", ErrDegraded, rerr)
}

// Sweep expires the spool's dedupe keys; Redis expires its own.
func (r *Redis) Sweep(ctx context.Context) (int, error) {
	return r.spool.Sweep(ctx)
}

// leaseScript takes or renews robot's lease for a consumer.
// KEYS: lease. ARGV: consumer, ttl ms.
var leaseScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// releaseScript drops a lease if the consumer holds it. KEYS: lease.
// ARGV: consumer.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// LeaseTTL is how long a replica keeps draining a robot without renewing.
const LeaseTTL = 15 * time.Second

func leaseKey(robot string) string { return keyPrefix + "lease:" + robot }

// Hold takes or renews this replica's lease on robot: one replica at a time
// drains a robot, so alerts waiting anywhere end up in one digest.
func (r *Redis) Hold(ctx context.Context, robot string) (bool, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := leaseScript.Run(ctx, r.client, []string{leaseKey(robot)}, r.consumer, LeaseTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("queue: lease %s: %w", robot, err)
	}
	r.mu.Lock()
	if n == 1 {
		r.held[robot] = true
	} else {
		delete(r.held, robot)
	}
	r.mu.Unlock()
	return n == 1, nil
}

// Client returns the Redis client, for the shared rate limiter.
func (r *Redis) Client() *redis.Client { return r.client }

// Consumer returns this replica's name in the consumer groups.
func (r *Redis) Consumer() string { return r.consumer }
