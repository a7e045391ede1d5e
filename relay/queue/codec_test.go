package queue

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
)

// fullAlert sets every field of formatter.Alert, so a field added to it
// without teaching the codec fails the round trip.
func fullAlert(t testing.TB) formatter.Alert {
	var a formatter.Alert
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Interface().(type) {
		case string:
			f.SetString(name + " ✓ \x00 \"quoted\"")
		case int64:
			f.SetInt(int64(-1000 * (i + 1)))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2026, 11, 22, 13, 4, 5, 123456789, time.UTC)))
		case []formatter.Tag:
			f.Set(reflect.ValueOf([]formatter.Tag{{Key: "environment", Value: "production"}, {Key: "", Value: "empty key"}}))
		case map[string]string:
			f.Set(reflect.ValueOf(map[string]string{"route": "ops", "mentions": "13800000000", "": ""}))
		case []formatter.Evidence:
			f.Set(reflect.ValueOf([]formatter.Evidence{{Name: "Failure reason", Value: "503", Important: true}, {Name: "", Value: ""}}))
		case []formatter.Ref:
			f.Set(reflect.ValueOf([]formatter.Ref{{Title: "acme/web#7", URL: "https://github.com/acme/web/pull/7"}}))
		default:
			t.Fatalf("formatter.Alert.%s is a %s: teach encodeAlert and decodeAlert", name, f.Type())
		}
	}
	return a
}

func TestAlertCodecRoundTrip(t *testing.T) {
	for name, a := range map[string]formatter.Alert{
		"every field": fullAlert(t),
		"zero":        {},
		"before 1970": {Title: "old", Time: time.Date(1960, 1, 2, 3, 4, 5, 6, time.UTC)},
		"far future":  {Title: "new", Time: time.Date(5000, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got, err := decodeAlert(encodeAlert(a))
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("%s: round trip gave %+v, %v; want %+v", name, got, err, a)
		}
	}
}

func TestAlertCodecRejectsDamage(t *testing.T) {
	enc := encodeAlert(fullAlert(t))
	cases := map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{9}, enc[1:]...),
		"trailing bytes": append(bytes.Clone(enc), 0),
		"JSON":           []byte(`{"title":"x"}`),
	}
	for cut := 1; cut < len(enc); cut += 7 {
		cases[fmt.Sprintf("cut at %d", cut)] = enc[:cut]
	}
	for name, b := range cases {
		if a, err := decodeAlert(b); err == nil {
			t.Errorf("%s: decoded to %+v, want an error", name, a)
		}
	}
}

func FuzzDecodeAlert(f *testing.F) {
	f.Add(encodeAlert(fullAlert(f)))
	f.Add(encodeAlert(formatter.Alert{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAlert(b)
		if err != nil {
			return
		}
		again, err := decodeAlert(encodeAlert(a))
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(a)) {
			t.Fatalf("re-encoding %+v gave %+v, %v", a, again, err)
		}
	})
}

// normalize makes empty tags and settings nil, and times UTC: what the
// encoding keeps of them.
func normalize(a formatter.Alert) formatter.Alert {
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	if len(a.Settings) == 0 {
		a.Settings = nil
	}
	if len(a.Evidence) == 0 {
		a.Evidence = nil
	}
	if len(a.PullRequests) == 0 {
		a.PullRequests = nil
	}
	if !a.Time.IsZero() {
		a.Time = a.Time.UTC()
	}
	return a
}

func TestDeliveryRecordCodec(t *testing.T) {
	// A field added to either type needs the codec taught, and this list.
	if n, m := reflect.TypeFor[deliveryRecord]().NumField(), reflect.TypeFor[formatter.Mentions]().NumField(); n != 5 || m != 3 {
		t.Fatalf("deliveryRecord has %d fields, Mentions %d: teach encodeDeliveryRecord and decodeDeliveryRecord", n, m)
	}
	full := deliveryRecord{AlertID: "01-abc", Type: "actionCard", Note: "DingTalk robot ops: errcode 310000", Accepted: time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC),
		Mentions: formatter.Mentions{Mobiles: []string{"13800000000", ""}, UserIDs: []string{"manager1"}, All: true}}
	for name, d := range map[string]deliveryRecord{"full": full, "zero": {}} {
		got, err := decodeDeliveryRecord(encodeDeliveryRecord(d))
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("%s: round trip gave %+v, %v", name, got, err)
		}
	}
	enc := encodeDeliveryRecord(full)
	for _, b := range [][]byte{nil, {7}, enc[:len(enc)-1], append(bytes.Clone(enc), 1), []byte("{")} {
		if d, err := decodeDeliveryRecord(b); err == nil {
			t.Errorf("%q decoded to %+v, want an error", b, d)
		}
	}
}

