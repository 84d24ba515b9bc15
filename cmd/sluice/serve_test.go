package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// env returns a lookupEnv function over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustConfig(t *testing.T, args []string, vars map[string]string) *serveConfig {
	t.Helper()
	var stderr bytes.Buffer
	c, code := parseServeConfig(args, env(vars), &stderr)
	if c == nil {
		t.Fatalf("parseServeConfig(%q) = exit %d: %s", args, code, stderr.String())
	}
	return c
}

func TestServeDefaults(t *testing.T) {
	c := mustConfig(t, nil, nil)
	if c.addr != "localhost:8080" || c.storeKind != "bolt" || c.storePath != "./sluice.db" {
		t.Errorf("defaults: addr %q store %s:%s, want localhost:8080 bolt:./sluice.db", c.addr, c.storeKind, c.storePath)
	}
	if c.dev == nil || !c.anonymous || c.pubKey == nil || c.subKey == nil || !c.classicLax {
		t.Fatalf("no key on localhost: want development mode with keys and anonymous subscribers, got dev=%v anonymous=%v", c.dev, c.anonymous)
	}
	if c.heartbeat != defaultHeartbeat || c.dispatchTimeout != defaultDispatchTimeout || c.maxLifetime != defaultMaxLifetime {
		t.Errorf("timings %v %v %v, want the mercure defaults", c.heartbeat, c.dispatchTimeout, c.maxLifetime)
	}
	// Two runs on one store share the key, kept beside the store.
	if d := mustConfig(t, nil, nil); d.dev.key != c.dev.key || d.dev.keyFile != "./sluice.db.dev-key" {
		t.Errorf("development mode: key file %q, the second run's key differs: %v", d.dev.keyFile, d.dev.key != c.dev.key)
	}
}

func TestServeFlagsWinOverEnv(t *testing.T) {
	vars := map[string]string{
		"SLUICE_ADDR":         "127.0.0.1:9000",
		"SLUICE_STORE":        "memory",
		"SLUICE_JWT_KEY":      "env-secret",
		"SLUICE_HEARTBEAT":    "7s",
		"SLUICE_ANONYMOUS":    "true",
		"SLUICE_CORS_ORIGINS": "https://a.example, https://b.example",
		"SLUICE_HISTORY_SIZE": "42",
		"SLUICE_LOG_LEVEL":    "debug",
	}
	c := mustConfig(t, []string{"--addr", "127.0.0.1:9001", "--heartbeat=3s"}, vars)
	if c.addr != "127.0.0.1:9001" || c.heartbeat != 3*time.Second {
		t.Errorf("flags: addr %q heartbeat %v, want the flags' values", c.addr, c.heartbeat)
	}
	if c.storeKind != "memory" || !c.anonymous || c.historySize != 42 || c.logLevel.String() != "DEBUG" {
		t.Errorf("env: store %q anonymous %v history %d level %v, want the environment's values", c.storeKind, c.anonymous, c.historySize, c.logLevel)
	}
	if got := strings.Join(c.corsOrigins, " "); got != "https://a.example https://b.example" {
		t.Errorf("cors origins %q", got)
	}
	if c.dev != nil || c.pubKey == nil || c.pubKey.Alg() != "HS256" {
		t.Errorf("a key from the environment: want no development mode and an HS256 key, got dev=%v key=%v", c.dev, c.pubKey)
	}
}

