package stdwebhook

import (
	"errors"
	"net/url"

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
	if notify.TLSFailure(err) {
		e.Verdict, e.Code = notify.Refused, "tls"
	}
	e.Hint = notify.NetworkHint(err, service)
	return e
}

// service is where the receiver's calls go, as network hints name it.
var service = notify.Service{Name: "the endpoint", Host: "the endpoint", Setting: "url in the routes file"}
