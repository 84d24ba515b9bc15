package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/sse"
)

// llmUpstream is an OpenAI-like upstream: it records what it was sent and
// answers with n tokens, each waiting for a value on gate.
type llmUpstream struct {
	srv   *httptest.Server
	calls atomic.Int64
	gate  chan struct{}

	mu   sync.Mutex
	last *http.Request
	body string
}

func newLLMUpstream(t *testing.T, n int) *llmUpstream {
	u := &llmUpstream{gate: make(chan struct{}, n)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last, u.body = r, string(b)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			select {
			case <-u.gate:
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(func() {
		close(u.gate)
		u.srv.Close()
	})
	return u
}

// relayToken is a classic subscriber token granting the relays.
func relayToken(t *testing.T, key string, relays ...string) string {
	return signHS256(t, key, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(),
		"mercure": map[string]any{"subscribe": []string{"*"}, "relay": relays}})
}

// sluice serve --relay: only a token granting the relay starts it; the
// upstream gets the hub's key, the body and the allowed headers, never
// the client's token or cookies; the answer is a stream, resumed with
// GET /relay/streams/ID after a drop, and the upstream is called once.
func TestServeRelay(t *testing.T) {
	const key = "relay-test-key-at-least-256-bits-long!!"
	llm := newLLMUpstream(t, 10)
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", key,
		"--relay", "chat="+llm.srv.URL+"/v1", "--relay", "other="+llm.srv.URL,
		"--relay-header", "chat=Authorization: Bearer sk-upstream", "--relay-max-body", "100")

	post := func(path, token string, body string, hdr http.Header) *http.Response {
		t.Helper()
		return relayPost(t, base+path, token, body, hdr)
	}
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
	}{
		{"no token", "/relay/chat/chat/completions", "", "{}", 401},
		{"another key", "/relay/chat", relayToken(t, "another-key-at-least-256-bits-long!!!!!!", "chat"), "{}", 401},
		{"no grant", "/relay/chat", relayToken(t, key), "{}", 403},
		{"another relay's grant", "/relay/chat", relayToken(t, key, "other"), "{}", 403},
		{"granted, no such relay", "/relay/nope", relayToken(t, key, "nope"), "{}", 404},
		{"body too large", "/relay/chat", relayToken(t, key, "chat"), strings.Repeat("x", 101), 413},
		{"dot-dot", "/relay/chat/a/%2e%2e/b", relayToken(t, key, "chat"), "{}", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(tc.path, tc.token, tc.body, nil)
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if resp.Header.Get(relayIDHeader) != "" {
				t.Fatal("a refused relay has an id")
			}
		})
	}
	if n := llm.calls.Load(); n != 0 {
		t.Fatalf("refused requests reached the upstream %d times", n)
	}

	tok := relayToken(t, key, "chat")
	resp := post("/relay/chat/chat/completions?x=1", tok, `{"prompt":"hi"}`, http.Header{
		"Content-Type": {"application/json"}, "Cookie": {"session=secret"}, "X-Forwarded-For": {"1.2.3.4"}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	id := resp.Header.Get(relayIDHeader)
	if id == "" {
		t.Fatal("no " + relayIDHeader)
	}
	for range 3 {
		llm.gate <- struct{}{}
	}
	r := sse.NewReader(resp.Body)
	for i := range 3 {
		ev, err := r.Next()
		if err != nil || ev.Data != strconv.Itoa(i) {
			t.Fatalf("event %d: %+v %v", i, ev, err)
		}
	}
	resp.Body.Close() // the client drops
	llm.mu.Lock()
	up, body := llm.last, llm.body
	llm.mu.Unlock()
	if up.Method != http.MethodPost || up.URL.Path != "/v1/chat/completions" || up.URL.RawQuery != "" || body != `{"prompt":"hi"}` {
		t.Fatalf("upstream got %s %s, body %q", up.Method, up.URL, body)
	}
	if got := up.Header.Get("Authorization"); got != "Bearer sk-upstream" {
		t.Fatalf("upstream Authorization %q", got)
	}
	if up.Header.Get("Content-Type") != "application/json" || up.Header.Get("Cookie") != "" || up.Header.Get("X-Forwarded-For") != "" {
		t.Fatalf("upstream headers %v", up.Header)
	}
	for range 7 {
		llm.gate <- struct{}{}
	}

	// Resumed without a token: the id is the capability.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // a hang guard
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/relay/streams/"+id, nil)
	req.Header.Set("Last-Event-ID", r.LastEventID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rest []string
	for ev, err := range sse.Read(resp.Body) {
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		rest = append(rest, ev.Data)
	}
	if got := strings.Join(rest, " "); got != "3 4 5 6 7 8 9" {
		t.Fatalf("resumed: %s", got)
	}
	if n := llm.calls.Load(); n != 1 {
		t.Fatalf("the upstream was called %d times", n)
	}
	if code, _ := get(t, base+"/relay/streams/nope"); code != 404 {
		t.Fatalf("unknown stream: %d", code)
	}
}

// Without --relay there are no relay endpoints.
func TestServeNoRelay(t *testing.T) {
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", "k")
	resp, err := http.Post(base+"/relay/chat", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// In development mode with a relay named "demo", the demo page has the
// "LLM answer" tab and, under a loopback name only, a token that grants
// that relay and no other; the page's other tokens grant no relay.
// Without a demo relay there is no tab.
func TestServeDemoRelayToken(t *testing.T) {
	llm := newLLMUpstream(t, 1)
	s, base, _ := startInProcess(t, "--store", "memory", "--relay", "demo="+llm.srv.URL, "--relay", "chat="+llm.srv.URL)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	tok := s.cfg.dev.relayToken
	if tok == "" {
		t.Fatal("no development relay token")
	}
	page := func(host string) string {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if p := page("localhost:" + port); !strings.Contains(p, `id="tab-relay"`) || !strings.Contains(p, tok) {
		t.Fatal("the page under localhost lacks the relay tab or its token")
	}
	if p := page("rebind.attacker.example"); !strings.Contains(p, `id="tab-relay"`) || strings.Contains(p, tok) {
		t.Fatal("the page under another name lacks the relay tab, or carries the relay token")
	}
	start := func(name, token string) int {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // the answer is not read
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/relay/"+name, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		relay, token string
		want         int
	}{
		{"demo", tok, 200}, {"chat", tok, 403},
		{"demo", s.cfg.dev.subscriberToken, 403}, {"demo", s.cfg.dev.publisherToken, 403},
	} {
		if got := start(tc.relay, tc.token); got != tc.want {
			t.Errorf("POST /relay/%s: %d, want %d", tc.relay, got, tc.want)
		}
	}

	s2, base2, _ := startInProcess(t, "--store", "memory", "--relay", "chat="+llm.srv.URL)
	if s2.cfg.dev.relayToken != "" {
		t.Fatal("a development relay token without a demo relay")
	}
	_, body := get(t, base2+"/")
	if strings.Contains(body, `id="tab-relay"`) {
		t.Fatal("the relay tab without a demo relay")
	}
}

// A browser on another origin (--cors-origins) may start and resume a
// relay: preflights are answered, the responses carry the CORS headers and
// expose the relay's id; an origin not listed gets none of them.
func TestServeRelayCORS(t *testing.T) {
	const key = "relay-test-key-at-least-256-bits-long!!"
	const app = "https://app.example"
	llm := newLLMUpstream(t, 3)
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", key, "--cors-origins", app,
		"--relay", "chat="+llm.srv.URL)
	do := func(method, path, origin string, hdr http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the headers are what is checked; the answer is gated
		return resp
	}
	pre := do(http.MethodOptions, "/relay/chat/completions", app, http.Header{
		"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization, content-type"}})
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "content-type") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	tok := relayToken(t, key, "chat")
	resp := do(http.MethodPost, "/relay/chat", app, http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}})
	id := resp.Header.Get(relayIDHeader)
	if resp.StatusCode != http.StatusOK || id == "" || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), relayIDHeader) {
		t.Fatalf("cross-origin relay: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := do(http.MethodGet, "/relay/streams/"+id, app, nil); resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("cross-origin resume: %d %v", resp.StatusCode, resp.Header)
	}
	for _, m := range []string{http.MethodOptions, http.MethodPost} {
		resp := do(m, "/relay/chat", "https://evil.example", http.Header{"Authorization": {"Bearer " + tok},
			"Access-Control-Request-Method": {"POST"}})
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("%s from an origin not listed: Access-Control-Allow-Origin %q", m, got)
		}
	}
}

