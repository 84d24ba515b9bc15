package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/store"
)

// hang is how long a test waits for something that should happen promptly:
// it only fires when the code under test hangs.
const hang = 15 * time.Second

// TestServeReadTimeoutFlag: --read-timeout (SLUICE_READ_TIMEOUT) sets the
// server's header timeout and the hub's body timeout; default 10s.
func TestServeReadTimeoutFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{nil, nil, 10 * time.Second},
		{[]string{"--read-timeout", "3s"}, nil, 3 * time.Second},
		{nil, map[string]string{"SLUICE_READ_TIMEOUT": "4s"}, 4 * time.Second},
	} {
		c := mustConfig(t, tt.args, tt.env)
		if got := c.mercureConfig(nil, discardLogger()).ReadTimeout; got != tt.want {
			t.Errorf("%q %v: mercure ReadTimeout %v, want %v", tt.args, tt.env, got, tt.want)
		}
	}
	s, _, _ := startInProcess(t, "--store", "memory", "--read-timeout", "7s")
	if s.http.ReadHeaderTimeout != 7*time.Second {
		t.Errorf("--read-timeout 7s: ReadHeaderTimeout %v", s.http.ReadHeaderTimeout)
	}
}

// slowClient connects to base, writes head, then one byte of trickle per
// 20 ms, and reports whether the server closed the connection before the
// hang guard.
func slowClient(t *testing.T, base, head, trickle string) bool {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := nc.Write([]byte{trickle[i%len(trickle)]}); err != nil {
					return
				}
			}
		}
	})
	_ = nc.SetReadDeadline(time.Now().Add(hang))
	_, err = io.ReadAll(nc)
	close(stop)
	wg.Wait()
	return err == nil || !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestServeSlowClientsCutOff: with --read-timeout, clients that send their
// headers or their body slowly are disconnected, while a subscriber goes on
// receiving events.
func TestServeSlowClientsCutOff(t *testing.T) {
	s, base, _ := startInProcess(t, "--store", "memory", "--read-timeout", "200ms")
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?topic=t", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	head := "QUERY " + mercure.HubPath + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
	if !slowClient(t, base, head, "topic=t&") {
		t.Error("a QUERY body sent at one byte per 20 ms was not cut off")
	}
	if !slowClient(t, base, "GET / HTTP/1.1\r\n", "X-Slow: yes\r\n") {
		t.Error("headers sent at one byte per 20 ms were not cut off")
	}

	code, id := publishForm(t, base, s.cfg.dev.publisherToken, url.Values{"topic": {"t"}, "data": {"hi"}})
	if code != 200 {
		t.Fatalf("publish: %d", code)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "id: "+id) {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("subscriber stream ended (%v) before the event %s: %q", err, id, got.String())
		}
	}
}

// TestLoopbackHost: the Host names the development tokens are served to.
func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LOCALHOST:8080": true, "localhost.": true,
		"app.localhost": true, "a.b.localhost:1": true, "127.0.0.1": true, "127.0.0.1:8080": true,
		"127.8.9.1:80": true, "[::1]": true, "[::1]:8080": true, "::1": true,
		"": false, "rebind.attacker.example": false, "rebind.attacker.example:8080": false,
		"localhost.attacker.example": false, "127.0.0.1.nip.io": false, "evil-localhost": false,
		"10.0.0.1:80": false, "[::]:80": false, "0.0.0.0:8080": false, "[fe80::1%25lo]:80": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestServeDevTokensOnlyForLoopbackHost: in development mode the demo page
// carries the publish-everything token only when asked for under a
// loopback name. A DNS-rebinding site reaches the loopback hub under its
// own name: it gets the page without tokens and a note saying why.
func TestServeDevTokensOnlyForLoopbackHost(t *testing.T) {
	s, base, _ := startInProcess(t, "--store", "memory")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	tokens := []string{s.cfg.dev.publisherToken, s.cfg.dev.subscriberToken}
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost:" + port, true},
		{"127.0.0.1:" + port, true},
		{"[::1]:" + port, true},
		{"demo.localhost:" + port, true},
		{"rebind.attacker.example", false},
		{"rebind.attacker.example:" + port, false},
		{"localhost.attacker.example:" + port, false},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = tt.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		page := string(b)
		if res.StatusCode != 200 {
			t.Errorf("Host %s: status %d", tt.host, res.StatusCode)
			continue
		}
		for _, tok := range tokens {
			if has := strings.Contains(page, tok); has != tt.want {
				t.Errorf("Host %s: page has a development token: %v, want %v", tt.host, has, tt.want)
			}
		}
		if withheld := strings.Contains(page, "not under the name"); withheld == tt.want {
			t.Errorf("Host %s: note on withheld tokens: %v, want %v", tt.host, withheld, !tt.want)
		}
	}
	// With a key there are no tokens at all, and no note.
	_, kbase, _ := startInProcess(t, "--store", "memory", "--jwt-key", "k")
	req, _ := http.NewRequest(http.MethodGet, kbase+"/", nil)
	req.Host = "hub.example"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(b), "not under the name") || strings.Contains(string(b), "Development mode") {
		t.Errorf("page of a hub with a key mentions development mode")
	}
}

