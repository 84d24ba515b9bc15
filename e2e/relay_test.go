package e2e

import (
	"cmp"
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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store/redisstore"
)

// fakeLLM is an OpenAI-compatible streaming API: each POST answers with
// the chunks of answer, one chat.completion.chunk event per word, then
// "data: [DONE]". Each chunk waits for a value on gate, so that the test
// decides how far the answer has got when it breaks something. cancelled
// is closed when a request's context ends before its answer does (the hub
// cancelled the upstream request).
type fakeLLM struct {
	srv       *httptest.Server
	gate      chan struct{}
	calls     atomic.Int64
	words     []string
	cancelled chan struct{}
	once      sync.Once
}

func newFakeLLM(t *testing.T, answer string) *fakeLLM {
	f := &fakeLLM{words: strings.SplitAfter(answer, " "), cancelled: make(chan struct{})}
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
					f.once.Do(func() { close(f.cancelled) })
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
// accepts the connection, as a load balancer skips a dead backend, or wait
// until the client gives up when there are no streams. Its
// CloseClientConnections breaks the browser's connections, as a network
// would.
type lbProxy struct {
	srv     *httptest.Server
	main    *url.URL
	streams []*url.URL

	mu        sync.Mutex
	served    []string // the backend of each stream read
	reads     int      // the stream reads, whether a backend took them or not
	abandoned int      // the stream reads held (no backend) that the client gave up
	asks      []string // the Authorization of each relay request (POST /relay/NAME)
	cancels   []string // the Authorization of each cancel (POST /relay/streams/ID/cancel)
	stripped  int      // how many cancels to come lose their Authorization on the way
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

// RoundTrip sends a stream read to the first backend that takes it, and
// everything else to main.
func (p *lbProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasPrefix(req.URL.Path, "/relay/") {
		p.mu.Lock()
		if strings.HasPrefix(req.URL.Path, "/relay/streams/") {
			p.cancels = append(p.cancels, req.Header.Get("Authorization"))
			if p.stripped > 0 {
				p.stripped--
				req.Header.Del("Authorization")
			}
		} else {
			p.asks = append(p.asks, req.Header.Get("Authorization"))
		}
		p.mu.Unlock()
	}
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/relay/streams/") {
		return http.DefaultTransport.RoundTrip(req)
	}
	p.mu.Lock()
	p.reads++
	p.mu.Unlock()
	if len(p.streams) == 0 {
		// No backend serves streams: the read waits, as in a load
		// balancer's queue, until the client gives up on it.
		<-req.Context().Done()
		p.mu.Lock()
		p.abandoned++
		p.mu.Unlock()
		return nil, req.Context().Err()
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

// readAttempts is how many stream reads reached the proxy, and how many of
// those held for want of a backend the client gave up.
func (p *lbProxy) readAttempts() (reads, abandoned int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads, p.abandoned
}

// relayTokens returns the Authorization headers of the relay requests and
// of the cancels, as the page sent them.
func (p *lbProxy) relayTokens() (asks, cancels []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asks...), append([]string(nil), p.cancels...)
}

// stripCancelToken makes the next n cancels reach the hub without their
// Authorization header, which the hub refuses (401).
func (p *lbProxy) stripCancelToken(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stripped += n
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
//
// stop-…: the answer is stopped mid-way, by the tab's Stop button while
// it streams or while it reconnects, or by another client; the page keeps
// what came, says it was stopped and reads no more, and the hub cancelled
// the upstream request (testDemoPageRelayStop).
func TestDemoPageRelay(t *testing.T) {
	needChromium(t)
	bin := buildSluice(t)
	t.Run("drop", func(t *testing.T) { testDemoPageRelay(t, bin, false) })
	t.Run("takeover", func(t *testing.T) { testDemoPageRelay(t, bin, true) })
	for _, how := range []string{"streaming", "reconnecting", "elsewhere"} {
		t.Run("stop-"+how, func(t *testing.T) { testDemoPageRelayStop(t, bin, how) })
	}
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

// relayStopState is the relay tab as the user sees it.
type relayStopState struct {
	Relay relayPageState `json:"relay"` // window.sluiceDemo.relay
	Stop  *bool          `json:"stop"`  // the Stop button is enabled; nil: there is none
	Drop  bool           `json:"drop"`  // the Drop button is enabled
	Shown string         `json:"shown"` // the answer on screen
	Log   string         `json:"log"`   // the tab's connection log
}

const relayStopJS = `JSON.stringify({
	relay: window.sluiceDemo && window.sluiceDemo.relay || null,
	stop: (b => b ? !b.disabled : null)(document.getElementById("relay-stop")),
	drop: !document.getElementById("relay-drop").disabled,
	shown: document.getElementById("relay-answer").textContent,
	log: document.getElementById("relay-log").innerText,
})`

// testDemoPageRelayStop: the page asks the demo relay, the fake upstream
// streams a few words (then waits for more, as a slow LLM does), and the
// answer is stopped. how:
//
//   - "streaming": the user presses Stop: POST /relay/streams/ID/cancel
//     with the token the page asked with (the token field is emptied
//     meanwhile). The first cancel loses its token on the way: the hub
//     refuses it (401), the page says so in its log and enables Stop
//     again, and the answer goes on. The second cancels the relay.
//   - "reconnecting": the same, but the page's connection was dropped and
//     its read to resume the answer is held (the load balancer has no
//     backend for it), so the page is reconnecting when the user presses
//     Stop; once the hub has cancelled the relay the page gives up that
//     read.
//   - "elsewhere": another client cancels the answer (the test, with the
//     page's token); the page learns it from the relay-cancelled event.
//
// Then the page shows the answer "cancelled", the words received so far on
// screen, its log saying it was stopped, Stop and Drop disabled; the hub
// cancelled the upstream request; the page made no stream read after the
// end; and the hub's record of the answer ends with relay-cancelled, after
// the events the page shows.
func testDemoPageRelayStop(t *testing.T, bin, how string) {
	llm := newFakeLLM(t, relayAnswer)
	args := []string{"--addr", freePort(t), "--store", "memory", "--relay", "demo=" + llm.srv.URL + "/v1/chat/completions"}
	hub := startHub(t, bin, args...)
	base := "http://" + args[1]
	streams := []string{base}
	if how == "reconnecting" {
		streams = nil // stream reads wait
	}
	proxy := newLBProxy(t, base, streams...)

	ctx := startBrowser(t)
	state, waitFor := pageWatcher[relayStopState](t, ctx, relayStopJS, func() string {
		reads, abandoned := proxy.readAttempts()
		return fmt.Sprintf("stream reads: %d (%d given up)\nhub log:\n%s", reads, abandoned, hub.log())
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(proxy.srv.URL+"/"), chromedp.Click(chromedp.ID("tab-relay-button"))); err != nil {
		t.Fatalf("opening the LLM answer tab: %v", err)
	}
	if s := state(); s.Stop == nil || *s.Stop {
		t.Fatalf("the relay tab has no Stop button (#relay-stop), or it is enabled before any answer: %v", s.Stop)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("relay-ask"))); err != nil {
		t.Fatalf("asking: %v", err)
	}
	stopEnabled := func(s relayStopState) bool { return s.Stop != nil && *s.Stop }
	llm.release(3)
	waitFor("the first words, Stop enabled", func(s relayStopState) bool { return len(s.Relay.Events) >= 3 && stopEnabled(s) })
	// Stop uses the token that asked, not what the field holds now.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("relay-token").value = ""`)); err != nil {
		t.Fatal(err)
	}
	live, words := "streaming", 3
	switch how {
	case "reconnecting":
		live = "reconnecting"
		proxy.srv.CloseClientConnections()
		waitFor("the page to try resuming", func(s relayStopState) bool {
			reads, _ := proxy.readAttempts()
			return s.Relay.State == "reconnecting" && reads == 1 && stopEnabled(s)
		})
	case "elsewhere":
		asks, _ := proxy.relayTokens()
		req, err := http.NewRequest(http.MethodPost, base+"/relay/streams/"+url.PathEscape(state().Relay.ID)+"/cancel", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", asks[0])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("cancelling the answer: %s, want 204", res.Status)
		}
	}

	if how != "elsewhere" {
		proxy.stripCancelToken(1)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("relay-stop"))); err != nil {
			t.Fatal(err)
		}
		s := waitFor("the refused stop in the log, Stop enabled again", func(s relayStopState) bool {
			return strings.Contains(s.Log, "401 Unauthorized") && stopEnabled(s)
		})
		if s.Relay.State != live {
			t.Fatalf("after a refused stop the page is %q, want %q", s.Relay.State, live)
		}
		if how == "streaming" {
			llm.release(2) // the answer goes on
			words = 5
			waitFor("more words after the refused stop", func(s relayStopState) bool { return len(s.Relay.Events) >= words })
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("relay-stop"))); err != nil {
			t.Fatal(err)
		}
	}
	s := waitFor("the answer to stop", func(s relayStopState) bool {
		_, abandoned := proxy.readAttempts()
		return s.Relay.State != live && (how != "reconnecting" || abandoned == 1)
	})
	select {
	case <-llm.cancelled:
	case <-time.After(hangTimeout):
		t.Fatalf("the upstream request was not cancelled within %v\n%s", hangTimeout, hub.log())
	}

	// The hub's record of the answer, read from the start: it ends with
	// relay-cancelled, after every event the page shows.
	res, err := http.Get(base + "/relay/streams/" + url.PathEscape(s.Relay.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var logged []sse.Event
	for ev, err := range sse.Read(res.Body) {
		if err != nil {
			t.Fatalf("reading the answer back: %v", err)
		}
		logged = append(logged, ev)
	}
	if len(logged) == 0 || logged[len(logged)-1].Type != "relay-cancelled" {
		t.Fatalf("the hub's answer ends with %+v, want relay-cancelled", logged)
	}

	s = state()
	if s.Relay.State != "cancelled" || stopEnabled(s) || s.Drop {
		t.Fatalf("the page ends %q (Stop enabled %v, Drop enabled %v), want cancelled with both disabled; log:\n%s", s.Relay.State, stopEnabled(s), s.Drop, s.Log)
	}
	lines := strings.Split(strings.TrimSpace(s.Log), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "stopped") {
		t.Errorf("the log ends %q, want it to say the answer was stopped", last)
	}
	if s.Shown != s.Relay.Answer || len(strings.SplitAfter(s.Shown, " ")) < words || len(s.Shown) >= len(relayAnswer) || !strings.HasPrefix(relayAnswer, s.Shown) {
		t.Errorf("the page shows %q (answer %q), want the first %d words or more of %q, not all", s.Shown, s.Relay.Answer, words, relayAnswer)
	}
	if len(s.Relay.Events) > len(logged) {
		t.Fatalf("the page has %d events, the hub's answer %d", len(s.Relay.Events), len(logged))
	}
	for i, e := range s.Relay.Events {
		l := logged[i]
		if e.ID != l.ID || e.Data != l.Data || e.Type != cmp.Or(l.Type, "message") {
			t.Fatalf("the page's event %d is %+v, the hub's %+v", i, e, l)
		}
	}
	if how == "elsewhere" && (len(s.Relay.Events) != len(logged) || s.Relay.End != "relay-cancelled") {
		t.Errorf("the page has %d events, ended by %q; want the hub's %d, ended by relay-cancelled", len(s.Relay.Events), s.Relay.End, len(logged))
	}
	want := 0 // the answer came on the page's first connection
	if how == "reconnecting" {
		want = 1 // the read the page gave up
	}
	if reads, _ := proxy.readAttempts(); reads != want {
		t.Errorf("the page made %d stream reads, want %d: none after the end", reads, want)
	}
	asks, cancels := proxy.relayTokens()
	wantCancels := 2
	if how == "elsewhere" {
		wantCancels = 0
	}
	if len(asks) != 1 || asks[0] == "" || len(cancels) != wantCancels || slices.ContainsFunc(cancels, func(c string) bool { return c != asks[0] }) {
		t.Errorf("the page asked with %q and cancelled with %q, want %d cancels with the asking token", asks, cancels, wantCancels)
	}
	if n := llm.calls.Load(); n != 1 {
		t.Errorf("the upstream was called %d times, want once", n)
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
