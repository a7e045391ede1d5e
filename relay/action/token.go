package action

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
)

// kind is what a link does.
type kind byte

// Kinds are part of the signed bytes: never renumber them, or links already
// in people's chats would do something else.
const (
	kindResolve kind = iota + 1
	kindIgnoreHour
	kindIgnoreEscalating
	kindReview
)

// actions are the kinds a card offers per issue, in the card's order.
var actions = []kind{kindResolve, kindIgnoreHour, kindIgnoreEscalating}

// name is the kind's value of the metric's action label and the audit log.
func (k kind) name() string {
	switch k {
	case kindResolve:
		return "resolve"
	case kindIgnoreHour:
		return "ignore_1h"
	case kindIgnoreEscalating:
		return "ignore_until_escalating"
	case kindReview:
		return "review"
	}
	return "unknown"
}

const (
	tokenVersion = 1
	macSize      = sha256.Size
	// macContext keeps these MACs apart from anything else an operator
	// might sign with the same key.
	macContext = "sentry-dingtalk-relay/action\x00"
	// maxTokenChars bounds the work a request can ask for before the MAC
	// check; real tokens are far shorter.
	maxTokenChars = 2048
	// maxReview is how many issues one review link lists: Sentry's issue
	// list answers at most 100 per request.
	maxReview = 100
	// maxSlug is longer than any Sentry organisation slug (50).
	maxSlug = 100
	// maxOrigin bounds a Sentry origin carried in a link.
	maxOrigin = 200
)

// group is the issues of one organisation on one Sentry.
type group struct {
	// origin is the Sentry the issues live on, "" when SENTRY_URL names it.
	origin string
	org    string
	ids    []uint64 // ascending, no duplicates
}

// claim is what a link grants.
type claim struct {
	kind    kind
	expires int64 // Unix seconds; the link works strictly before it
	// groups holds exactly one group with one issue for an action, and one
	// or more groups for a review.
	groups []group
}

var (
	errForged  = errors.New("link is not signed by this relay")
	errExpired = errors.New("link expired")
)

// encoding is strict so that a token has exactly one spelling: a changed
// padding bit in the last character is a different, refused token.
var encoding = base64.RawURLEncoding.Strict()

// seal returns the token for c under key.
func seal(key []byte, c claim) string {
	payload := c.marshal()
	return encoding.EncodeToString(append(payload, mac(key, payload)...))
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macContext))
	h.Write(payload)
	return h.Sum(nil)
}

// open checks a token's signature and expiry. The payload is parsed only
// after the MAC matched, so nothing unsigned reaches the parser. An expired
// link is returned with errExpired: its pages still point at the issue.
func open(key []byte, token string, now int64) (claim, error) {
	if len(token) > maxTokenChars {
		return claim{}, errForged
	}
	raw, err := encoding.DecodeString(token)
	if err != nil || len(raw) <= macSize {
		return claim{}, errForged
	}
	payload, sum := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	if !hmac.Equal(sum, mac(key, payload)) {
		return claim{}, errForged
	}
	c, err := parseClaim(payload)
	if err != nil {
		return claim{}, fmt.Errorf("%w: %w", errForged, err)
	}
	if now >= c.expires {
		return c, errExpired
	}
	return c, nil
}

// marshal lays a claim out as: version, kind, expiry, group count, then per
// group origin, organisation, issue count and the issue ids as ascending
// deltas; integers as unsigned varints, strings length-prefixed.
func (c claim) marshal() []byte {
	b := []byte{tokenVersion, byte(c.kind)}
	b = binary.AppendUvarint(b, uint64(c.expires))
	b = binary.AppendUvarint(b, uint64(len(c.groups)))
	for _, g := range c.groups {
		b = appendString(b, g.origin)
		b = appendString(b, g.org)
		b = binary.AppendUvarint(b, uint64(len(g.ids)))
		var prev uint64
		for _, id := range g.ids {
			b = binary.AppendUvarint(b, id-prev)
			prev = id
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// parseClaim is marshal's inverse. It accepts only what marshal produces
// for a valid claim, so every accepted payload has one spelling.
func parseClaim(b []byte) (claim, error) {
	r := reader{b: b}
	if v := r.byte(); v != tokenVersion {
		return claim{}, fmt.Errorf("version %d", v)
	}
	c := claim{kind: kind(r.byte())}
	if c.kind < kindResolve || c.kind > kindReview {
		return claim{}, fmt.Errorf("kind %d", c.kind)
	}
	expires := r.uvarint()
	if expires > 1<<62 {
		return claim{}, errors.New("expiry out of range")
	}
	c.expires = int64(expires)
	n := r.uvarint()
	if n == 0 || n > maxReview || (c.kind != kindReview && n != 1) {
		return claim{}, fmt.Errorf("%d groups", n)
	}
	total := 0
	for range n {
		var g group
		g.origin = r.string(maxOrigin)
		g.org = r.string(maxSlug)
		m := r.uvarint()
		if m == 0 || m > maxReview || (c.kind != kindReview && m != 1) {
			return claim{}, fmt.Errorf("%d issues", m)
		}
		total += int(m)
		var prev uint64
		for i := range m {
			d := r.uvarint()
			if d == 0 && i > 0 || prev+d < prev {
				return claim{}, errors.New("issue ids not ascending")
			}
			prev += d
			g.ids = append(g.ids, prev)
		}
		if r.err == nil {
			if err := g.valid(); err != nil {
				return claim{}, err
			}
		}
		c.groups = append(c.groups, g)
	}
	if r.err != nil {
		return claim{}, r.err
	}
	if total > maxReview {
		return claim{}, fmt.Errorf("%d issues", total)
	}
	if len(r.b) != 0 {
		return claim{}, errors.New("trailing bytes")
	}
	if !slices.Equal(c.marshal(), b) {
		return claim{}, errors.New("not in canonical form")
	}
	return c, nil
}

// valid checks what a page relies on: an organisation, real issue ids and
// an origin that is a bare http(s) origin.
func (g group) valid() error {
	if g.org == "" {
		return errors.New("no organisation")
	}
	if g.ids[0] == 0 {
		return errors.New("issue id 0")
	}
	if g.origin != "" {
		if o, ok := originOf(g.origin); !ok || o != g.origin {
			return fmt.Errorf("origin %q", g.origin)
		}
	}
	return nil
}

// originOf returns scheme://host of an absolute http(s) URL.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// parseID reads a Sentry issue id: a decimal number without leading zeros.
func parseID(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

// reader reads varints and strings, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("short token")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string(max int) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(r.b)) {
		r.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
