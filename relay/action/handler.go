package action

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	//go:embed templates/page.html
	pageHTML string
	//go:embed templates/style.css
	styleCSS string

	pageTemplate = template.Must(template.New("page").Parse(pageHTML))
	// csp allows nothing but the one stylesheet, by its hash, and forms
	// back to the relay: the pages need no script, image or frame.
	csp = "default-src 'none'; style-src 'sha256-" + styleHash(styleCSS) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// page is what one answer shows.
type page struct {
	Status     int
	Title      string
	Tone       string // ok, warn or error: the colour of Message
	Message    string
	Issue      *issueView
	Explain    string // what the button does
	Button     string // the button's label; no button when empty
	Note       string
	Rows       []row
	Links      []Link
	RetryAfter int // seconds, for 429
}

// issueView is an issue as a page shows it.
type issueView struct {
	Title, ShortID, Project, Level, Status, Assignee string
}

// row is one issue on a review page.
type row struct {
	Title, URL, Meta string
	Actions          []Link
}

func (s *Service) newHandler() (http.Handler, error) {
	origin, _ := originOf(s.public)
	cop := http.NewCrossOriginProtection()
	// Behind a proxy that rewrites Host, the browser's Origin is the public
	// one; trusting it keeps same-site confirmations working there.
	if err := cop.AddTrustedOrigin(origin); err != nil {
		return nil, fmt.Errorf("RELAY_PUBLIC_URL: %w", err)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Info("action refused", "reason", "cross-site request", "client", clientAddr(r), "user_agent", userAgent(r))
		s.render(w, page{Status: http.StatusForbidden, Title: s.text.ForgedTitle, Tone: "error", Message: s.text.CrossSite})
	}))
	return cop.Handler(http.HandlerFunc(s.serve)), nil
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, pathPrefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		s.render(w, page{Status: http.StatusNotFound, Title: s.text.NotFoundTitle, Tone: "error", Message: s.text.NotFound})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.render(w, s.show(r.Context(), token))
	case http.MethodPost:
		s.render(w, s.act(r, token))
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.render(w, s.methodNotAllowed())
	}
}

// show answers GET: it reads from Sentry and changes nothing.
func (s *Service) show(ctx context.Context, token string) page {
	c, err := open(s.key, token, s.now().Unix())
	if errors.Is(err, errExpired) {
		return s.expired(c)
	}
	if err != nil {
		return s.forged()
	}
	if c.kind == kindReview {
		return s.review(ctx, c)
	}
	g, id := c.groups[0], c.groups[0].ids[0]
	is, err := s.sentry.issue(ctx, s.api(g), g.org, id)
	if err != nil {
		s.log.Warn("reading the issue from Sentry failed", "org", g.org, "issue", id, "action", c.kind.name(), "err", err)
		return s.sentryFailed(err, g, id)
	}
	at := s.text.Actions[c.kind]
	p := page{Status: http.StatusOK, Title: at.Title, Issue: s.view(is), Links: []Link{s.openInSentry(is, g, id)}}
	if is.in(c.kind, s.now()) {
		p.Title, p.Tone, p.Message = s.text.AlreadyTitle, "ok", at.Already
		return p
	}
	p.Explain, p.Button, p.Note = at.Explain, at.Label, s.text.NothingChanged
	return p
}

