package action

import (
	"errors"
	"reflect"
	"testing"
)

var testKey = []byte("test-key-0123456789abcdef0123456789abcdef")

func testClaims() map[string]claim {
	return map[string]claim{
		"resolve": {kind: kindResolve, expires: 1_772_352_000, groups: []group{{org: "acme", ids: []uint64{4711}}}},
		"ignore with origin": {kind: kindIgnoreHour, expires: 1_772_352_000,
			groups: []group{{origin: "https://acme.sentry.io", org: "acme", ids: []uint64{6_123_456_789}}}},
		"escalating, largest id": {kind: kindIgnoreEscalating, expires: 1 << 40,
			groups: []group{{org: "a", ids: []uint64{1<<64 - 1}}}},
		"review of two organisations": {kind: kindReview, expires: 1_772_352_000, groups: []group{
			{origin: "https://sentry.example.com", org: "acme", ids: []uint64{3, 4711, 900_000_000}},
			{origin: "http://sentry.internal:9000", org: "other-org", ids: []uint64{1}},
		}},
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for name, c := range testClaims() {
		t.Run(name, func(t *testing.T) {
			token := seal(testKey, c)
			got, err := open(testKey, token, c.expires-1)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("open(seal(c)) = %+v, want %+v", got, c)
			}
			if _, err := open([]byte("another-key-0123456789abcdef0123456789"), token, c.expires-1); !errors.Is(err, errForged) {
				t.Errorf("open under another key: %v, want errForged", err)
			}
		})
	}
}

func TestOpenExpiry(t *testing.T) {
	c := testClaims()["resolve"]
	token := seal(testKey, c)
	if _, err := open(testKey, token, c.expires-1); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	got, err := open(testKey, token, c.expires)
	if !errors.Is(err, errExpired) {
		t.Fatalf("at expiry: %v, want errExpired", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("an expired link still names its issue: got %+v", got)
	}
}

// TestEveryTokenChangeRefused changes each character of real tokens to
// every other character of the alphabet, and flips every bit of the bytes
// they encode: nothing but the original opens.
func TestEveryTokenChangeRefused(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for name, c := range testClaims() {
		t.Run(name, func(t *testing.T) {
			token := seal(testKey, c)
			for i := range len(token) {
				for _, ch := range alphabet {
					if byte(ch) == token[i] {
						continue
					}
					changed := token[:i] + string(ch) + token[i+1:]
					if _, err := open(testKey, changed, 0); !errors.Is(err, errForged) {
						t.Fatalf("character %d changed to %q: %v, want errForged", i, ch, err)
					}
				}
			}
			raw, _ := encoding.DecodeString(token)
			for i := range raw {
				for bit := range 8 {
					b := append([]byte(nil), raw...)
					b[i] ^= 1 << bit
					if _, err := open(testKey, encoding.EncodeToString(b), 0); !errors.Is(err, errForged) {
						t.Fatalf("byte %d bit %d flipped: %v, want errForged", i, bit, err)
					}
				}
			}
			for _, cut := range []string{token[:len(token)-1], token + "A", token[1:], ""} {
				if _, err := open(testKey, cut, 0); !errors.Is(err, errForged) {
					t.Errorf("token %q: %v, want errForged", cut, err)
				}
			}
		})
	}
}

func TestParseClaimRefusesNonCanonical(t *testing.T) {
	good := testClaims()["review of two organisations"].marshal()
	for name, b := range map[string][]byte{
		"empty":              {},
		"version 2":          append([]byte{2}, good[1:]...),
		"kind 0":             append([]byte{1, 0}, good[2:]...),
		"kind 5":             append([]byte{1, 5}, good[2:]...),
		"trailing byte":      append(append([]byte(nil), good...), 0),
		"padded varint":      {1, 1, 0x80, 0x00, 1, 0, 4, 'a', 'c', 'm', 'e', 1, 1},
		"two ids in action":  {1, 1, 1, 1, 0, 4, 'a', 'c', 'm', 'e', 2, 1, 1},
		"id 0":               {1, 1, 1, 1, 0, 4, 'a', 'c', 'm', 'e', 1, 0},
		"no organisation":    {1, 1, 1, 1, 0, 0, 1, 1},
		"repeated id":        {1, 4, 1, 1, 0, 4, 'a', 'c', 'm', 'e', 2, 1, 0},
		"origin with a path": append([]byte{1, 1, 1, 1, 24}, append([]byte("https://example.com/path"), 4, 'a', 'c', 'm', 'e', 1, 1)...),
		"javascript origin":  append([]byte{1, 1, 1, 1, 13}, append([]byte("javascript://"), 4, 'a', 'c', 'm', 'e', 1, 1)...),
	} {
		if c, err := parseClaim(b); err == nil {
			t.Errorf("%s: accepted as %+v", name, c)
		}
	}
	if _, err := parseClaim(good); err != nil {
		t.Errorf("a canonical payload: %v", err)
	}
}

// FuzzOpen feeds arbitrary tokens to the decoder: it never panics, and
// whatever it accepts is exactly what seal makes for that claim.
func FuzzOpen(f *testing.F) {
	for _, c := range testClaims() {
		f.Add(seal(testKey, c))
	}
	f.Add("")
	f.Add("AQEB")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := open(testKey, token, 0)
		if err != nil {
			return
		}
		if seal(testKey, c) != token {
			t.Fatalf("accepted %q, which seal spells %q", token, seal(testKey, c))
		}
	})
}

// FuzzParseClaim goes past the MAC: the payload parser never panics and
// accepts only payloads marshal produces.
func FuzzParseClaim(f *testing.F) {
	for _, c := range testClaims() {
		f.Add(c.marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseClaim(b)
		if err != nil {
			return
		}
		if got := c.marshal(); string(got) != string(b) {
			t.Fatalf("accepted %x, which marshals as %x", b, got)
		}
		for _, g := range c.groups {
			if g.valid() != nil {
				t.Fatalf("accepted an invalid group %+v", g)
			}
		}
	})
}
