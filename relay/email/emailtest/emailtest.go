// Package emailtest runs a real SMTP server (github.com/emersion/go-smtp)
// on loopback for tests. It enforces what a submission server enforces:
// TLS before authentication (STARTTLS, or implicit TLS), AUTH PLAIN with
// its user and password (535 otherwise), authentication before MAIL FROM
// (530), a size limit (552), and it can refuse chosen recipients or the
// data with any reply. Its certificate is self-signed, made for the test:
// a client trusts it only through RootCAs.
package emailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// Username and Password are the only credentials taken; an empty
	// Username means the server takes mail without authentication.
	Username, Password string
	// ImplicitTLS serves TLS from the first byte (smtps); otherwise the
	// server offers STARTTLS, unless NoTLS is set.
	ImplicitTLS bool
	NoTLS       bool
	// MaxBytes bounds a message; 0 means 1 MiB.
	MaxBytes int64
	// EchoCredentials makes a failed AUTH repeat the credentials it got,
	// as a careless server or proxy might.
	EchoCredentials bool
}

// Message is a mail the server took.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS reports whether the mail came over TLS.
	TLS bool
}

// Server is a running SMTP server.
type Server struct {
	opts    Options
	srv     *smtp.Server
	addr    string
	roots   *x509.CertPool
	mu      sync.Mutex
	msgs    []Message
	rcpt    map[string]*smtp.SMTPError
	data    []*smtp.SMTPError
	authTry int
}

// Start serves on a loopback port until the test ends.
func Start(t interface {
	Cleanup(func())
	Fatal(...any)
}, opts Options) *Server {
	cert, roots, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: opts, roots: roots, rcpt: map[string]*smtp.SMTPError{}}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.MaxMessageBytes = opts.MaxBytes
	if s.srv.MaxMessageBytes == 0 {
		s.srv.MaxMessageBytes = 1 << 20
	}
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = discard{}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !opts.NoTLS {
		s.srv.TLSConfig = tlsConfig
	}
	// Without TLS the credentials can only be checked in clear.
	s.srv.AllowInsecureAuth = opts.NoTLS
	var l net.Listener
	if opts.ImplicitTLS {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// URL is the server's RELAY_SMTP_URL, credentials included.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// RootCAs trusts the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// FailRcpt makes RCPT TO addr answer code (e.g. 550 mailbox unavailable).
func (s *Server) FailRcpt(addr string, code int, enhanced [3]int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpt[strings.ToLower(addr)] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: msg}
}

// FailData makes the end of the next DATA answer code, once per call.
func (s *Server) FailData(code int, enhanced [3]int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: msg})
}

// Messages returns the mails taken.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// AuthAttempts returns how many AUTH exchanges reached the credentials
// check.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authTry
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.s.mu.Lock()
		ss.s.authTry++
		ss.s.mu.Unlock()
		if ss.s.opts.Username == "" || username != ss.s.opts.Username || password != ss.s.opts.Password || (identity != "" && identity != username) {
			if ss.s.opts.EchoCredentials {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials " + username + ":" + password}
			}
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if e := ss.s.rcpt[strings.ToLower(to)]; e != nil {
		return e
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if len(ss.s.data) > 0 {
		e := ss.s.data[0]
		ss.s.data = ss.s.data[1:]
		return e
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, To: append([]string(nil), ss.to...), Data: bytes.Clone(data), TLS: isTLS})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for
// a day around now.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "emailtest " + strconv.FormatInt(serial.Int64(), 36)},
		NotBefore:             time.Now().Add(-12 * time.Hour),
		NotAfter:              time.Now().Add(12 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
