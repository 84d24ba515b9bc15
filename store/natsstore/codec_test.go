package natsstore

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store"
)

func TestRecordRoundTrip(t *testing.T) {
	ep := store.Epoch("ep0")
	at := time.Date(2031, 2, 3, 4, 5, 6, 789, time.UTC)
	for _, e := range []store.Event{
		{},
		{Topics: []string{"a"}, Data: "x"},
		{ID: "custom é", Topics: []string{"a", "", strings.Repeat("t", 300)}, Type: "update", Data: "line1\nline2", Retry: 1500 * time.Millisecond, Private: true},
	} {
		custom := e.ID != ""
		b := encode(nil, &e, custom, at)
		want := e
		want.Pos, want.Time = 42, at
		if !custom {
			want.ID = ep.ID(42)
		}
		// Without an arena, and with one (twice: the second event's lists
		// and ids follow the first's in its chunks).
		a := new(arena)
		for _, a := range []*arena{nil, a, a} {
			got, err := decode(ep, 42, b, a)
			if err != nil {
				t.Fatalf("decode(%+v): %v", e, err)
			}
			if got.ID != want.ID || got.Pos != want.Pos || !got.Time.Equal(want.Time) || got.Type != want.Type || got.Data != want.Data ||
				got.Retry != want.Retry || got.Private != want.Private || strings.Join(got.Topics, "|") != strings.Join(want.Topics, "|") || len(got.Topics) != len(want.Topics) {
				t.Fatalf("round trip of %+v gave %+v", want, got)
			}
			if len(got.Topics) != cap(got.Topics) {
				t.Fatalf("decode returned topics with room to append: len %d, cap %d", len(got.Topics), cap(got.Topics))
			}
		}
		if id, ok := customID(b); !ok || id != e.ID {
			t.Fatalf("customID = %q, %v; want %q", id, ok, e.ID)
		}
		if rt, ok := recordTime(b); !ok || !rt.Equal(at) {
			t.Fatalf("recordTime = %v, %v", rt, ok)
		}
		// A record cut inside its header or fields is detected (the data is
		// the rest, so only the parts before it can be checked).
		fixed := len(b) - len(e.Data)
		for i := 0; i < fixed; i++ {
			if _, err := decode(ep, 42, b[:i], nil); err == nil {
				t.Fatalf("decode accepted the record of %+v cut to %d of %d bytes", e, i, fixed)
			}
		}
	}
	if _, err := decode(ep, 1, []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil); err == nil {
		t.Fatal("decode accepted an unknown record version")
	}
}

func TestIDToken(t *testing.T) {
	seen := map[string]bool{}
	for _, id := range []string{"a", "b", "order-1", "é\tx y.z*>", strings.Repeat("x", store.MaxIDLen)} {
		tok := idToken(id)
		if len(tok) != 22 || strings.ContainsAny(tok, " .*>\t\r\n") || seen[tok] {
			t.Fatalf("idToken(%.20q) = %q", id, tok)
		}
		seen[tok] = true
	}
	if a1, a2 := idToken("a"), idToken("a"); a1 != a2 {
		t.Fatal("idToken is not deterministic")
	}
}

func TestEpochOf(t *testing.T) {
	c := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ep := epochOf("S", c)
	if !ep.Valid() || len(ep) != 8 || ep != epochOf("S", c) {
		t.Fatalf("epochOf = %q", ep)
	}
	if epochOf("S", c.Add(time.Nanosecond)) == ep || epochOf("T", c) == ep {
		t.Fatal("a recreated or another stream has the same epoch")
	}
}

func TestParseDSN(t *testing.T) {
	u, cfg, err := ParseDSN("nats://user:pw@n1:4222,nats://n2:4222?stream=EVENTS&subject=app.ev&max_msgs=1000&max_bytes=4096&max_age=24h")
	if err != nil {
		t.Fatal(err)
	}
	if u != "nats://user:pw@n1:4222,nats://n2:4222" || cfg.Stream != "EVENTS" || cfg.Subject != "app.ev" || cfg.MaxMsgs != 1000 || cfg.MaxBytes != 4096 || cfg.MaxAge != 24*time.Hour {
		t.Fatalf("ParseDSN = %q, %+v", u, cfg)
	}
	// The options of a cluster's operator: replicas, storage, credentials,
	// NKeys, TLS files.
	for _, c := range []struct {
		dsn  string
		want Config
	}{
		{"nats://n1,nats://n2,nats://n3?replicas=3", Config{Replicas: 3}},
		{"nats://h?replicas=1&storage=memory", Config{Replicas: 1, Storage: jetstream.MemoryStorage}},
		{"nats://h?storage=file", Config{Storage: jetstream.FileStorage}},
		{"nats://h?creds=/etc/sluice/nats.creds", Config{CredsFile: "/etc/sluice/nats.creds"}},
		{"nats://h?nkey=/etc/sluice/seed.nk", Config{NKeySeedFile: "/etc/sluice/seed.nk"}},
		{"tls://h?tls_ca=ca.pem&tls_cert=c.pem&tls_key=c.key", Config{TLSCAFile: "ca.pem", TLSCertFile: "c.pem", TLSKeyFile: "c.key"}},
	} {
		_, cfg, err := ParseDSN(c.dsn)
		if err != nil || cfg.Replicas != c.want.Replicas || cfg.Storage != c.want.Storage || cfg.CredsFile != c.want.CredsFile ||
			cfg.NKeySeedFile != c.want.NKeySeedFile || cfg.TLSCAFile != c.want.TLSCAFile || cfg.TLSCertFile != c.want.TLSCertFile || cfg.TLSKeyFile != c.want.TLSKeyFile {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v", c.dsn, cfg, err, c.want)
		}
	}
	for _, bad := range []string{"nats://h?max_msgs=x", "nats://h?max_age=forever", "nats://h?color=blue", "nats://h?stream=%zz",
		"nats://h?replicas=0", "nats://h?replicas=three", "nats://h?storage=disk", "nats://h?tls_cert=c.pem", "nats://h?tls_key=c.key"} {
		if _, _, err := ParseDSN(bad); err == nil {
			t.Errorf("ParseDSN(%q) succeeded", bad)
		}
	}
	if u, cfg, err := ParseDSN("tls://h:4222"); err != nil || u != "tls://h:4222" || cfg.Stream != "" {
		t.Fatalf("ParseDSN without settings = %q, %+v, %v", u, cfg, err)
	}
}

func TestStreamSeq(t *testing.T) {
	for _, c := range []struct {
		reply string
		want  uint64
		ok    bool
	}{
		{"$JS.ACK.S.C.1.42.7.1700000000000000000.0", 42, true},
		{"$JS.ACK.dom.hash.S.C.1.43.7.1700000000000000000.0.rand", 43, true},
		{"$JS.ACK._.hash.S.C.1.44.7.1700000000000000000.0.r", 44, true},
		{"$JS.ACK._.hash.S.C.1.44.7.1700000000000000000.0", 0, false},
		{"$JS.ACK.S.C.1.x.7.1700000000000000000.0", 0, false},
		{"$JS.ACK.S.C.1.0.7.1700000000000000000.0", 0, false},
		{"_INBOX.abc", 0, false},
		{"", 0, false},
	} {
		if got, ok := streamSeq(c.reply); got != c.want || ok != c.ok {
			t.Errorf("streamSeq(%q) = %d, %v; want %d, %v", c.reply, got, ok, c.want, c.ok)
		}
	}
}
