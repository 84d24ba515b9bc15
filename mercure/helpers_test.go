package mercure

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// hang is how long a test waits for something that should happen promptly:
// it only fires when the code under test hangs.
const hang = 10 * time.Second

const (
	testIssuer = "https://issuer.test"
	pubSecret  = "publisher-secret-at-least-256-bits-long!!"
	subSecret  = "subscriber-secret-at-least-256-bits-long!"
)

type env struct {
	t      *testing.T
	h      *Hub
	eng    *hub.Hub
	st     *store.Memory
	srv    *httptest.Server
	pubKey Key
	subKey Key
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func mustKey(t testing.TB, secret string) Key {
	t.Helper()
	k, err := ParseKey([]byte(secret), "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv starts a Mercure hub on a memory store behind a real HTTP server,
// with HS256 publisher and subscriber keys, the test issuer and anonymous
// subscribers. The classic tokens of the tests carry no iss, so the hub
// skips the issuer check of classic tokens (ClassicSkipIssuerAudience;
// TestClassicTokensIssuerAudience tests the rule). mod may change the
// config (its keys included) before New.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, store.NewMemory(store.MemoryConfig{}), mod)
}

// newEnvStore is newEnv on a memory store keeping only maxEvents events.
func newEnvStore(t *testing.T, maxEvents int) *env {
	t.Helper()
	return newEnvWith(t, store.NewMemory(store.MemoryConfig{MaxEvents: maxEvents}), nil)
}

func newEnvWith(t *testing.T, st *store.Memory, mod func(*Config)) *env {
	t.Helper()
	return newEnvEngine(t, st, nil, mod)
}

// newEnvEngine is newEnvWith whose engine configuration emod may change
// (its Store and Logger set, and MaxTopics 2000, as sluice serve's).
func newEnvEngine(t *testing.T, st *store.Memory, emod func(*hub.Config), mod func(*Config)) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, pubKey: mustKey(t, pubSecret), subKey: mustKey(t, subSecret)}
	ec := hub.Config{Store: st, Logger: quietLogger(), MaxTopics: 2000}
	if emod != nil {
		emod(&ec)
	}
	eng, err := hub.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	cfg := Config{
		Hub:           eng,
		PublisherKey:  &e.pubKey,
		SubscriberKey: &e.subKey,
		Issuers:       []string{testIssuer},
		Anonymous:     true,
		Logger:        quietLogger(),

		ClassicSkipIssuerAudience: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		e.srv.Close()
	})
	return e
}

// resource is the derived resource identifier of the test server.
func (e *env) resource() string { return e.srv.URL + HubPath }

// classicToken signs a classic token with key.
func classicToken(t testing.TB, key Key, publish, subscribe []string) string {
	t.Helper()
	tok, err := NewToken(key.verify.([]byte), key.alg, publish, subscribe, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// modernToken signs a modern access token for the env's resource.
func (e *env) modernToken(key Key, publish, subscribe []Selector, payload any) string {
	e.t.Helper()
	tok, err := NewAccessToken(key, AccessToken{Issuer: testIssuer, Audience: e.resource(), Publish: publish, Subscribe: subscribe, Payload: payload})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// signClaims signs arbitrary claims with an HMAC secret and extra headers.
func signClaims(t testing.TB, secret string, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publish posts form to the hub with a bearer token (none if empty).
func (e *env) publish(token string, form url.Values) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+HubPath, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) *http.Response {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// mustPublish publishes and returns the id, failing unless 200.
// mustPublish publishes form and returns the id once the engine has
// dispatched the update, so that a subscription opened afterwards starts
// after it whatever the scheduling.
func (e *env) mustPublish(form url.Values) string {
	e.t.Helper()
	resp := e.publish(classicToken(e.t, e.pubKey, []string{"*"}, nil), form)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("publish %v: %d %s", form, resp.StatusCode, body)
	}
	id := string(body)
	pos, err := e.st.Resolve(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		at := e.eng.Stats().Position // the last update dispatched
		if at != "" {
			if p, err := e.st.Resolve(e.t.Context(), at); err == nil && p >= pos {
				return id
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("update %s not dispatched (the engine is at %q)", id, at)
		}
		time.Sleep(time.Millisecond)
	}
}

// get sends a request to path and returns the response, fully read.
func (e *env) get(path string, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp := e.do(req)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// client is one subscriber's stream, read on its own goroutine.
type client struct {
	t        *testing.T
	resp     *http.Response
	cancel   context.CancelFunc
	events   chan sse.Event
	comments chan string
	done     chan struct{}
	err      error // valid after done

	mu  sync.Mutex
	raw bytes.Buffer
}

type lockedWriter struct{ c *client }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.raw.Write(p)
}

// subscribe opens a stream on the hub with query and extra headers and
// returns once the response headers arrived; it fails unless 200.
func (e *env) subscribe(query string, hdr http.Header) *client {
	e.t.Helper()
	c, resp := e.open(query, hdr)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("subscribe ?%s: %d %s", query, resp.StatusCode, body)
	}
	return c
}

// open opens a stream and returns the client (nil unless 200) and the
// response.
func (e *env) open(query string, hdr http.Header) (*client, *http.Response) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+HubPath+"?"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return e.openRequest(req, cancel)
}

// openRequest sends req, whose context cancel ends, as open does.
func (e *env) openRequest(req *http.Request, cancel context.CancelFunc) (*client, *http.Response) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Cleanup(func() { resp.Body.Close(); cancel() })
		return nil, resp
	}
	c := &client{t: e.t, resp: resp, cancel: cancel, events: make(chan sse.Event, 1024),
		comments: make(chan string, 1024), done: make(chan struct{})}
	rd := sse.NewReader(io.TeeReader(resp.Body, lockedWriter{c}))
	rd.OnComment = func(text string) {
		select {
		case c.comments <- text:
		default:
		}
	}
	go func() {
		defer close(c.done)
		defer close(c.events)
		for {
			ev, err := rd.Next()
			if err != nil {
				c.err = err
				return
			}
			c.events <- ev
		}
	}()
	e.t.Cleanup(c.close)
	return c, resp
}

func (c *client) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event, failing on hang or end of stream.
func (c *client) next() sse.Event {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("stream ended: %v", c.err)
		}
		return ev
	case <-time.After(hang):
		c.t.Fatal("no event")
	}
	return sse.Event{}
}

// rawBytes returns what the client has read so far.
func (c *client) rawBytes() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.String()
}

// ended waits for the end of the stream.
func (c *client) ended() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(hang):
		c.t.Fatal("stream did not end")
	}
}

// bearer returns an Authorization header.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// fence publishes a public update on a fence topic the client subscribes
// to and waits for it: everything published before it has been delivered
// or filtered out. It lets tests assert that something was NOT delivered
// without sleeping.
func (e *env) fence(c *client, topic string) {
	e.t.Helper()
	id := e.mustPublish(form("topic", topic, "data", "fence"))
	for {
		ev := c.next()
		if ev.ID == id {
			return
		}
		e.t.Fatalf("unexpected event before the fence: %+v", ev)
	}
}
