// Package email sends alerts as mail through the operator's SMTP server
// (RELAY_SMTP_URL, RELAY_SMTP_FROM): one mail per card or digest, with an
// HTML and a plain-text part, and a Message-ID derived from the notify key
// so a mail sent again can be recognised as the same one.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.yaml.in/yaml/v3"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// DefaultRatePerMinute is the rate the relay keeps a mail receiver under:
// alert storms become digests instead of filling inboxes, and providers'
// sending limits (often a few hundred mails an hour) are not reached.
const DefaultRatePerMinute = 10

// MaxRecipients bounds to: RFC 5321 obliges servers to take 100
// recipients a message, not more.
const MaxRecipients = 100

// DefaultTimeout bounds the connection and each SMTP command.
const DefaultTimeout = 15 * time.Second

// Default ports of the two URL schemes.
const (
	DefaultPort    = 587
	DefaultPortTLS = 465
)

// Config is a mail receiver's entry in the routes file (`type: email`).
type Config struct {
	// To are the recipients: a list, or one string of comma-separated
	// addresses ("Ops <ops@example.com>, dev@example.com").
	To Addresses `yaml:"to"`
}

// Addresses are mail addresses as written in the routes file, each entry
// one or more RFC 5322 addresses.
type Addresses []string

// UnmarshalYAML takes a single string as well as a list.
func (a *Addresses) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*a = nil
		if n.Tag != "!!null" {
			*a = Addresses{n.Value}
		}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return errors.New("to: a mail address or a list of them")
	}
	*a = list
	return nil
}

// SMTP is the server mail goes through, from RELAY_SMTP_URL and
// RELAY_SMTP_FROM. Print it freely: its String hides the password.
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password string
	// ImplicitTLS is smtps://: TLS from the first byte. Otherwise the
	// connection turns to TLS with STARTTLS whenever the server offers
	// it, and a password is never sent over a connection without TLS.
	ImplicitTLS bool
	// From is the sender, RELAY_SMTP_FROM ("Sentry <alerts@example.com>");
	// "" means the user name when it is an address.
	From string
}

// ParseSMTPURL parses RELAY_SMTP_URL: smtp://user:pass@host:port (STARTTLS
// when offered, port 587 by default) or smtps://… (implicit TLS, port
// 465). User and password are URL-encoded. Errors never show the password.
func ParseSMTPURL(s string) (SMTP, error) {
	const form = "smtp://user:pass@host:port or smtps://user:pass@host:port"
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		// url.Parse's error quotes the whole URL, password and all.
		return SMTP{}, fmt.Errorf("RELAY_SMTP_URL: not a URL (%s; URL-encode special characters of the password)", form)
	}
	var out SMTP
	switch u.Scheme {
	case "smtp":
		out.Port = DefaultPort
	case "smtps":
		out.Port, out.ImplicitTLS = DefaultPortTLS, true
	default:
		return SMTP{}, fmt.Errorf("RELAY_SMTP_URL: the scheme must be smtp or smtps (%s)", form)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return SMTP{}, fmt.Errorf("RELAY_SMTP_URL: no host (%s)", form)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return SMTP{}, fmt.Errorf("RELAY_SMTP_URL: nothing may follow host:port (%s)", form)
	}
	out.Host = u.Hostname()
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return SMTP{}, errors.New("RELAY_SMTP_URL: the port is not a number from 1 to 65535")
		}
		out.Port = port
	}
	if u.User != nil {
		out.Username = u.User.Username()
		out.Password, _ = u.User.Password()
		if out.Username == "" {
			return SMTP{}, fmt.Errorf("RELAY_SMTP_URL: a password without a user name (%s)", form)
		}
	}
	return out, nil
}

// String shows the server as a URL without its password.
func (s SMTP) String() string {
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	if s.Username != "" {
		u.User = url.User(s.Username)
	}
	return u.String()
}

// GoString is String for %#v, which would otherwise print the password.
func (s SMTP) GoString() string { return s.String() }

