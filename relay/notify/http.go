package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
)

// NewHTTPClient is the client receivers send with: kept-alive connections,
// a 5 s connect and a 10 s overall timeout, HTTPS_PROXY and NO_PROXY
// honoured. It follows no redirect: one would carry a token in the URL, or
// a signed alert, to another host.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Service is the other end of a receiver's HTTP calls, as hints name it.
type Service struct {
	// Name is what people call it: "DingTalk", "the endpoint".
	Name string
	// Host is where it answers, for the firewall ("oapi.dingtalk.com").
	Host string
	// Setting is what points the relay there ("DINGTALK_API_URL").
	Setting string
}

// NetworkHint says what to check after an HTTP call to s failed on the way:
// DNS, TLS, the firewall, the proxy. The relay retries such failures by
// itself; the test command does not, so the hints never promise it.
func NetworkHint(err error, s Service) string {
	var dnsErr *net.DNSError
	var record tls.RecordHeaderError
	var opErr *net.OpError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &record):
		return s.Name + " does not speak TLS on this port: check " + s.Setting + " (http:// or the HTTPS port)"
	case TLSFailure(err):
		return "the TLS certificate of " + s.Host + " is not trusted (self-signed, expired, another host name, or a proxy that intercepts TLS): give it a certificate from a public CA, or add its CA to the system trust store"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + s.Host + ": check DNS and " + s.Setting + ", or set HTTPS_PROXY if this network reaches the internet through a proxy"
	case errors.Is(err, context.DeadlineExceeded) || IsTimeout(err):
		return s.Name + " did not answer in time: check the firewall allows outbound HTTPS to " + s.Host + ", or set HTTPS_PROXY (and NO_PROXY for local hosts)"
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return "the proxy refused the connection: check HTTPS_PROXY"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: check " + s.Setting + " and HTTPS_PROXY"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset: a firewall or proxy in between? A running relay retries such sends by itself"
	}
	return "network error talking to " + s.Name + ": check the firewall, DNS and HTTPS_PROXY / NO_PROXY"
}

// TLSFailure reports whether err is a certificate the relay does not trust
// or a TLS handshake that failed.
func TLSFailure(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var record tls.RecordHeaderError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &record)
}

// IsTimeout reports whether err is a timeout.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
