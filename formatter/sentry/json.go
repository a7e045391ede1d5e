package sentry

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentry's payloads drift between versions (numbers become strings, fields
// become null), so the decoding types below accept every shape seen and
// never fail on a type they can turn into something sensible.

// text accepts a JSON string, number, bool or null.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		// Most strings need no unescaping: skip a second decoder pass.
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*t = text(inner)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case 'n', '{', '[':
		*t = ""
	default:
		*t = text(b)
	}
	return nil
}

func (t text) String() string { return strings.TrimSpace(string(t)) }

// count accepts a number or a numeric string ("count": "12").
type count int64

func (c *count) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	f, err := strconv.ParseFloat(t.String(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > math.MaxInt64/2 {
		*c = 0
		return nil
	}
	*c = count(f)
	return nil
}

// timestamp accepts RFC 3339 text or seconds since the epoch.
type timestamp time.Time

func (ts *timestamp) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	*ts = timestamp(parseTime(t.String()))
	return nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > 1e11 {
			return time.Time{}
		}
		// Read the digits rather than the float, which loses nanoseconds.
		whole, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return time.Unix(int64(f), 0).UTC()
		}
		frac = (frac + "000000000")[:9]
		nsec, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			nsec = 0
		}
		return time.Unix(sec, nsec).UTC()
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05.999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// tags accepts [["k","v"],...], [{"key":"k","value":"v"},...] or {"k":"v"}.
type tags []tagPair

type tagPair struct{ key, value string }

func (t *tags) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		var m map[string]text
		if err := json.Unmarshal(b, &m); err != nil {
			return nil
		}
		for k, v := range m {
			*t = append(*t, tagPair{k, v.String()})
		}
	case '[':
		// Webhooks send pairs; try that shape in one pass first.
		var pairs [][]text
		if json.Unmarshal(b, &pairs) == nil {
			for _, p := range pairs {
				if len(p) == 2 {
					*t = append(*t, tagPair{p[0].String(), p[1].String()})
				}
			}
			return nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil
		}
		for _, it := range items {
			var pair []text
			if json.Unmarshal(it, &pair) == nil && len(pair) == 2 {
				*t = append(*t, tagPair{pair[0].String(), pair[1].String()})
				continue
			}
			var kv struct{ Key, Value text }
			if json.Unmarshal(it, &kv) == nil && kv.Key != "" {
				*t = append(*t, tagPair{kv.Key.String(), kv.Value.String()})
			}
		}
	}
	return nil
}

func (t tags) get(key string) string {
	for _, p := range t {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

// boolean accepts true/false, "true"/"false" and 1/0.
type boolean bool

func (v *boolean) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = boolean(t.String() == "true" || t.String() == "1")
	return nil
}

// idOrObj is an id given as a string or number, or as an object with one
// ({"id": ...} or {"key": ...}: a commit).
type idOrObj string

func (v *idOrObj) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		var o struct{ ID, Key text }
		if json.Unmarshal(b, &o) == nil {
			*v = idOrObj(firstNonEmpty(o.Key.String(), o.ID.String()))
		}
		return nil
	}
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = idOrObj(t.String())
	return nil
}

// settings are alert-rule-action settings: [{"name":..., "value":...}].
// Sentry's Automations save every value that is not a string JSON-encoded
// (a select's "payments" can come back as "\"payments\""), so a value that
// is a JSON string literal is decoded.
type settings map[string]string

func (s *settings) UnmarshalJSON(b []byte) error {
	var items []struct {
		Name  text `json:"name"`
		Value text `json:"value"`
	}
	if err := json.Unmarshal(b, &items); err != nil {
		return nil
	}
	for _, it := range items {
		if it.Name == "" {
			continue
		}
		if *s == nil {
			*s = settings{}
		}
		v := it.Value.String()
		var inner string
		if strings.HasPrefix(v, `"`) && json.Unmarshal([]byte(v), &inner) == nil {
			v = strings.TrimSpace(inner)
		}
		(*s)[it.Name.String()] = v
	}
	return nil
}

// exceptions is the exception interface of a stored event: {"values":[...]}.
// (Only SDK payloads ever sent a bare list; stored events, which webhooks
// carry, are normalized.)
type exceptions struct {
	Values []exception `json:"values"`
}

type exception struct {
	Type       text        `json:"type"`
	Value      text        `json:"value"`
	Stacktrace *stacktrace `json:"stacktrace"`
}

// stacktrace keeps its frames undecoded until the location needs them:
// events almost always carry a culprit, and decoding every frame of every
// event was a large share of the relay's CPU and garbage under load.
type stacktrace struct {
	Frames rawFrames `json:"frames"`
}

type rawFrames []byte

func (r *rawFrames) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// frames decodes what it can: a frame of the wrong shape becomes an empty
// one, as it would have in the payload's first pass.
func (st *stacktrace) frames() []frame {
	if st == nil || len(st.Frames) == 0 {
		return nil
	}
	var fs []frame
	json.Unmarshal(st.Frames, &fs)
	return fs
}

type frame struct {
	Filename text  `json:"filename"`
	AbsPath  text  `json:"abs_path"`
	Module   text  `json:"module"`
	Function text  `json:"function"`
	Lineno   count `json:"lineno"`
	InApp    *bool `json:"in_app"`
}

func (f frame) String() string {
	file := f.Filename.String()
	if file == "" {
		file = f.AbsPath.String()
	}
	if file == "" {
		file = f.Module.String()
	}
	s := file
	if f.Lineno > 0 {
		s += ":" + strconv.FormatInt(int64(f.Lineno), 10)
	}
	if fn := f.Function.String(); fn != "" {
		if s == "" {
			return fn
		}
		s += " in " + fn
	}
	return s
}

// location picks the frame to show: the last in-app frame, else the last.
func (st *stacktrace) location() string {
	fs := st.frames()
	if len(fs) == 0 {
		return ""
	}
	for i := len(fs) - 1; i >= 0; i-- {
		if f := fs[i]; f.InApp != nil && *f.InApp {
			return f.String()
		}
	}
	return fs[len(fs)-1].String()
}

type threads struct {
	Values []struct {
		Crashed    bool        `json:"crashed"`
		Current    bool        `json:"current"`
		Stacktrace *stacktrace `json:"stacktrace"`
	} `json:"values"`
}

type metadata struct {
	Type     text `json:"type"`
	Value    text `json:"value"`
	Filename text `json:"filename"`
	Function text `json:"function"`
	Title    text `json:"title"`
}

type logentry struct {
	Formatted text `json:"formatted"`
	Message   text `json:"message"`
}
