package redisstore

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

func TestIDs(t *testing.T) {
	ep := store.NewEpoch()
	for _, p := range []position{{ms: 0, n: 1}, {ms: 1764000000123, n: 1}, {ms: 1764000000123, n: 1 << 40}, {ms: 1<<63 - 1, n: 1<<64 - 1}} {
		id := formatID(ep, p)
		gotEp, got, ok := parseID(id)
		if !ok || gotEp != ep || got != p {
			t.Fatalf("parseID(formatID(%v) = %q) = %q, %v, %v", p, id, gotEp, got, ok)
		}
		for _, c := range []byte(id) {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("id %q is not printable ASCII", id)
			}
		}
		if sp, ok := parseStreamID(p.streamID()); !ok || sp != p {
			t.Fatalf("parseStreamID(%q) = %v, %v", p.streamID(), sp, ok)
		}
	}
	if id := formatID("abc", position{ms: 36, n: 35}); id != "#abc-z-10" {
		t.Fatalf("formatID = %q, want #abc-z-10", id)
	}
	// The legacy form of earlier versions, without "#", names the same
	// position.
	if ep, p, ok := parseID("abc-z-10"); !ok || ep != "abc" || p != (position{ms: 36, n: 35}) {
		t.Fatalf(`parseID("abc-z-10") = %q, %v, %v; want the position of "#abc-z-10"`, ep, p, ok)
	}
	for _, bad := range []string{
		"", "#", "abc", "#abc", "abc-", "abc-1", "#abc-1", "abc-1-", "abc--1", "abc-0-1", "#abc-0-1", "abc-01-1", "abc-1-01",
		"ABC-1-1", "abc-1-1-", "abc-1-1-1", "-1-1", "#-1-1", "abc-1-A", "abc-zzzzzzzzzzzzzz-1",
		"abc-1-" + strings.Repeat("z", 13), "a_c-1-1", strings.Repeat("a", 17) + "-1-1",
		"##abc-1-1", "x#abc-1-1", " #abc-1-1", "#abc-1-1#",
	} {
		if ep, p, ok := parseID(bad); ok {
			t.Errorf("parseID(%q) = %q, %v, true; want not a generated id", bad, ep, p)
		}
	}
	if _, _, ok := parseID("#abc-1-0"); !ok {
		t.Errorf(`parseID("#abc-1-0") failed: millisecond 0 is canonical`)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	ep := store.Epoch("ep0")
	p := position{ms: 1764000000123, n: 42}
	for _, e := range []store.Event{
		{},
		{Topics: []string{"a"}, Data: "x"},
		{ID: "custom é", Topics: []string{"a", "", strings.Repeat("t", 300)}, Type: "update", Data: "line1\nline2", Retry: 1500 * time.Millisecond, Private: true},
	} {
		custom := e.ID != ""
		m := string(encodeMeta(nil, &e, custom))
		got, err := decodeEntry(ep, p, m, e.Data)
		if err != nil {
			t.Fatalf("decodeEntry(%+v): %v", e, err)
		}
		want := e
		want.Pos, want.Time = p.n, time.UnixMilli(int64(p.ms))
		if !custom {
			want.ID = formatID(ep, p)
		}
		if got.ID != want.ID || got.Pos != want.Pos || !got.Time.Equal(want.Time) || got.Type != want.Type ||
			got.Data != want.Data || got.Retry != want.Retry || got.Private != want.Private || strings.Join(got.Topics, "|") != strings.Join(want.Topics, "|") || len(got.Topics) != len(want.Topics) {
			t.Fatalf("round trip of %+v gave %+v", want, got)
		}
		// Every truncation and a trailing byte are detected.
		for i := 0; i < len(m); i++ {
			if _, err := decodeEntry(ep, p, m[:i], ""); err == nil {
				t.Fatalf("decodeEntry accepted %q truncated to %d bytes", m, i)
			}
		}
		if _, err := decodeEntry(ep, p, m+"x", ""); err == nil {
			t.Fatalf("decodeEntry accepted a trailing byte")
		}
	}
	if _, err := decodeEntry(ep, p, "\x02\x00\x00\x00\x00", ""); err == nil {
		t.Fatal("decodeEntry accepted an unknown record version")
	}
}

func TestIndexMember(t *testing.T) {
	for _, c := range []struct {
		id string
		p  position
	}{{"order-1", position{ms: 1764000000123, n: 7}}, {"x", position{ms: 0, n: 1<<64 - 1}}, {"é", position{ms: 99, n: 255}}} {
		m := indexMember(c.id, c.p)
		if !strings.HasPrefix(m, c.id+"\x00") {
			t.Fatalf("indexMember(%q) = %q", c.id, m)
		}
		if got, ok := parseIndexMember(m); !ok || got != c.p {
			t.Fatalf("parseIndexMember(%q) = %v, %v; want %v", m, got, ok, c.p)
		}
	}
	// Occurrences of one id sort by position, as ZRANGEBYLEX returns them.
	a, b := indexMember("id", position{ms: 5000, n: 15}), indexMember("id", position{ms: 10, n: 16})
	if a >= b {
		t.Fatalf("members %q and %q do not sort by position", a, b)
	}
}