// LogValue is String for log/slog.
func (s SMTP) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Options are what the relay gives every receiver.
type Options struct {
	// Name is the receiver's name in logs and metrics.
	Name string
	// Language is formatter.LangZH or LangEN.
	Language string
	// Zone is the time zone of the times shown; nil means UTC.
	Zone *time.Location
	// Now is the clock of the Date header; nil means time.Now.
	Now func() time.Time
	// TLS configures STARTTLS and smtps: nil trusts the system's roots.
	// Its ServerName defaults to the SMTP host.
	TLS *tls.Config
	// Timeout bounds the connection and each SMTP command; 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// Receiver mails alerts to a fixed list of recipients.
type Receiver struct {
	name    string
	lang    string
	zone    *time.Location
	now     func() time.Time
	smtp    SMTP
	from    *mail.Address
	to      []*mail.Address
	tls     *tls.Config
	timeout time.Duration
	secrets []string
}

// New validates cfg and the SMTP server and returns the receiver. Errors
// name the field or variable at fault.
func New(cfg Config, server SMTP, opts Options) (*Receiver, error) {
	to, err := parseRecipients(cfg.To)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if server.Host == "" {
		return nil, errors.New("RELAY_SMTP_URL: not set: email receivers send through it (smtp://user:pass@host:port)")
	}
	if server.Port < 1 || server.Port > 65535 {
		return nil, errors.New("RELAY_SMTP_URL: the port is not a number from 1 to 65535")
	}
	fromText := server.From
	if strings.TrimSpace(fromText) == "" {
		fromText = server.Username
	}
	from, err := mail.ParseAddress(fromText)
	if err != nil {
		if strings.TrimSpace(server.From) == "" {
			return nil, errors.New("RELAY_SMTP_FROM: not set, and the SMTP user name is not an address: set the sender (Sentry <alerts@example.com>)")
		}
		return nil, fmt.Errorf("RELAY_SMTP_FROM: %q is not a mail address (Sentry <alerts@example.com>)", server.From)
	}
	r := &Receiver{
		name: opts.Name, lang: opts.Language, zone: opts.Zone, now: opts.Now, smtp: server,
		from: from, to: to, timeout: opts.Timeout, secrets: passwordForms(server),
	}
	if r.zone == nil {
		r.zone = time.UTC
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	r.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.TLS != nil {
		r.tls = opts.TLS.Clone()
	}
	if r.tls.ServerName == "" {
		r.tls.ServerName = server.Host
	}
	return r, nil
}

func parseRecipients(entries Addresses) ([]*mail.Address, error) {
	var out []*mail.Address
	seen := map[string]bool{}
	for i, e := range entries {
		if strings.TrimSpace(e) == "" {
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		list, err := mail.ParseAddressList(e)
		if err != nil {
			return nil, fmt.Errorf("%q is not a mail address or a comma-separated list of them: %w", e, err)
		}
		for _, a := range list {
			if k := strings.ToLower(a.Address); !seen[k] {
				seen[k] = true
				out = append(out, a)
			}
		}
	}
	switch {
	case len(out) == 0:
		return nil, errors.New("missing: one or more addresses to mail alerts to")
	case len(out) > MaxRecipients:
		return nil, fmt.Errorf("%d addresses, at most %d: use a mailing list", len(out), MaxRecipients)
	}
	return out, nil
}

// passwordForms are the forms in which the password could come back in a
// server's answer: as is, URL-encoded, and inside the base64 of AUTH PLAIN
// and AUTH LOGIN.
func passwordForms(s SMTP) []string {
	if s.Password == "" {
		return nil
	}
	b64 := base64.StdEncoding.EncodeToString
	return []string{s.Password, b64([]byte(s.Password)), b64([]byte("\x00" + s.Username + "\x00" + s.Password)),
		b64([]byte(s.Username + "\x00" + s.Username + "\x00" + s.Password))}
}

// Identity is the recipients, sorted: the relay hashes it into the queue
// key, so a new SMTP server keeps the alerts waiting for these inboxes.
func (r *Receiver) Identity() string {
	addrs := make([]string, len(r.to))
	for i, a := range r.to {
		addrs[i] = strings.ToLower(a.Address)
	}
	slices.Sort(addrs)
	return "email\x00" + strings.Join(addrs, ",")
}

// Recipients are the addresses mail goes to, for logs and the test command.
func (r *Receiver) Recipients() []string {
	out := make([]string, len(r.to))
	for i, a := range r.to {
		out[i] = a.Address
	}
	return out
}

// String shows the receiver without the SMTP password.
func (r *Receiver) String() string {
	return "email " + r.name + " to " + strings.Join(r.Recipients(), ",") + " via " + r.smtp.String()
}

// GoString is String for %#v.
func (r *Receiver) GoString() string { return r.String() }

// LogValue is String for log/slog.
func (r *Receiver) LogValue() slog.Value { return slog.StringValue(r.String()) }

// idRE is what of a notify key goes into a Message-ID as it is; anything
// else is hashed, so a key cannot break the header.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// MessageID is the Message-ID (without angle brackets) of the mail with
// the given notify key, in the sender's domain: the same key always gives
// the same id, so a mail sent again is recognisably the same one.
func (r *Receiver) MessageID(key string) string {
	id := key
	if !idRE.MatchString(key) {
		sum := sha256.Sum256([]byte(key))
		id = hex.EncodeToString(sum[:16])
	}
	domain := r.from.Address[strings.LastIndexByte(r.from.Address, '@')+1:]
	return "relay." + id + "@" + domain
}

// Notify mails msg over a new SMTP connection. ctx bounds connecting;
// every SMTP command after that is bounded by Options.Timeout.
func (r *Receiver) Notify(ctx context.Context, msg notify.Message, key string) error {
	m, ok := msg.(*Message)
	if !ok {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "wrong_message",
			Detail: fmt.Sprintf("%T is not a mail", msg), Hint: "a bug in the relay: report it"}
	}
	mm := r.mail(m, key)
	c, err := r.client()
	if err != nil {
		return &notify.Error{Receiver: r.name, Verdict: notify.Refused, Code: "smtp_config",
			Err: notify.ScrubError(err, r.secrets...), Hint: "check RELAY_SMTP_URL"}
	}
	if err := c.DialWithContext(ctx); err != nil {
		return r.dialError(err)
	}
	defer c.Close()
	if err := c.Send(mm); err != nil {
		return r.sendError(err)
	}
	return nil
}

func (r *Receiver) mail(m *Message, key string) *gomail.Msg {
	mm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	mm.FromMailAddress(r.from)
	mm.ToMailAddress(r.to...)
	mm.Subject(m.Subject)
	mm.SetMessageIDWithValue(r.MessageID(key))
	mm.SetDateWithValue(r.now())
	mm.SetUserAgent("sentry-dingtalk-relay")
	// Out-of-office and other automatic replies to alerts help nobody.
	mm.SetGenHeader("Auto-Submitted", "auto-generated")
	mm.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	mm.SetBodyString(gomail.TypeTextPlain, m.Text)
	mm.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return mm
}

func (r *Receiver) client() (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(r.smtp.Port),
		gomail.WithTimeout(r.timeout),
		gomail.WithTLSConfig(r.tls),
	}
	if r.smtp.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if r.smtp.Username != "" {
		// Auto-discovery never picks PLAIN or LOGIN without TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(r.smtp.Username), gomail.WithPassword(r.smtp.Password))
	}
	return gomail.NewClient(r.smtp.Host, opts...)
}
