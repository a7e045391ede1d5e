package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"syscall"

	gomail "github.com/wneessen/go-mail"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

// detailRunes bounds what of a server's answer goes into an Error.
const detailRunes = 300

func (r *Receiver) fail(v notify.Verdict, code, hint string, err error) *notify.Error {
	e := &notify.Error{Receiver: r.name, Verdict: v, Code: code, Hint: hint}
	var tp *textproto.Error
	var se *gomail.SendError
	switch {
	case errors.As(err, &se):
		e.Detail = r.detail(se.Error())
	case errors.As(err, &tp):
		e.Detail = r.detail(tp.Error())
	default:
		e.Err = notify.ScrubError(err, r.secrets...)
	}
	return e
}

func (r *Receiver) detail(text string) string {
	return formatter.Shorten(formatter.PlainLine(notify.Scrub(text, r.secrets...)), detailRunes)
}

// dialError explains a failure before any mail was offered: connecting,
// the greeting, STARTTLS or AUTH. A server that refuses the relay there
// refuses every mail the same way, so a 5xx is the operator's to fix.
func (r *Receiver) dialError(err error) *notify.Error {
	var tp *textproto.Error
	switch {
	case notify.TLSFailure(err):
		return r.fail(notify.Refused, "tls", r.tlsHint(err), err)
	case errors.As(err, &tp) && tp.Code >= 400 && tp.Code < 500:
		return r.fail(notify.Retry, smtpCode(tp.Code), fmt.Sprintf("the SMTP server is busy or limits connections (%d): a running relay retries it by itself", tp.Code), err)
	case errors.As(err, &tp):
		return r.fail(notify.Refused, smtpCode(tp.Code), r.refusalHint(tp.Code), err)
	case isNetwork(err):
		return r.fail(notify.Retry, "network", r.networkHint(err), err)
	case errors.Is(err, gomail.ErrNoSupportedAuthDiscovered):
		return r.fail(notify.Refused, "auth", "the server offers no authentication the relay uses on this connection: the password is never sent without TLS, and the server offered no STARTTLS; use smtps:// (port 465) or a server that offers STARTTLS", err)
	}
	// The server and RELAY_SMTP_URL disagree (no AUTH offered, a
	// mechanism go-mail refuses): nothing a retry changes.
	return r.fail(notify.Refused, "smtp", "the SMTP session failed before sending: check RELAY_SMTP_URL (host, port, scheme, user) against the server's settings", err)
}

// sendError explains a failure while offering the mail. The verdict comes
// from the reply code and the command it answered, never from the text.
func (r *Receiver) sendError(err error) *notify.Error {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return r.fail(notify.Retry, "network", r.networkHint(err), err)
	}
	code := se.ErrorCode()
	switch {
	case code == 0:
		return r.fail(notify.Retry, "network", "the connection failed during the send: a running relay retries it by itself", err)
	case code >= 400 && code < 500:
		return r.fail(notify.Retry, smtpCode(code), fmt.Sprintf("the server deferred the mail (%d, greylisting, a full queue or a rate limit): a running relay retries it by itself", code), err)
	case se.Reason == gomail.ErrSMTPMailFrom:
		return r.fail(notify.Refused, smtpCode(code), fmt.Sprintf("the server refuses the sender %s (%d): set RELAY_SMTP_FROM to an address this SMTP account may send as", r.from.Address, code), err)
	case code == 552:
		return r.fail(notify.Content, smtpCode(code), "the mail is over the server's size limit or the mailbox is full (552): a minimal mail is sent instead", err)
	case code >= 500 && code < 600:
		return r.fail(notify.Rejected, smtpCode(code), fmt.Sprintf("the server refused the mail for good (%d, e.g. a mailbox that does not exist): the alerts become dead letters; check to in the routes file, then replay them", code), err)
	}
	return r.fail(notify.Retry, smtpCode(code), fmt.Sprintf("unexpected SMTP reply %d: a running relay retries it by itself", code), err)
}

func smtpCode(code int) string { return "smtp_" + strconv.Itoa(code) }

func (r *Receiver) refusalHint(code int) string {
	switch code {
	case 535:
		return "the SMTP server refused the user name or password: check the user and password in RELAY_SMTP_URL (URL-encoded; some providers want an app password)"
	case 530:
		return "the SMTP server wants authentication or TLS first: put user:pass in RELAY_SMTP_URL, or use smtps://"
	case 534:
		return "the SMTP server finds the authentication mechanism too weak: use smtps:// or STARTTLS, or an app password"
	case 538:
		return "the SMTP server wants encryption for authentication: use smtps:// (port 465) or a port that offers STARTTLS"
	case 523:
		return "the SMTP server wants TLS before authentication: use smtps:// or a port that offers STARTTLS"
	case 554:
		return "the SMTP server refuses connections from this relay (554): ask its operator to allow this host"
	}
	return fmt.Sprintf("the SMTP server refused the session (%d): check RELAY_SMTP_URL against the server's settings", code)
}

func (r *Receiver) tlsHint(err error) string {
	var record tls.RecordHeaderError
	if errors.As(err, &record) {
		if r.smtp.ImplicitTLS {
			return "the server does not speak TLS on this port: use smtp:// (STARTTLS) for ports 25 and 587, smtps:// for 465"
		}
		return "the TLS handshake failed: check the port and scheme in RELAY_SMTP_URL"
	}
	return fmt.Sprintf("the SMTP server's TLS certificate is not trusted for %s (self-signed, expired, or another host name): give the server a certificate from a public CA, or add its CA to the system trust store; connect by the name the certificate carries", r.smtp.Host)
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func (r *Receiver) networkHint(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve the SMTP host: check RELAY_SMTP_URL and DNS; a running relay retries it by itself"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: check the host and port in RELAY_SMTP_URL; a running relay retries it by itself"
	case errors.Is(err, context.DeadlineExceeded) || notify.IsTimeout(err):
		hint := "the SMTP server did not answer in time: a running relay retries it by itself; check that the firewall lets this relay reach the port (many clouds block port 25)"
		if !r.smtp.ImplicitTLS && r.smtp.Port == DefaultPortTLS {
			hint += "; port 465 wants smtps://"
		}
		return hint
	}
	return "the connection to the SMTP server failed: a running relay retries it by itself"
}