func TestCeilMilli(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want int64
	}{
		{time.UnixMilli(5), 5},
		{time.UnixMilli(5).Add(time.Nanosecond), 6},
		{time.UnixMilli(5).Add(999999 * time.Nanosecond), 6},
	} {
		if got := ceilMilli(c.t); got != c.want {
			t.Errorf("ceilMilli(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestParseDSN(t *testing.T) {
	u, cfg, err := ParseDSN("redis://:s3cret@cache.example:6380/2?prefix=%7Bapp%7D:&max_len=1000&max_bytes=4096&max_age=24h&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "{app}:" || cfg.MaxLen != 1000 || cfg.MaxBytes != 4096 || cfg.MaxAge != 24*time.Hour {
		t.Fatalf("ParseDSN config = %+v", cfg)
	}
	if u != "redis://:s3cret@cache.example:6380/2?pool_size=7" {
		t.Fatalf("ParseDSN url = %q", u)
	}
	for _, bad := range []string{"redis://h/0?max_len=x", "redis://h/0?max_age=forever", "redis://h/0?max_bytes=1.5", "://"} {
		if _, _, err := ParseDSN(bad); err == nil {
			t.Errorf("ParseDSN(%q) succeeded", bad)
		}
	}
	// The deployments: Sentinel, Cluster (with a hash tag), and wait.
	for _, c := range []struct {
		dsn, url string
		want     Config
	}{
		{"redis+sentinel://s1:26379,s2:26379,s3:26379/0?master_name=m&wait=1&wait_timeout=250ms",
			"redis+sentinel://s1:26379,s2:26379,s3:26379/0?master_name=m", Config{Wait: 1, WaitTimeout: 250 * time.Millisecond}},
		{"rediss+sentinel://:sp@s1:26379/0?master_name=m&password=rp&prefix=app:",
			"rediss+sentinel://:sp@s1:26379/0?master_name=m&password=rp", Config{Prefix: "app:"}},
		{"redis+cluster://n1:7000,n2:7000?prefix=%7Bsluice%7D:", "redis+cluster://n1:7000,n2:7000", Config{Prefix: "{sluice}:"}},
		{"redis://h:6379/0?wait=2", "redis://h:6379/0", Config{Wait: 2}},
		{"redis://h:6379/0?keep_per_channel=100&keep_for=10m&db=1", "redis://h:6379/0?db=1", Config{KeepPerChannel: 100, KeepFor: 10 * time.Minute}},
		{"redis://h:6379/0?keep_per_channel=-1", "redis://h:6379/0", Config{KeepPerChannel: -1}},
	} {
		u, cfg, err := ParseDSN(c.dsn)
		if err != nil || u != c.url || cfg.Prefix != c.want.Prefix || cfg.Wait != c.want.Wait || cfg.WaitTimeout != c.want.WaitTimeout ||
			cfg.KeepPerChannel != c.want.KeepPerChannel || cfg.KeepFor != c.want.KeepFor {
			t.Errorf("ParseDSN(%q) = %q, %+v, %v; want %q, %+v", c.dsn, u, cfg, err, c.url, c.want)
		}
	}
	for _, bad := range []string{"redis+cluster://n1:7000?prefix=sluice:", "redis+cluster://n1:7000?prefix=%7B%7D:", "redis+nope://h",
		"memcache://h", "redis://h/0?wait=-1", "redis://h/0?wait=x", "redis://h/0?wait_timeout=0s",
		"redis://h/0?keep_per_channel=x", "redis://h/0?keep_for=0s", "redis://h/0?keep_for=-1h", "redis://h/0?keep_for=1"} {
		if _, _, err := ParseDSN(bad); err == nil {
			t.Errorf("ParseDSN(%q) succeeded", bad)
		}
	}
	// go-redis reads the hosts of a Sentinel or Cluster DSN as one address
	// and addr parameters.
	for _, c := range []struct{ dsn, want string }{
		{"redis+sentinel://:sp@s1:26379,s2:26380/0?master_name=m", "redis://:sp@s1:26379/0?addr=s2%3A26380&master_name=m"},
		{"rediss+cluster://n1:7000,n2:7001,n3:7002", "rediss://n1:7000?addr=n2%3A7001&addr=n3%3A7002"},
	} {
		u, _ := url.Parse(c.dsn)
		_, base, _ := dsnMode(u.Scheme)
		if got := goRedisURL(u, base); got != c.want {
			t.Errorf("goRedisURL(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
	if u, cfg, err := ParseDSN("rediss://user:pw@h:6379/0"); err != nil || u != "rediss://user:pw@h:6379/0" || cfg.Prefix != "" || cfg.MaxLen != 0 || cfg.MaxBytes != 0 || cfg.MaxAge != 0 {
		t.Fatalf("ParseDSN without store settings = %q, %+v, %v", u, cfg, err)
	}
}