func FuzzDecodeDeliveryRecord(f *testing.F) {
	f.Add(encodeDeliveryRecord(deliveryRecord{AlertID: "x", Mentions: formatter.Mentions{Mobiles: []string{"1"}}, Accepted: time.Unix(1, 2)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDeliveryRecord(b)
		if err != nil {
			return
		}
		again, err := decodeDeliveryRecord(encodeDeliveryRecord(d))
		if d.Accepted = d.Accepted.UTC(); d.Accepted.IsZero() {
			d.Accepted = time.Time{}
		}
		if len(d.Mentions.Mobiles) == 0 {
			d.Mentions.Mobiles = nil
		}
		if len(d.Mentions.UserIDs) == 0 {
			d.Mentions.UserIDs = nil
		}
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("re-encoding %+v gave %+v, %v", d, again, err)
		}
	})
}

var updateFormats = flag.Bool("update-formats", false, "write testdata/format for the current version (only when a new version is added)")

// TestStoredFormatsStillDecode reads records written by every stored format
// version: what a relay upgraded onto an old data directory finds. A new
// version adds its files with -update-formats; the old ones stay.
func TestStoredFormatsStillDecode(t *testing.T) {
	alert, delivery := fullAlert(t), deliveryRecord{AlertID: "01-abc", Type: "actionCard", Note: "fallback", Accepted: time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC),
		Mentions: formatter.Mentions{Mobiles: []string{"13800000000"}, UserIDs: []string{"manager1"}, All: true}}
	sub := storedSubmission{AlertID: "01-abc", Dedupe: hashKey("event_alert:1:rule"), Expires: 1_800_000_000_000_000_000,
		Targets: []Target{{Robot: "a", Mentions: delivery.Mentions, Type: "actionCard", Note: "fallback"}}, Accept: delivery.Accepted}
	record, err := encodeRecord(sub, encodeAlert(alert))
	if err != nil {
		t.Fatal(err)
	}
	dead := DeadLetter{ID: "7", Reason: "expired", Buried: delivery.Accepted, Delivery: Delivery{ID: "9", AlertID: "01-abc", Robot: "a",
		Alert: alert, Mentions: delivery.Mentions, Type: "actionCard", Note: "fallback", Accepted: delivery.Accepted}}
	deadJSON, err := json.Marshal(dead)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		fmt.Sprintf("alert-%d.bin", alertFormatV1):       encodeAlert(alert),
		fmt.Sprintf("delivery-%d.bin", deliveryFormatV1): encodeDeliveryRecord(delivery),
		fmt.Sprintf("record-%d.bin", recordFormat):       record,
		"deadletter-1.json":                              deadJSON,
	}
	if *updateFormats {
		os.MkdirAll(filepath.Join("testdata", "format"), 0o755)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join("testdata", "format", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", "format", name))
		if err != nil {
			t.Fatalf("%v: the stored formats of every version must stay readable", err)
		}
		var got, want any
		switch {
		case strings.HasPrefix(name, "alert-"):
			got, err = decodeAlert(b)
			want = alert
		case strings.HasPrefix(name, "delivery-"):
			got, err = decodeDeliveryRecord(b)
			want = delivery
		case strings.HasPrefix(name, "record-"):
			var st storedSubmission
			var stored []byte
			st, stored, err = decodeRecord(b)
			var a formatter.Alert
			if err == nil {
				a, err = decodeAlert(stored)
			}
			got, want = []any{st, a}, []any{sub, alert}
		default:
			got, err = decodeDeadLetter([]byte("7"), b)
			want = dead
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s decodes to %+v, %v", name, got, err)
		}
	}
}
