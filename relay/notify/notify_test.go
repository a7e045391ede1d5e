package notify

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestScrubRemovesEveryFormOfASecret(t *testing.T) {
	token := "abc123def456+/=x"
	for _, echoed := range []string{
		"POST /robot/send?access_token=" + url.QueryEscape(token) + " HTTP/1.1",
		"upstream said: token " + token + " is bad",
		"/hook/" + url.PathEscape(token),
	} {
		got := Scrub(echoed, token, "")
		if strings.Contains(got, token) || strings.Contains(got, url.QueryEscape(token)) || strings.Contains(got, url.PathEscape(token)) {
			t.Errorf("Scrub(%q) = %q still holds the secret", echoed, got)
		}
		if !strings.Contains(got, Mask(token)) {
			t.Errorf("Scrub(%q) = %q lost the mask that tells which secret it was", echoed, got)
		}
	}
	if got := Scrub("short ab", "ab"); got != "short ab" {
		t.Errorf("a secret under 4 characters is not scrubbed (it would mangle text): %q", got)
	}
}

func TestScrubErrorKeepsCleanErrors(t *testing.T) {
	clean := fmt.Errorf("dial: %w", errors.ErrUnsupported)
	if got := ScrubError(clean, "secret-token"); got != clean {
		t.Errorf("a clean error was replaced: %v", got)
	}
	if got := ScrubError(errors.New("GET /x?t=secret-token"), "secret-token"); strings.Contains(got.Error(), "secret-token") {
		t.Errorf("ScrubError left the secret: %v", got)
	}
}

func TestVerdictOf(t *testing.T) {
	e := &Error{Receiver: "ops", Verdict: Throttled, Code: "130101", Detail: "send too fast"}
	if v, got := VerdictOf(fmt.Errorf("send: %w", e)); v != Throttled || got != e {
		t.Errorf("VerdictOf(wrapped) = %v, %v", v, got)
	}
	if v, got := VerdictOf(errors.New("reset")); v != Retry || got != nil {
		t.Errorf("VerdictOf(plain error) = %v, %v; want Retry", v, got)
	}
	if got := e.Error(); got != "ops: 130101: send too fast" {
		t.Errorf("Error() = %q", got)
	}
}
