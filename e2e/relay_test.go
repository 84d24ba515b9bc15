package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/store/redisstore"
)

// fakeLLM is an OpenAI-compatible streaming API: each POST answers with
// the chunks of answer, one chat.completion.chunk event per word, then
// "data: [DONE]". Each chunk waits for a value on gate, so that the test
// decides how far the answer has got when it breaks something.
type fakeLLM struct {
	srv   *httptest.Server
	gate  chan struct{}
	calls atomic.Int64
	words []string
}

func newFakeLLM(t *testing.T, answer string) *fakeLLM {
	f := &fakeLLM{words: strings.SplitAfter(answer, " ")}
	f.gate = make(chan struct{}, len(f.words))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for _, data := range f.chunks() {
			if data != "[DONE]" {
				select {
				case <-f.gate:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "data: %s\n\n", data)
			_ = rc.Flush()
		}
	}))
	t.Cleanup(func() {
		close(f.gate) // lets an answer still running end
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// chunks are the data of the answer's events, in order.
func (f *fakeLLM) chunks() []string {
	var out []string
	for _, w := range f.words {
		b, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": w}}}})
		out = append(out, string(b))
	}
	return append(out, "[DONE]")
}

// release lets n more words go.
func (f *fakeLLM) release(n int) {
	for range n {
		f.gate <- struct{}{}
	}
}

// lbProxy stands for the load balancer in front of the hubs: the page is
// opened through it, everything goes to main, except the reads of relay
// streams (GET /relay/streams/ID), which go to the first of streams that
// accepts the connection, as a load balancer skips a dead backend. Its
// CloseClientConnections breaks the browser's connections, as a network
// would.
type lbProxy struct {
	srv     *httptest.Server
	main    *url.URL
	streams []*url.URL

	mu     sync.Mutex
	served []string // the backend of each stream read
}

func newLBProxy(t *testing.T, main string, streams ...string) *lbProxy {
	p := &lbProxy{}
	var err error
	if p.main, err = url.Parse(main); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		p.streams = append(p.streams, u)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(p.main) },
		Transport:     p,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The transport may still read the request's body (to its EOF)
		// when the hub's response starts: without full duplex, writing the
		// response closes the body under it, and the transport cuts the
		// hub's answer (golang/go#40747), a drop the test did not make.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// RoundTrip sends a stream read to the first backend that takes it.
func (p *lbProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/relay/streams/") {
		return http.DefaultTransport.RoundTrip(req)
	}
	var err error
	for _, b := range p.streams {
		r := req.Clone(req.Context())
		r.URL.Scheme, r.URL.Host, r.Host = b.Scheme, b.Host, b.Host
		var resp *http.Response
		if resp, err = http.DefaultTransport.RoundTrip(r); err == nil {
			p.mu.Lock()
			p.served = append(p.served, b.Host)
			p.mu.Unlock()
			return resp, nil
		}
		if req.Context().Err() != nil {
			break
		}
	}
	return nil, err
}

func (p *lbProxy) streamReads() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.served...)
}

