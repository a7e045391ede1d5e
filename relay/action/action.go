// Package action lets people act on a Sentry issue from a DingTalk card.
//
// DingTalk's custom robots have no callbacks: a card's link can only open a
// URL. So each card carries signed links to the relay. Opening one (GET)
// shows a confirmation page with the issue as Sentry has it now and changes
// nothing, because chat apps and link scanners open links on their own.
// Confirming (a same-origin POST from that page) calls Sentry's API once.
//
// A link carries the organisation, the issue, the action, its expiry and,
// when SENTRY_URL is not set, the Sentry origin, signed with HMAC-SHA256
// under RELAY_ACTION_KEY; any replica with the same key serves it and no
// state is kept.
//
// The honest limit: a custom robot cannot tell the relay who clicked, so
// Sentry records the integration, not the person, as the actor. Knowing the
// person needs a DingTalk app robot, not these links.
package action

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/metrics"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultTTL is how long a link works unless RELAY_ACTION_TTL says otherwise.
const DefaultTTL = 168 * time.Hour

// MinKeyBytes is the shortest RELAY_ACTION_KEY accepted: as long as the
// HMAC-SHA256 output, so the key is never the weaker part.
const MinKeyBytes = 32

// Per-client budget for confirmed actions: a person clearing a digest by
// hand stays inside it, a script does not. maxClients bounds the memory the
// budgets take.
const (
	actionsBurst = 5
	actionsEvery = time.Minute / actionsBurst
	maxClients   = 10000
)

const (
	pathPrefix = "/action/"
	// maxUserAgent bounds what a client can put in the audit log.
	maxUserAgent = 256
)

// Config configures the action links and pages.
type Config struct {
	// PublicURL is the relay's address as people's devices reach it
	// (RELAY_PUBLIC_URL); links are PublicURL + "/action/...". A path in it
	// is kept in links, for a proxy that strips it before the relay.
	PublicURL string
	// Key signs links (RELAY_ACTION_KEY), at least MinKeyBytes long, the
	// same on every replica.
	Key []byte
	// TTL is how long a link works (RELAY_ACTION_TTL); 0 means DefaultTTL.
	TTL time.Duration
	// SentryURL is Sentry's base URL (SENTRY_URL). When empty, each link
	// carries the origin of its issue's web URL and the API is called
	// there; the origin is signed, but it comes from the webhook, so
	// without webhook authentication a forged webhook could point the
	// token at another host: set SENTRY_URL in that case.
	SentryURL string
	// AuthToken is the internal integration's token (SENTRY_AUTH_TOKEN),
	// which needs Issue & Event: Read & Write.
	AuthToken string
	// Language is the cards' and pages' language: formatter.LangZH (the
	// default) or formatter.LangEN.
	Language string
	// HTTP calls Sentry; nil means a client with bounded timeouts that
	// follows no redirects.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the audit trail; nil discards it.
	Log *slog.Logger
	// Registerer takes actions_total; nil leaves it unregistered.
	Registerer prometheus.Registerer
}

// Issue is one Sentry issue a card is about.
type Issue struct {
	Org string // organisation slug
	ID  string // Sentry's numeric issue id
	URL string // the issue's Sentry web page
}

// Link is one link for a card.
type Link struct {
	Label, URL string
}

// Service makes action links and serves their pages.
type Service struct {
	public    string // PublicURL without a trailing slash
	key       []byte
	ttl       time.Duration
	sentryURL string
	sentry    *sentry
	text      *texts
	now       func() time.Time
	log       *slog.Logger
	limit     *clientLimiter
	actions   *prometheus.CounterVec
	handler   http.Handler
}

// outcomes are the values of actions_total's outcome label.
var outcomes = []string{
	"done", "already", "expired", "rate_limited",
	"sentry_unauthorized", "sentry_forbidden", "not_found", "sentry_unreachable", "sentry_error",
}