// act answers POST: the confirmed action, sent to Sentry at most once.
func (s *Service) act(r *http.Request, token string) page {
	now := s.now()
	c, err := open(s.key, token, now.Unix())
	if err != nil && !errors.Is(err, errExpired) {
		s.log.Info("action refused", "reason", "invalid link", "client", clientAddr(r), "user_agent", userAgent(r))
		return s.forged()
	}
	if c.kind == kindReview {
		return s.methodNotAllowed()
	}
	g, id := c.groups[0], c.groups[0].ids[0]
	if err != nil {
		s.audit(r, c, "expired", nil)
		return s.expired(c)
	}
	if !s.limit.allow(clientKey(r.RemoteAddr), now) {
		s.audit(r, c, "rate_limited", nil)
		return page{Status: http.StatusTooManyRequests, Title: s.text.RateLimitedTitle, Tone: "warn",
			Message: s.text.RateLimited, Links: []Link{s.openInSentry(sentryIssue{}, g, id)},
			RetryAfter: int(actionsEvery.Seconds())}
	}
	ctx := r.Context()
	is, err := s.sentry.issue(ctx, s.api(g), g.org, id)
	if err != nil {
		s.audit(r, c, outcomeOf(err), err)
		return s.sentryFailed(err, g, id)
	}
	at := s.text.Actions[c.kind]
	result := page{Status: http.StatusOK, Tone: "ok", Issue: s.view(is), Links: []Link{s.openInSentry(is, g, id)}}
	if is.in(c.kind, now) {
		s.audit(r, c, "already", nil)
		result.Title, result.Message = s.text.AlreadyTitle, at.Already
		return result
	}
	if err := s.sentry.update(ctx, s.api(g), g.org, id, c.kind); err != nil {
		s.audit(r, c, outcomeOf(err), err)
		return s.sentryFailed(err, g, id)
	}
	s.audit(r, c, "done", nil)
	result.Title, result.Message = s.text.DoneTitle, at.Done
	result.Issue.Status = s.statusAfter(c.kind, now)
	return result
}

// review lists a digest's issues, one Sentry call per organisation.
func (s *Service) review(ctx context.Context, c claim) page {
	p := page{Status: http.StatusOK, Title: s.text.ReviewTitle, Message: s.text.ReviewExplain}
	for _, g := range c.groups {
		list, err := s.sentry.issues(ctx, s.api(g), g.org, g.ids)
		if err != nil {
			s.log.Warn("reading issues from Sentry failed", "org", g.org, "issues", len(g.ids), "err", err)
			return s.sentryFailed(err, g, 0)
		}
		byID := map[string]sentryIssue{}
		for _, is := range list {
			byID[is.ID] = is
		}
		for _, id := range slices.Backward(g.ids) {
			one := group{origin: g.origin, org: g.org, ids: []uint64{id}}
			is, ok := byID[strconv.FormatUint(id, 10)]
			if !ok {
				p.Rows = append(p.Rows, row{Title: "#" + strconv.FormatUint(id, 10), URL: s.webURL(g, id), Meta: s.text.Missing})
				continue
			}
			v := s.view(is)
			r := row{Title: v.Title, URL: s.openInSentry(is, g, id).URL,
				Meta: strings.Join(nonEmpty(v.ShortID, v.Project, v.Status, v.Assignee), " · ")}
			for _, k := range actions {
				if !is.in(k, s.now()) {
					r.Actions = append(r.Actions, Link{Label: s.text.Actions[k].Label, URL: s.link(k, c.expires, one)})
				}
			}
			p.Rows = append(p.Rows, r)
		}
	}
	return p
}

// statusAfter names the state a successful action leaves the issue in,
// without reading it back from Sentry.
func (s *Service) statusAfter(k kind, now time.Time) string {
	switch k {
	case kindResolve:
		return s.text.statusText("resolved", "", time.Time{})
	case kindIgnoreHour:
		return s.text.statusText("ignored", "archived_until_condition_met", now.Add(time.Hour))
	}
	return s.text.statusText("ignored", "archived_until_escalating", time.Time{})
}

func nonEmpty(ss ...string) []string {
	return slices.DeleteFunc(ss, func(s string) bool { return s == "" })
}

func (s *Service) view(is sentryIssue) *issueView {
	v := &issueView{
		Title:    cmp.Or(is.Title, is.ShortID, "#"+is.ID),
		ShortID:  is.ShortID,
		Project:  cmp.Or(is.Project.Slug, is.Project.Name),
		Level:    s.text.levelText(is.Level),
		Status:   s.text.statusText(is.Status, is.Substatus, is.ignoreUntil()),
		Assignee: s.text.Unassigned,
	}
	if a := is.AssignedTo; a != nil && a.Name != "" {
		v.Assignee = a.Name
		if a.Type == "team" {
			v.Assignee = "#" + a.Name
		}
	}
	return v
}