// The user presses "stop": POST /relay/streams/ID/cancel with a token that
// grants relays ends the relay with relay-cancelled; no token, a token
// granting no relay, or an id that is no stream changes nothing.
func TestServeRelayCancel(t *testing.T) {
	const key = "relay-test-key-at-least-256-bits-long!!"
	llm := newLLMUpstream(t, 3)
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", key, "--relay", "chat="+llm.srv.URL)
	tok := relayToken(t, key, "chat")
	post := func(path, token string) *http.Response {
		t.Helper()
		return relayPost(t, base+path, token, "{}", nil)
	}
	answer := post("/relay/chat", tok)
	id := answer.Header.Get(relayIDHeader)
	if answer.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("start: %d", answer.StatusCode)
	}
	for _, tc := range []struct {
		name, id, token string
		status          int
	}{
		{"no token", id, "", 401},
		{"no relay granted", id, relayToken(t, key), 403},
		{"not a stream", "nope", tok, 404},
	} {
		if resp := post("/relay/streams/"+tc.id+"/cancel", tc.token); resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	if resp := post("/relay/streams/"+id+"/cancel", tok); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel: status %d", resp.StatusCode)
	}
	evs := readEvents(t, answer)
	if len(evs) == 0 || evs[len(evs)-1].Type != relay.EventCancelled {
		t.Fatalf("the answer ended with %+v, want %s", evs, relay.EventCancelled)
	}
	if n := llm.calls.Load(); n > 1 { // 0 when the cancel came first
		t.Fatalf("the upstream was called %d times", n)
	}
}

// ssetestEvents reads resp's events to the end of the stream.
func readEvents(t *testing.T, resp *http.Response) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for ev, err := range sse.Read(resp.Body) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// relayPost posts body to url with a bearer token (none if empty) and the
// extra headers; the response is closed when the test ends.
func relayPost(t *testing.T, url, token, body string, hdr http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
