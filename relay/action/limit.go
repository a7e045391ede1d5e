package action

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter allows each client a few actions a minute. It remembers at
// most max clients, forgetting the one heard from longest ago: a client
// silent long enough to be evicted has mostly refilled its budget anyway.
type clientLimiter struct {
	every time.Duration
	burst int
	max   int

	mu      sync.Mutex
	order   *list.List // of *clientBudget, most recent first
	clients map[string]*list.Element
}

type clientBudget struct {
	key string
	lim *rate.Limiter
}

func newClientLimiter(every time.Duration, burst, max int) *clientLimiter {
	return &clientLimiter{every: every, burst: burst, max: max, order: list.New(), clients: map[string]*list.Element{}}
}

// allow takes one action from key's budget at now.
func (l *clientLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.clients[key]
	if ok {
		l.order.MoveToFront(el)
	} else {
		el = l.order.PushFront(&clientBudget{key: key, lim: rate.NewLimiter(rate.Every(l.every), l.burst)})
		l.clients[key] = el
		if l.order.Len() > l.max {
			oldest := l.order.Back()
			l.order.Remove(oldest)
			delete(l.clients, oldest.Value.(*clientBudget).key)
		}
	}
	return el.Value.(*clientBudget).lim.AllowN(now, 1)
}

// len is how many clients are remembered.
func (l *clientLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// clientKey is the limiter's name for a request's client: its IP address,
// or its /64 for IPv6, where one subscriber commonly holds the whole /64.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