// openInSentry links to the issue: Sentry's own permalink when it gave one,
// else the page built from the link's organisation and id.
func (s *Service) openInSentry(is sentryIssue, g group, id uint64) Link {
	u := s.webURL(g, id)
	if _, ok := originOf(is.Permalink); ok {
		u = is.Permalink
	}
	return Link{Label: s.text.OpenInSentry, URL: u}
}

// orgIssues links to an organisation's issue list in Sentry.
func (s *Service) orgIssues(g group) Link {
	return Link{Label: s.text.OpenInSentry, URL: s.api(g) + "/organizations/" + url.PathEscape(g.org) + "/issues/"}
}

func (s *Service) forged() page {
	return page{Status: http.StatusForbidden, Title: s.text.ForgedTitle, Tone: "error", Message: s.text.Forged}
}

func (s *Service) methodNotAllowed() page {
	return page{Status: http.StatusMethodNotAllowed, Title: s.text.MethodTitle, Tone: "error", Message: s.text.Method}
}

// expired still points at the issue, so the link keeps its use as a link.
func (s *Service) expired(c claim) page {
	p := page{Status: http.StatusGone, Title: s.text.ExpiredTitle, Tone: "warn", Message: s.text.Expired}
	if c.kind != kindReview {
		p.Links = []Link{s.openInSentry(sentryIssue{}, c.groups[0], c.groups[0].ids[0])}
		return p
	}
	for _, g := range c.groups {
		p.Links = append(p.Links, s.orgIssues(g))
	}
	return p
}

// sentryFailed explains a failed Sentry call; id 0 is a list of issues.
func (s *Service) sentryFailed(err error, g group, id uint64) page {
	p := page{Status: http.StatusBadGateway, Title: s.text.ErrorTitle, Tone: "error", Message: s.text.Internal}
	var se *sentryError
	if errors.As(err, &se) {
		p.Message = se.sentence(s.text)
		if se.Status == http.StatusNotFound {
			p.Status = http.StatusNotFound
		}
	}
	p.Links = []Link{s.orgIssues(g)}
	if id != 0 {
		p.Links = []Link{s.openInSentry(sentryIssue{}, g, id)}
	}
	return p
}

func outcomeOf(err error) string {
	var se *sentryError
	if errors.As(err, &se) {
		return se.outcome()
	}
	return "sentry_error"
}

// audit records a confirmed action: who asked (as far as the relay can
// tell), what, and how it ended. The token and the key never appear.
func (s *Service) audit(r *http.Request, c claim, outcome string, err error) {
	g := c.groups[0]
	attrs := []any{
		"org", g.org, "issue", g.ids[0], "action", c.kind.name(), "outcome", outcome,
		"client", clientAddr(r), "user_agent", userAgent(r),
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.log.Info("issue action", attrs...)
	s.actions.WithLabelValues(c.kind.name(), outcome).Inc()
}

// clientAddr is who asked, for the per-client budget and the audit log:
// the peer, or, when the peer is on a loopback or private address (an
// Ingress in front of the relay), the address that proxy put last in
// X-Forwarded-For. A client that reaches the relay itself cannot choose its
// address, and one behind the proxy only adds entries before the proxy's.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !peer.IsLoopback() && !peer.IsPrivate() {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	if a, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
		return a.String()
	}
	return host
}

func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = strings.ToValidUTF8(ua[:maxUserAgent], "")
	}
	return ua
}

// render writes p with the headers every action page carries: nothing
// cached or leaked in a Referer, no framing, and a policy that runs no script.
func (s *Service) render(w http.ResponseWriter, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	var buf bytes.Buffer
	data := struct {
		T     *texts
		P     page
		Style template.CSS
	}{s.text, p, template.CSS(styleCSS)}
	if err := pageTemplate.Execute(&buf, data); err != nil {
		s.log.Error("rendering an action page failed", "err", err)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, s.text.Internal)
		return
	}
	w.WriteHeader(p.Status)
	w.Write(buf.Bytes())
}
