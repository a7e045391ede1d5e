package stdwebhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"syscall"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// networkError explains a request that got no answer. A certificate the
// relay cannot verify does not fix itself, so it needs the operator; every
// other failure is worth a retry.
func (r *Receiver) networkError(err error) *notify.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	e := &notify.Error{Receiver: r.name, Verdict: notify.Retry, Code: "network", Err: notify.ScrubError(err, r.secrets...)}
	if tlsFailure(err) {
		e.Verdict, e.Code = notify.Refused, "tls"
	}
	e.Hint = networkHint(err)
	return e
}

func tlsFailure(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &record)
}

func networkHint(err error) string {
	var dnsErr *net.DNSError
	var record tls.RecordHeaderError
	var opErr *net.OpError
	switch {
	case errors.As(err, &record):
		return "the endpoint does not speak TLS on this port: use http:// or the endpoint's HTTPS port in url"
	case tlsFailure(err):
		return "the endpoint's TLS certificate is not trusted for its host name (self-signed, expired, or a proxy that intercepts TLS): give it a certificate from a public CA, or add its CA to the system trust store"
	case errors.As(err, &dnsErr):
		return "cannot resolve the endpoint's host name: check url and DNS; retried automatically"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "the endpoint did not answer within 10 s: retried automatically; check the firewall, HTTPS_PROXY and NO_PROXY, and that the endpoint answers before doing slow work"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: is the endpoint up, and is the port in url right? Retried automatically"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset: a firewall or proxy in between? Retried automatically"
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return "the proxy refused the connection: check HTTPS_PROXY"
	}
	return "network error talking to the endpoint: retried automatically; check the firewall, DNS and HTTPS_PROXY / NO_PROXY"
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
