package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is Window's shared form for several relay replicas: a sliding-window
// log per robot in a sorted set, on Redis's own clock (TIME), so the
// replicas share one budget whatever their clocks say. Pacing (a burst,
// then the budget spread evenly) is a token bucket kept next to it. GCRA
// helpers such as redis_rate's PerMinute were measured letting ~39 messages
// through in one window: DingTalk would block the robot.
type Redis struct {
	client   *redis.Client
	period   time.Duration
	consumer string
	now      func() time.Time

	mu   sync.Mutex
	seq  uint64
	last map[string]string // robot -> member of this replica's latest send
}

// NewRedis returns a shared limiter whose budgets are per period (Period,
// outside tests). consumer names this replica (it makes the window's
// members unique); now is the clock Park's deadlines are on (nil:
// time.Now).
func NewRedis(client *redis.Client, period time.Duration, consumer string, now func() time.Time) *Redis {
	if now == nil {
		now = time.Now
	}
	return &Redis{client: client, period: period, consumer: consumer, now: now, last: map[string]string{}}
}

func limiterKeys(robot string) []string {
	p := "{sdr}:rl:" + robot
	return []string{p + ":w", p + ":parked", p + ":pace"}
}

// takeScript records a send if the window and the pacing allow it and
// returns 0, else how many ms to wait. KEYS: window, parked, pace.
// ARGV: limit, period ms, burst, member, most sends per second (0: none).
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, burst, persec = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local parked = redis.call('PTTL', KEYS[2])
if parked > 0 then
  return parked
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + period - now)
end
if persec > 0 then
  local recent = redis.call('ZRANGEBYSCORE', KEYS[1], now - 999, '+inf', 'WITHSCORES')
  if #recent / 2 >= persec then
    return math.max(1, tonumber(recent[2]) + 1000 - now)
  end
end
local pace = redis.call('HMGET', KEYS[3], 'tokens', 'ts')
local tokens, ts = tonumber(pace[1]), tonumber(pace[2])
if tokens == nil then
  tokens, ts = burst, now
end
tokens = math.min(burst, tokens + (now - ts) * limit / period)
if tokens < 1 then
  return math.max(1, math.ceil((1 - tokens) * period / limit))
end
redis.call('HSET', KEYS[3], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[3], period * 2)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], period * 2)
return 0
`)

// doneScript moves a send of the window to now. KEYS: window. ARGV: member.
var doneScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 0
`)

// Take records a send to robot and returns 0 if one is allowed now at rate
// rt; otherwise it records nothing and returns how long to wait.
func (r *Redis) Take(ctx context.Context, robot string, rt Rate) (time.Duration, error) {
	r.mu.Lock()
	r.seq++
	member := r.consumer + ":" + strconv.FormatUint(r.seq, 10)
	r.mu.Unlock()
	ms, err := takeScript.Run(ctx, r.client, limiterKeys(robot), rt.limit(), r.period.Milliseconds(), rt.burst(), member, rt.PerSecond).Int64()
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: %w", robot, err)
	}
	if ms == 0 {
		r.mu.Lock()
		r.last[robot] = member
		r.mu.Unlock()
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Done moves this replica's latest send to robot to now.
func (r *Redis) Done(ctx context.Context, robot string) error {
	r.mu.Lock()
	member, ok := r.last[robot]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	if err := doneScript.Run(ctx, r.client, limiterKeys(robot)[:1], member).Err(); err != nil {
		return fmt.Errorf("rate limit %s: %w", robot, err)
	}
	return nil
}

// Park stops sends to robot, by every replica, until the given time.
func (r *Redis) Park(ctx context.Context, robot string, until time.Time) error {
	d := until.Sub(r.now())
	if d <= 0 {
		return nil
	}
	if err := r.client.Set(ctx, limiterKeys(robot)[1], "1", d).Err(); err != nil {
		return fmt.Errorf("park %s: %w", robot, err)
	}
	return nil
}