// failingStore is a store whose Append fails while failing is set, as a
// full disk makes every publish fail while reads still work.
type failingStore struct {
	store.Store
	failing atomic.Bool
}

var errDiskFull = errors.New("write sluice.db: no space left on device")

func (f *failingStore) Append(ctx context.Context, e store.Event) (store.Event, error) {
	if f.failing.Load() {
		return store.Event{}, errDiskFull
	}
	return f.Store.Append(ctx, e)
}

// TestServeHealthzPublishFailure: /healthz answers 503 with the reason
// while the last store append failed within --publish-failure-window, 200
// again once an append succeeds or the window has passed (so that a hub
// taken out of rotation, which gets no publish, is tried again); refused
// publishes (bad requests) do not count.
func TestServeHealthzPublishFailure(t *testing.T) {
	mem := store.NewMemory(store.MemoryConfig{})
	fs := &failingStore{Store: mem}
	s, base, _ := startInProcessOn(t, fs, "--jwt-key", "k", "--demo=false", "--publish-failure-window", "30s")
	// /healthz's clock runs ahead of the engine's (which stamps failures)
	// by offset.
	var offset atomic.Int64
	s.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	advance := func(d time.Duration) { offset.Add(int64(d)) }
	tok, err := mercure.NewToken([]byte("k"), "", []string{"*"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(form url.Values) int {
		code, _ := publishForm(t, base, tok, form)
		return code
	}
	healthz := func(want int, wantBody string) {
		t.Helper()
		code, body := get(t, base+"/healthz")
		if code != want || !strings.Contains(body, wantBody) {
			t.Fatalf("/healthz = %d %s, want %d with %q", code, body, want, wantBody)
		}
	}

	healthz(200, `"status":"ok"`)
	fs.failing.Store(true)
	if code := publish(url.Values{"topic": {"t"}, "data": {"x"}}); code != 500 {
		t.Fatalf("publish on a full disk: %d, want 500", code)
	}
	healthz(503, "no space left on device")
	advance(29 * time.Second)
	healthz(503, "publish failed")
	advance(2 * time.Second) // past the window: tried again
	healthz(200, `"status":"ok"`)
	offset.Store(0)

	if code := publish(url.Values{"topic": {"t"}, "data": {"x"}}); code != 500 {
		t.Fatalf("publish on a full disk: %d, want 500", code)
	}
	healthz(503, "no space left on device")
	fs.failing.Store(false)
	// A refused publish is not a store failure: the hub stays unready.
	if code := publish(url.Values{"data": {"no topic"}}); code != 400 {
		t.Fatalf("publish without topic: %d, want 400", code)
	}
	healthz(503, "no space left on device")
	if code := publish(url.Values{"topic": {"t"}, "data": {"x"}}); code != 200 {
		t.Fatalf("publish once the disk has room: %d, want 200", code)
	}
	healthz(200, `"status":"ok"`)
}

// TestServeClassicTokensIssuerAudience: with --jwt-issuer and
// --jwt-audience, a classic token (sluice token's kind) must carry them;
// --jwt-classic-skip-iss-aud accepts classic tokens without them.
func TestServeClassicTokensIssuerAudience(t *testing.T) {
	const iss = "https://auth.example"
	plain, err := mercure.NewToken([]byte("k"), "", []string{"*"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		lax  bool
	}{{"strict", false}, {"lax", true}} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--store", "memory", "--jwt-key", "k", "--demo=false", "--jwt-issuer", iss}
			if tt.lax {
				args = append(args, "--jwt-classic-skip-iss-aud")
			}
			_, base, _ := startInProcess(t, args...)
			t.Run("audience", func(t *testing.T) {
				const aud = "https://hub.example" + mercure.HubPath
				_, abase, _ := startInProcess(t, append(args, "--jwt-audience", aud)...)
				withIss := signHS256(t, "k", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "iss": iss})
				both := signHS256(t, "k", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "iss": iss, "aud": aud})
				wantNoAud := 401
				if tt.lax {
					wantNoAud = 200
				}
				if code, _ := publishForm(t, abase, withIss, url.Values{"topic": {"t"}}); code != wantNoAud {
					t.Errorf("classic token without aud: %d, want %d", code, wantNoAud)
				}
				if code, _ := publishForm(t, abase, both, url.Values{"topic": {"t"}}); code != 200 {
					t.Errorf("classic token with iss and aud: %d, want 200", code)
				}
			})
			want := 401
			if tt.lax {
				want = 200
			}
			if code, _ := publishForm(t, base, plain, url.Values{"topic": {"t"}}); code != want {
				t.Errorf("classic token without iss: %d, want %d", code, want)
			}
			withIss := signHS256(t, "k", jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}, "iss": iss})
			if code, _ := publishForm(t, base, withIss, url.Values{"topic": {"t"}}); code != 200 {
				t.Errorf("classic token with iss: %d, want 200", code)
			}
		})
	}
}

func signHS256(t *testing.T, secret string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(fmt.Errorf("sign: %w", err))
	}
	return s
}