func TestServeKeysFromFiles(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.key")
	if err := os.WriteFile(pub, []byte("publisher-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustConfig(t, []string{"--addr", "0.0.0.0:8080", "--publisher-jwt-key", "@" + pub, "--subscriber-jwt-key", "subscriber-secret"}, nil)
	if c.dev != nil || c.anonymous {
		t.Error("keys configured: want no development mode")
	}
	// The publisher key is the file's content (without its line break),
	// the subscriber key the flag.
	_, base, _ := startInProcess(t, "--store", "memory", "--publisher-jwt-key", "@"+pub, "--subscriber-jwt-key", "subscriber-secret")
	for _, tt := range []struct {
		secret string
		want   int
	}{{"publisher-secret", 200}, {"subscriber-secret", 401}} {
		tok, err := mercure.NewToken([]byte(tt.secret), "", []string{"*"}, nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := publishForm(t, base, tok, url.Values{"topic": {"t"}, "data": {"x"}}); code != tt.want {
			t.Errorf("publishing with a token signed by %q: %d, want %d", tt.secret, code, tt.want)
		}
	}
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad dsn", []string{"--store", "postgres://x"}, nil, "unsupported store DSN"},
		{"bolt without path", []string{"--store", "bolt:"}, nil, "want bolt:PATH"},
		{"tls nats url is not a dsn", []string{"--store", "tls://localhost:4222"}, nil, "unsupported store DSN"},
		{"bad nats max_msgs", []string{"--store", "nats://localhost:4222?max_msgs=many"}, nil, "--store: natsstore: parse DSN: max_msgs"},
		{"bad nats max_age", []string{"--store", "nats://localhost:4222?stream=S&max_age=1"}, nil, "max_age"},
		{"unknown nats parameter", []string{"--store", "nats://localhost:4222?prefix=p:"}, nil, `unknown parameter "prefix"`},
		{"nats without host", []string{"--store", "nats://?stream=S"}, nil, "with a host"},
		{"bad redis dsn", []string{"--store", "redis://localhost:6379/0?max_len=many"}, nil, "--store"},
		{"unreadable key", []string{"--jwt-key", "@/nonexistent/key.pem"}, nil, "--jwt-key: reading key"},
		{"pem with hmac", []string{"--jwt-key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, nil, "invalid key"},
		{"secret with rs256", []string{"--jwt-key", "s3cret", "--jwt-alg", "RS256"}, nil, "invalid key"},
		{"bad duration env", nil, map[string]string{"SLUICE_HEARTBEAT": "soon"}, "SLUICE_HEARTBEAT"},
		{"relay without url", []string{"--relay", "chat"}, nil, "want NAME=URL"},
		{"relay bad name", []string{"--relay", "a/b=http://x"}, nil, "want NAME=URL"},
		{"relay named streams", []string{"--relay", "streams=http://x"}, nil, `"streams" is not`},
		{"relay not http", []string{"--relay", "chat=file:///etc/passwd"}, nil, "absolute http(s) URL"},
		{"relay twice", []string{"--relay", "chat=http://x", "--relay", "chat=http://y"}, nil, "given twice"},
		{"relay header of no relay", []string{"--relay-header", "chat=Authorization: Bearer k"}, nil, `no --relay "chat"`},
		{"relay header malformed", []string{"--relay", "chat=http://x", "--relay-header", "chat=Bearer k"}, nil, "want NAME=Header:Value"},
		{"relay max body", []string{"--relay-max-body", "0"}, nil, "--relay-max-body"},
		{"relay lease interval negative", []string{"--relay-lease-interval", "-1s"}, nil, "--relay-lease-interval: must not be negative"},
		{"relay lease ttl too short", []string{"--relay-lease-interval", "1s", "--relay-lease-ttl", "1500ms"}, nil, "at least twice --relay-lease-interval (1s)"},
		{"relay lease interval over default ttl", []string{"--relay-lease-interval", "10s"}, nil, "--relay-lease-ttl 15s: must be at least twice"},
		{"relay without subscriber key", []string{"--addr", "0.0.0.0:80", "--publisher-jwt-key", "k", "--anonymous", "--relay", "chat=http://x"}, nil, "relays are granted by subscriber tokens"},
		{"bad bool env", nil, map[string]string{"SLUICE_ANONYMOUS": "maybe"}, "SLUICE_ANONYMOUS"},
		{"negative duration", []string{"--dispatch-timeout", "-1s"}, nil, "--dispatch-timeout"},
		{"zero dispatch timeout", []string{"--dispatch-timeout", "0"}, nil, "--dispatch-timeout: must be positive"},
		{"negative legacy write timeout", []string{"--write-timeout", "-1s"}, nil, "--write-timeout: must be positive"},
		{"bad addr", []string{"--addr", "nocolon"}, nil, "--addr"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"tls half", []string{"--tls-cert", "c.pem"}, nil, "go together"},
		{"tls unreadable", []string{"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, nil, "--tls-cert"},
		{"no key off loopback", []string{"--addr", ":8080"}, nil, "not a loopback address"},
		{"no key on a public ip", []string{"--addr", "192.0.2.1:8080"}, nil, "not a loopback address"},
		{"dev mode with rs256", []string{"--jwt-alg", "RS256"}, nil, "development mode generates HS256"},
		{"bad audience", []string{"--jwt-key", "k", "--jwt-audience", "not a url"}, nil, ""},
		{"argument", []string{"extra"}, nil, "unexpected argument"},
		{"negative queue", []string{"--queue-events", "-1"}, nil, "--queue-events"},
		{"zero read timeout", []string{"--read-timeout", "0"}, nil, "--read-timeout: must be positive"},
		{"negative read timeout env", nil, map[string]string{"SLUICE_READ_TIMEOUT": "-1s"}, "--read-timeout"},
		{"negative publish failure window", []string{"--publish-failure-window", "-1s"}, nil, "--publish-failure-window"},
		{"pprof off loopback", []string{"--pprof", ":6060"}, nil, "--pprof"},
		{"pprof on a public ip", []string{"--pprof", "192.0.2.1:6060"}, nil, "want a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, code := parseServeConfig(tt.args, env(tt.env), &stderr)
			if tt.want == "" {
				// Validated by the hub at start: newServer must refuse it.
				if c == nil {
					return
				}
				c.storeKind = "memory"
				c.addr = "127.0.0.1:0"
				if _, err := newServer(c, discardLogger()); err == nil {
					t.Fatal("newServer accepted the configuration")
				}
				return
			}
			if c != nil || code != 2 {
				t.Fatalf("accepted (exit %d), want exit 2 with %q", code, tt.want)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n > 0 && tt.name != "argument" {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr.String())
			}
		})
	}
}

// TestServeNATSDSN: nats:// DSNs select the NATS store, and --history-size
// is the stream's message limit unless the DSN sets max_msgs.
func TestServeNATSDSN(t *testing.T) {
	tests := []struct {
		dsn, history string
		wantMax      int64
	}{
		{"nats://localhost:4222", "", 0},
		{"nats://localhost:4222", "500", 500},
		{"nats://u:p@nats1:4222,nats://nats2:4222?stream=EVENTS&max_age=24h", "500", 500},
		{"nats://localhost:4222?max_msgs=42", "500", 42},
		{"nats://localhost:4222?max_msgs=-1", "500", -1},
	}
	for _, tt := range tests {
		args := []string{"--store", tt.dsn, "--jwt-key", "k"}
		if tt.history != "" {
			args = append(args, "--history-size", tt.history)
		}
		c := mustConfig(t, args, nil)
		if c.storeKind != "nats" {
			t.Errorf("%s: store kind %q, want nats", tt.dsn, c.storeKind)
			continue
		}
		// natsstore.Open applies the DSN's settings where the Config
		// leaves a field zero.
		got := natsStoreConfig(c, discardLogger()).MaxMsgs
		if got == 0 {
			_, dsn, err := natsstore.ParseDSN(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			got = dsn.MaxMsgs
		}
		if got != tt.wantMax {
			t.Errorf("%s --history-size %q: the store keeps %d, want %d", tt.dsn, tt.history, got, tt.wantMax)
		}
	}
	// The variable works as the flag does.
	c := mustConfig(t, []string{"--jwt-key", "k"}, map[string]string{"SLUICE_STORE": "nats://127.0.0.1:4222?stream=X"})
	if c.storeKind != "nats" || c.storeDSN != "nats://127.0.0.1:4222?stream=X" {
		t.Errorf("SLUICE_STORE=nats://…: kind %q dsn %q", c.storeKind, c.storeDSN)
	}
}

// TestServeRedisHistorySize: --history-size is the Redis log's length
// limit unless the DSN sets max_len, as the usage says.
func TestServeRedisHistorySize(t *testing.T) {
	tests := []struct {
		dsn, history string
		wantMax      int64
	}{
		{"redis://localhost:6379/0", "", 0},
		{"redis://localhost:6379/0", "500", 500},
		{"redis://localhost:6379/0?max_len=42", "500", 42},
	}
	for _, tt := range tests {
		args := []string{"--store", tt.dsn, "--jwt-key", "k"}
		if tt.history != "" {
			args = append(args, "--history-size", tt.history)
		}
		c := mustConfig(t, args, nil)
		got := redisStoreConfig(c, discardLogger()).MaxLen
		if got == 0 { // redisstore.Open applies the DSN's max_len
			_, dsn, err := redisstore.ParseDSN(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			got = dsn.MaxLen
		}
		if got != tt.wantMax {
			t.Errorf("%s --history-size %q: the store keeps %d, want %d", tt.dsn, tt.history, got, tt.wantMax)
		}
	}
}

// TestServeNATSUnreachable: a hub whose NATS cannot be reached does not
// start, and says why.
func TestServeNATSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := mustConfig(t, []string{"--addr", "127.0.0.1:0", "--store", "nats://" + addr + "?stream=S", "--jwt-key", "k"}, nil)
	start := time.Now()
	s, err := newServer(c, discardLogger())
	if err == nil {
		_ = s.store.Close()
		t.Fatal("newServer started without NATS")
	}
	if !strings.Contains(err.Error(), "open store: natsstore") {
		t.Errorf("error %q does not name the store", err)
	}
	if d := time.Since(start); d > storeOpenTimeout+30*time.Second { // gave up, rather than waiting on
		t.Errorf("took %v to give up", d)
	}
}

func TestServeHelp(t *testing.T) {
	var stderr bytes.Buffer
	if code := runServe(context.Background(), []string{"-h"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Development mode", "SLUICE_JWT_KEY", "--store DSN", "bolt:./sluice.db", "SLUICE_HISTORY_SIZE"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"localhost:8080": true, "127.0.0.1:1": true, "[::1]:80": true, "127.8.9.1:1": true,
		":8080": false, "0.0.0.0:80": false, "[::]:80": false, "example.com:80": false, "10.0.0.1:80": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// iterPull turns an event iterator into a next function that returns
// io.EOF at the end.
func iterPull(seq iter.Seq2[sse.Event, error]) (func() (sse.Event, error), func()) {
	next, stop := iter.Pull2(seq)
	return func() (sse.Event, error) {
		e, err, ok := next()
		if !ok {
			return sse.Event{}, io.EOF
		}
		return e, err
	}, stop
}

// startInProcess runs a hub in this process on a free loopback port.
func startInProcess(t *testing.T, args ...string) (*hubServer, string, func() error) {
	t.Helper()
	return startInProcessOn(t, nil, args...)
}

// startInProcessOn is startInProcess on st, or on the --store when st is
// nil.
func startInProcessOn(t *testing.T, st store.Store, args ...string) (*hubServer, string, func() error) {
	t.Helper()
	c := mustConfig(t, append([]string{"--addr", "127.0.0.1:0"}, args...), nil)
	var s *hubServer
	var err error
	if st != nil {
		s, err = newServerOn(c, discardLogger(), st)
	} else {
		s, err = newServer(c, discardLogger())
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return s, "http://" + s.ln.Addr().String(), stop
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServeEndpointsAndDrain(t *testing.T) {
	s, base, stop := startInProcess(t, "--store", "bolt:"+filepath.Join(t.TempDir(), "h.db"))

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	for _, p := range []string{"/livez", "/healthz?live=1"} {
		if code, _ := get(t, base+p); code != 200 {
			t.Errorf("%s = %d", p, code)
		}
	}
	code, page := get(t, base+"/")
	if code != 200 || !strings.Contains(page, s.cfg.dev.publisherToken) || !strings.Contains(page, `src="app.js"`) {
		t.Errorf("demo page: %d, want it with the development publisher token", code)
	}
	for _, p := range []string{"/app.js", "/style.css"} {
		if code, body := get(t, base+p); code != 200 || len(body) < 100 {
			t.Errorf("%s = %d (%d bytes)", p, code, len(body))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?topic=t", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("anonymous subscribe in development mode: %d", res.StatusCode)
	}
	code, id := publishForm(t, base, s.cfg.dev.publisherToken, url.Values{"topic": {"t"}, "data": {"hi"}})
	if code != 200 || id == "" {
		t.Fatalf("publish with the development token: %d %q", code, id)
	}
	rd := sse.NewReader(res.Body)
	next, stopIter := iterPull(rd.All())
	defer stopIter()
	e, err := next()
	if err != nil || e.Data != "hi" || e.ID != id {
		t.Fatalf("got %+v, %v; want the event %s", e, err, id)
	}
	// The hub counts a delivery once its write returned, which may be
	// after the client has read it: wait for the count (a hang guard).
	var metrics string
	for deadline := time.Now().Add(hang); ; time.Sleep(time.Millisecond) {
		_, metrics = get(t, base+"/metrics")
		if strings.Contains(metrics, "sluice_delivered_events_total 1") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"sluice_published_events_total 1", "sluice_subscribers 1", "sluice_delivered_events_total 1", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Drain: the subscriber gets a retry and the end of its stream, and
	// run returns without error.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	for {
		e, err := next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
		if e.Data != "" {
			t.Fatalf("unexpected event %+v", e)
		}
	}
	if _, ok := rd.Retry(); !ok {
		t.Error("the drained stream carried no retry field")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestServeQueueEvents: --queue-events (or SLUICE_QUEUE_EVENTS) is the
// engine's per-subscriber queue; unset, the engine's default applies.
func TestServeQueueEvents(t *testing.T) {
	c := mustConfig(t, []string{"--queue-events", "16384"}, nil)
	if got := c.engineConfig(nil, nil, discardLogger()).QueueEvents; got != 16384 {
		t.Errorf("--queue-events 16384: engine QueueEvents %d", got)
	}
	c = mustConfig(t, nil, map[string]string{"SLUICE_QUEUE_EVENTS": "4096"})
	if got := c.engineConfig(nil, nil, discardLogger()).QueueEvents; got != 4096 {
		t.Errorf("SLUICE_QUEUE_EVENTS=4096: engine QueueEvents %d", got)
	}
	if got := mustConfig(t, nil, nil).engineConfig(nil, nil, discardLogger()).QueueEvents; got != 0 {
		t.Errorf("default: engine QueueEvents %d, want 0 (the engine's default)", got)
	}
}

// TestServePprof: --pprof serves the profiler on its own loopback address,
// and the hub's address does not.
func TestServePprof(t *testing.T) {
	s, base, stop := startInProcess(t, "--store", "memory", "--jwt-key", "k", "--demo=false", "--pprof", "127.0.0.1:0")
	prof := "http://" + s.pprofLn.Addr().String()
	if code, body := get(t, prof+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("--pprof /debug/pprof/ = %d, want the profile index", code)
	}
	if code, _ := get(t, prof+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("--pprof goroutine profile = %d", code)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("the hub's address serves /debug/pprof/: %d, want 404", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(prof + "/debug/pprof/"); err == nil {
		t.Error("the profiler still answers after the hub stopped")
	}
}

func TestServeHealthzStoreDown(t *testing.T) {
	s, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", "k", "--demo=false")
	if code, _ := get(t, base+"/"); code != 404 {
		t.Errorf("--demo=false: / = %d, want 404", code)
	}
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/healthz")
	if code != 503 || !strings.Contains(body, "store:") {
		t.Errorf("/healthz with a closed store = %d %s, want 503 naming the store", code, body)
	}
	if code, _ := get(t, base+"/livez"); code != 200 {
		t.Errorf("/livez = %d, want 200 (liveness ignores the store)", code)
	}
}

func TestServeRefusesAnonymousWithKey(t *testing.T) {
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", "k")
	if code, _ := get(t, base+mercure.HubPath+"?topic=t"); code != 401 {
		t.Errorf("anonymous subscriber without --anonymous = %d, want 401", code)
	}
}

// TestServeSharedStores runs the hub on the test Redis and NATS
// (scripts/services.sh) and resumes from an id after a restart of the hub.
func TestServeSharedStores(t *testing.T) {
	for _, ss := range sharedStores {
		t.Run(ss.kind, func(t *testing.T) { testServeSharedStore(t, ss.kind) })
	}
}

func testServeSharedStore(t *testing.T, kind string) {
	dsn := sharedStoreDSN(t, kind)
	const key = "shared-store-test-secret"
	tok, err := mercure.NewToken([]byte(key), "", []string{"*"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, base, stop := startInProcess(t, "--store", dsn, "--jwt-key", key, "--anonymous")
	var ids []string
	for i := range 3 {
		code, id := publishForm(t, base, tok, url.Values{"topic": {"r"}, "data": {fmt.Sprint(i)}})
		if code != 200 {
			t.Fatalf("publish: %d", code)
		}
		ids = append(ids, id)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, base, _ = startInProcess(t, "--store", dsn, "--jwt-key", key, "--anonymous")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?topic=r", nil)
	req.Header.Set("Last-Event-ID", ids[0])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	next, stopIter := iterPull(sse.NewReader(res.Body).All())
	defer stopIter()
	for i := 1; i < 3; i++ {
		e, err := next()
		if err != nil || e.ID != ids[i] || e.Data != fmt.Sprint(i) {
			t.Fatalf("got %+v, %v; want %s %d", e, err, ids[i], i)
		}
	}
}

// TestDispatchTimeoutAndItsOldName: --dispatch-timeout is Mercure's
// dispatch_timeout; its old name --write-timeout (which a Mercure user
// reads as write_timeout, the lifetime: --max-lifetime) still sets it, with
// a warning that says so, and yields to the new name.
func TestDispatchTimeoutAndItsOldName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want time.Duration
		warn string
	}{
		{[]string{"--dispatch-timeout", "7s"}, nil, 7 * time.Second, ""},
		{nil, map[string]string{"SLUICE_DISPATCH_TIMEOUT": "8s"}, 8 * time.Second, ""},
		{[]string{"--write-timeout", "9s"}, nil, 9 * time.Second, "deprecated"},
		{nil, map[string]string{"SLUICE_WRITE_TIMEOUT": "600s"}, 600 * time.Second, "Mercure's write_timeout, the connection lifetime, is --max-lifetime"},
		{[]string{"--write-timeout", "9s", "--dispatch-timeout", "3s"}, nil, 3 * time.Second, "ignored"},
	} {
		c := mustConfig(t, append([]string{"--store", "memory"}, tc.args...), tc.env)
		warnings := strings.Join(c.warnings, "\n")
		if c.dispatchTimeout != tc.want || !strings.Contains(warnings, tc.warn) || (tc.warn == "" && warnings != "") {
			t.Errorf("%q %v: dispatch timeout %v, warnings %q; want %v and %q", tc.args, tc.env, c.dispatchTimeout, warnings, tc.want, tc.warn)
		}
		if got := c.engineConfig(nil, nil, discardLogger()).WriteTimeout; got != tc.want {
			t.Errorf("%q: the engine's WriteTimeout is %v, want %v", tc.args, got, tc.want)
		}
	}
}
