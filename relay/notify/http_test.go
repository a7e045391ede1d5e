package notify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/notify"
)

func TestNetworkHint(t *testing.T) {
	s := notify.Service{Name: "DingTalk", Host: "oapi.dingtalk.com", Setting: "DINGTALK_API_URL"}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"dns", &net.DNSError{Err: "no such host", Name: "oapi.dingtalk.com", IsNotFound: true}, "cannot resolve oapi.dingtalk.com"},
		{"untrusted", fmt.Errorf("post: %w", x509.UnknownAuthorityError{}), "TLS certificate of oapi.dingtalk.com is not trusted"},
		{"not tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "does not speak TLS"},
		{"timeout", fmt.Errorf("post: %w", context.DeadlineExceeded), "did not answer in time"},
		{"timeout by net", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, "did not answer in time"},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "check DINGTALK_API_URL"},
		{"proxy", &net.OpError{Op: "proxyconnect", Err: syscall.ECONNREFUSED}, "proxy refused"},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, "was reset"},
		{"other", errors.New("boom"), "network error talking to DingTalk"},
	} {
		if got := notify.NetworkHint(c.err, s); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.name, got, c.want)
		}
	}
	if notify.NetworkHint(nil, s) != "" {
		t.Error("a hint for no error")
	}
}

// The client follows no redirect: it would carry a token in the URL to
// another host.
func TestHTTPClientFollowsNoRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the redirect was followed") }))
	defer other.Close()
	ts := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer ts.Close()
	resp, err := notify.NewHTTPClient().Get(ts.URL + "/robot/send?access_token=secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the redirect itself", resp.StatusCode)
	}
}