// New checks cfg and returns the service. Errors name the variable at fault.
func New(cfg Config) (*Service, error) {
	public, err := baseURL("RELAY_PUBLIC_URL", cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if len(cfg.Key) < MinKeyBytes {
		return nil, fmt.Errorf("RELAY_ACTION_KEY is %d bytes, shorter than %d", len(cfg.Key), MinKeyBytes)
	}
	ttl := cmp.Or(cfg.TTL, DefaultTTL)
	if ttl < time.Second {
		return nil, fmt.Errorf("RELAY_ACTION_TTL %v: must be at least 1s", cfg.TTL)
	}
	var sentryURL string
	if cfg.SentryURL != "" {
		if sentryURL, err = baseURL("SENTRY_URL", cfg.SentryURL); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(cfg.AuthToken) == "" {
		return nil, errors.New("SENTRY_AUTH_TOKEN is empty: action links need the internal integration's token")
	}
	lang := cmp.Or(cfg.Language, formatter.LangZH)
	text, ok := textSets[lang]
	if !ok {
		return nil, fmt.Errorf("RELAY_LANGUAGE %q: want %s or %s", cfg.Language, formatter.LangZH, formatter.LangEN)
	}
	s := &Service{
		public:    public,
		key:       slices.Clone(cfg.Key),
		ttl:       ttl,
		sentryURL: sentryURL,
		sentry:    &sentry{http: cfg.HTTP, token: cfg.AuthToken},
		text:      text,
		now:       cfg.Now,
		log:       cmp.Or(cfg.Log, slog.New(slog.DiscardHandler)),
		limit:     newClientLimiter(actionsEvery, actionsBurst, maxClients),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "actions_total",
			Help: "Confirmed actions on Sentry issues from action pages, by action and outcome.",
		}, []string{"action", "outcome"}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sentry.http == nil {
		s.sentry.http = notify.NewHTTPClient()
	}
	for _, k := range actions {
		for _, o := range outcomes {
			s.actions.WithLabelValues(k.name(), o)
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.actions); err != nil {
			return nil, fmt.Errorf("registering actions_total: %w", err)
		}
	}
	s.handler, err = s.newHandler()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// baseURL checks an absolute http(s) URL without query or fragment and
// returns it without a trailing slash.
func baseURL(name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", name, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s %q: want an absolute http:// or https:// URL", name, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("%s %q: want no user, query or fragment", name, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// Links returns a card's action links for is, in order: Resolve, Ignore for
// 1 hour, Ignore until it escalates, Open in DingTalk. The first three need
// an organisation, a numeric id and a Sentry to call (SentryURL or is.URL);
// Open in DingTalk needs an http(s) is.URL and opens it in DingTalk's side
// panel without the relay. Links the issue cannot have are left out.
func (s *Service) Links(is Issue) []Link {
	var links []Link
	if g, ok := s.group(is); ok {
		expires := s.expiry()
		for _, k := range actions {
			links = append(links, Link{Label: s.text.Actions[k].Label, URL: s.link(k, expires, g)})
		}
	}
	if _, ok := originOf(is.URL); ok {
		links = append(links, Link{
			Label: s.text.OpenInDingTalk,
			URL:   "dingtalk://dingtalkclient/page/link?url=" + url.QueryEscape(is.URL) + "&pc_slide=true",
		})
	}
	return links
}

// Review returns a digest's "review these N issues" link: a signed page that
// lists the issues with the same actions. It takes the first 100 distinct
// issues that can have actions (as in Links) and returns the zero Link when
// there is none.
func (s *Service) Review(issues []Issue) Link {
	type place struct{ origin, org string }
	type issueAt struct {
		place
		id uint64
	}
	groups := map[place]*group{}
	var order []place
	seen := map[issueAt]bool{}
	for _, is := range issues {
		g, ok := s.group(is)
		if !ok || len(seen) == maxReview {
			continue
		}
		p := place{g.origin, g.org}
		if seen[issueAt{p, g.ids[0]}] {
			continue
		}
		seen[issueAt{p, g.ids[0]}] = true
		if groups[p] == nil {
			groups[p] = &group{origin: g.origin, org: g.org}
			order = append(order, p)
		}
		groups[p].ids = append(groups[p].ids, g.ids[0])
	}
	if len(seen) == 0 {
		return Link{}
	}
	c := claim{kind: kindReview, expires: s.expiry()}
	for _, p := range order {
		g := groups[p]
		slices.Sort(g.ids)
		c.groups = append(c.groups, *g)
	}
	return Link{Label: s.text.Review(len(seen)), URL: s.public + pathPrefix + seal(s.key, c)}
}

// Handler serves the pages of GET and POST /action/{token}; mount it at
// "/action/" without stripping the prefix.
func (s *Service) Handler() http.Handler { return s.handler }

// group is the one-issue group an issue's action links carry.
func (s *Service) group(is Issue) (group, bool) {
	id, ok := parseID(is.ID)
	if !ok || is.Org == "" || len(is.Org) > maxSlug {
		return group{}, false
	}
	g := group{org: is.Org, ids: []uint64{id}}
	if s.sentryURL == "" {
		if g.origin, ok = originOf(is.URL); !ok || len(g.origin) > maxOrigin {
			return group{}, false
		}
	}
	return g, true
}

// expiry is when a link made now stops working, in whole seconds to keep
// links short, rounded down so that no link outlives its TTL.
func (s *Service) expiry() int64 {
	return s.now().Add(s.ttl).Unix()
}

func (s *Service) link(k kind, expires int64, g group) string {
	return s.public + pathPrefix + seal(s.key, claim{kind: k, expires: expires, groups: []group{g}})
}

// api is the Sentry base URL a group's calls go to.
func (s *Service) api(g group) string {
	return cmp.Or(s.sentryURL, g.origin)
}

// webURL is the issue's page in Sentry, built without asking Sentry, for
// pages that must not or cannot call it.
func (s *Service) webURL(g group, id uint64) string {
	return fmt.Sprintf("%s/organizations/%s/issues/%d/", s.api(g), url.PathEscape(g.org), id)
}