// relayPageState is window.sluiceDemo.relay.
type relayPageState struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	End         string `json:"end"`
	Answer      string `json:"answer"`
	Connections int    `json:"connections"`
	LastEventID string `json:"lastEventId"`
	Events      []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"events"`
}

const relayAnswer = "Resumable streams keep an answer in the hub's log, so a client that loses its connection asks for what it missed and gets every token once."

// TestDemoPageRelay opens the demo page's "LLM answer" tab in headless
// Chromium, through a proxy standing for the load balancer, and asks a
// fake OpenAI-compatible upstream (--relay demo=URL) for an answer whose
// words the test releases one by one (issue 17).
//
// drop: one hub; the proxy breaks the page's connections mid-answer; the
// page resumes the answer with its last event id.
//
// takeover: two hubs on one Redis log, A relaying the upstream; the page
// asks A, its connection breaks and it resumes on B; then B, serving it,
// is killed with SIGKILL mid-answer, and the page resumes on A (the proxy
// skips the dead hub). The answer is complete because A, which consumes
// the upstream, lives on: a dead relaying hub ends the answer with
// relay-lost (cmd/sluice TestRelayCluster).
//
// Either way the page ends with the whole answer, every event exactly
// once and in order, over several connections, the upstream called once.
func TestDemoPageRelay(t *testing.T) {
	needChromium(t)
	bin := buildSluice(t)
	t.Run("drop", func(t *testing.T) { testDemoPageRelay(t, bin, false) })
	t.Run("takeover", func(t *testing.T) { testDemoPageRelay(t, bin, true) })
}

func testDemoPageRelay(t *testing.T, bin string, takeover bool) {
	llm := newFakeLLM(t, relayAnswer)
	storeDSN := "memory"
	if takeover {
		storeDSN = redisDSN(t)
	}
	hubArgs := func() []string {
		return []string{"--addr", freePort(t), "--store", storeDSN, "--relay", "demo=" + llm.srv.URL + "/v1/chat/completions"}
	}
	argsA := hubArgs()
	hubA := startHub(t, bin, argsA...)
	baseA := "http://" + argsA[1]
	proxy := newLBProxy(t, baseA, baseA)
	var hubB *hubProc
	var baseB string
	if takeover {
		argsB := hubArgs()
		hubB = startHub(t, bin, argsB...)
		baseB = "http://" + argsB[1]
		proxy = newLBProxy(t, baseA, baseB, baseA)
	}

	ctx := startBrowser(t)
	_, waitFor := pageWatcher[relayPageState](t, ctx, `JSON.stringify(window.sluiceDemo && window.sluiceDemo.relay || null)`, func() string {
		conn, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("relay-log").innerText`))
		s := "page's relay log:\n" + conn + "\nstream reads served by: " + strings.Join(proxy.streamReads(), ", ") + "\nhub A log:\n" + hubA.log()
		if hubB != nil {
			s += "\nhub B log:\n" + hubB.log()
		}
		return s
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(proxy.srv.URL+"/")); err != nil {
		t.Fatalf("opening the demo page: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("tab-relay-button")), chromedp.Click(chromedp.ID("relay-ask"))); err != nil {
		t.Fatalf("asking on the LLM answer tab: %v", err)
	}
	waitFor("the answer to start", func(s relayPageState) bool { return s.ID != "" && s.State == "streaming" })

	words := len(llm.words)
	shown := func(n int) func(relayPageState) bool {
		return func(s relayPageState) bool { return len(s.Events) >= n }
	}
	llm.release(4)
	waitFor("the first words", shown(4))
	proxy.srv.CloseClientConnections() // the network drops the page's connections mid-answer
	waitFor("the page to resume", func(s relayPageState) bool { return s.Connections >= 2 && s.State == "streaming" })
	llm.release(4)
	waitFor("the words after the drop", shown(8))
	if takeover {
		if reads := proxy.streamReads(); len(reads) == 0 || reads[len(reads)-1] != strings.TrimPrefix(baseB, "http://") {
			t.Fatalf("the page resumed on %v, want hub B (%s)", reads, baseB)
		}
		hubB.stop(t, syscall.SIGKILL) // the hub serving the page dies mid-answer
		waitFor("the page to resume on A", func(s relayPageState) bool { return s.Connections >= 3 && s.State == "streaming" })
		if reads := proxy.streamReads(); reads[len(reads)-1] != strings.TrimPrefix(baseA, "http://") {
			t.Fatalf("the page resumed on %v after B died, want hub A (%s)", reads, baseA)
		}
	}
	llm.release(words - 8)
	s := waitFor("the whole answer", func(s relayPageState) bool { return s.State != "streaming" && s.State != "reconnecting" })

	want := llm.chunks()
	var got []string
	ids := map[string]bool{}
	for _, e := range s.Events {
		got = append(got, e.Data)
		if e.Type != "message" || e.ID == "" || ids[e.ID] {
			t.Errorf("event %+v: want a message with an id of its own", e)
		}
		ids[e.ID] = true
	}
	if s.State != "complete" || s.End != "" || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the page ends %q (%s) with %d events, want complete with %d:\n got %q\nwant %q", s.State, s.End, len(got), len(want), got, want)
	}
	if s.Answer != relayAnswer {
		t.Fatalf("the page shows %q, want %q", s.Answer, relayAnswer)
	}
	minConns := 2
	if takeover {
		minConns = 3
	}
	if s.Connections < minConns {
		t.Errorf("the answer came over %d connections, want at least %d", s.Connections, minConns)
	}
	if n := llm.calls.Load(); n != 1 {
		t.Fatalf("the upstream was called %d times, want once", n)
	}
	if path := os.Getenv("SLUICE_E2E_RELAY_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// redisDSN returns a --store DSN on the test Redis (SLUICE_TEST_REDIS_URL,
// from scripts/services.sh) with a key prefix of its own, deleted when t
// ends. Without it the test skips, or fails under CI=true.
func redisDSN(t *testing.T) string {
	u := os.Getenv("SLUICE_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" || os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatal("SLUICE_TEST_REDIS_URL is not set (required under CI=true): source scripts/services.sh")
		}
		t.Skip("SLUICE_TEST_REDIS_URL is not set: run `source scripts/services.sh` (or `make test`)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	dsn := u + sep + "prefix=sluice_e2e_" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := redisstore.Open(ctx, dsn, redisstore.Config{})
		if err == nil {
			err = st.Delete(ctx)
			_ = st.Close()
		}
		if err != nil {
			t.Logf("cleanup: deleting the Redis log: %v", err)
		}
	})
	return dsn
}
