package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hangTimeout = 10 * time.Second

// streamConn is one connection the fake stream server accepted.
type streamConn struct {
	r    *http.Request
	body string
	w    http.ResponseWriter
	// send writes to the stream from the test goroutine; close ends it.
	send  chan string
	close chan struct{}
	gone  chan struct{}
}

// streamServer is the harness's SSE endpoint: the test writes each
// connection's stream.
type streamServer struct {
	*httptest.Server
	conns chan *streamConn
	count atomic.Int32
	// status, when set, answers every request with it instead of a stream.
	status int
	// done is closed when the test ends: streams end, and a client still
	// reconnecting gets no new one, so Close never waits on a handler.
	done chan struct{}
}

func newStreamServer(t *testing.T, status int) *streamServer {
	s := &streamServer{conns: make(chan *streamConn, 10), status: status, done: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		select {
		case <-s.done:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		default:
		}
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		b, _ := io.ReadAll(r.Body)
		c := &streamConn{r: r, body: string(b), w: w, send: make(chan string), close: make(chan struct{}), gone: make(chan struct{})}
		defer close(c.gone)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case s.conns <- c:
		case <-s.done:
			return
		}
		for {
			select {
			case data := <-c.send:
				io.WriteString(w, data)
				w.(http.Flusher).Flush()
			case <-c.close:
				return
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
	}))
	t.Cleanup(func() {
		close(s.done)
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *streamServer) accept(t *testing.T) *streamConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(hangTimeout):
		t.Fatal("the client never connected")
		return nil
	}
}

func (c *streamConn) write(t *testing.T, data string) {
	t.Helper()
	select {
	case c.send <- data:
	case <-time.After(hangTimeout):
		t.Fatal("the stream handler is gone")
	}
}

// callback is one callback the service sent.
type callback struct {
	n   int
	msg message
}

// callbackServer is the harness's callback endpoint.
type callbackServer struct {
	*httptest.Server
	got chan callback
}

func newCallbackServer(t *testing.T) *callbackServer {
	s := &callbackServer{got: make(chan callback, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m message
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("callback %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("callback body: %v", err)
		}
		n := -1
		if rest, ok := strings.CutPrefix(r.URL.Path, "/cb/"); ok {
			fmt.Sscan(rest, &n)
		}
		s.got <- callback{n, m}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

// harness drives one service the way the conformance harness does.
type harness struct {
	t       *testing.T
	svc     *httptest.Server
	impl    *service
	cb      *callbackServer
	exited  chan struct{}
	counter int // the callback number expected next
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, cb: newCallbackServer(t), exited: make(chan struct{}), counter: 1}
	svc := newService(nil, func() { close(h.exited) })
	h.impl = svc
	h.svc = httptest.NewServer(svc)
	t.Cleanup(func() {
		// Stop every client before the servers close.
		svc.mu.Lock()
		var ids []string
		for id := range svc.streams {
			ids = append(ids, id)
		}
		svc.mu.Unlock()
		for _, id := range ids {
			svc.stop(id)
		}
		h.svc.Close()
	})
	return h
}

// entity returns the client running at loc.
func (h *harness) entity(loc string) *entity {
	h.impl.mu.Lock()
	defer h.impl.mu.Unlock()
	en := h.impl.streams[strings.TrimPrefix(loc, "/streams/")]
	if en == nil {
		h.t.Fatalf("no stream %s", loc)
	}
	return en
}

func (h *harness) do(method, path string, body any) *http.Response {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, h.svc.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// create starts a client with params (streamUrl and callbackUrl added) and
// returns its resource path.
func (h *harness) create(streamURL string, params map[string]any) string {
	h.t.Helper()
	p := map[string]any{"streamUrl": streamURL, "callbackUrl": h.cb.URL + "/cb", "tag": h.t.Name()}
	for k, v := range params {
		p[k] = v
	}
	resp := h.do("POST", "/", p)
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("create: HTTP %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/streams/") {
		h.t.Fatalf("Location %q", loc)
	}
	return loc
}

// next returns the next callback, checking it has the next number.
func (h *harness) next() message {
	h.t.Helper()
	select {
	case c := <-h.cb.got:
		if c.n != h.counter {
			h.t.Fatalf("callback number %d, want %d (%+v)", c.n, h.counter, c.msg)
		}
		h.counter++
		return c.msg
	case <-time.After(hangTimeout):
		h.t.Fatalf("no callback %d", h.counter)
		return message{}
	}
}

func (h *harness) event(want eventMessage) {
	h.t.Helper()
	m := h.next()
	if m.Kind != "event" || m.Event == nil || *m.Event != want {
		h.t.Fatalf("got %+v, want event %+v", m, want)
	}
}

func (h *harness) comment(want string) {
	h.t.Helper()
	if m := h.next(); m.Kind != "comment" || m.Comment != want {
		h.t.Fatalf("got %+v, want comment %q", m, want)
	}
}

func (h *harness) error() string {
	h.t.Helper()
	m := h.next()
	if m.Kind != "error" || m.Error == "" {
		h.t.Fatalf("got %+v, want an error", m)
	}
	return m.Error
}

func (h *harness) none() {
	h.t.Helper()
	select {
	case c := <-h.cb.got:
		h.t.Fatalf("unexpected callback %d: %+v", c.n, c.msg)
	default:
	}
}

func TestCapabilities(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.svc.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Capabilities []string `json:"capabilities"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d, %v", resp.StatusCode, err)
	}
	for _, c := range []string{"comments", "headers", "last-event-id", "post", "report", "read-timeout", "restart", "bom",
		"event-type-listeners", "server-directed-shutdown-request"} {
		if !slices.Contains(body.Capabilities, c) {
			t.Errorf("capability %q missing from %q", c, body.Capabilities)
		}
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	for name, body := range map[string]any{
		"not JSON":         "{",
		"no streamUrl":     map[string]any{"callbackUrl": "http://127.0.0.1:1/cb"},
		"no callbackUrl":   map[string]any{"streamUrl": "http://127.0.0.1:1/"},
		"relative URL":     map[string]any{"streamUrl": "/x", "callbackUrl": "http://127.0.0.1:1/cb"},
		"bad method":       map[string]any{"streamUrl": "http://127.0.0.1:1/", "callbackUrl": "http://127.0.0.1:1/cb", "method": "GE T"},
		"bad header":       map[string]any{"streamUrl": "http://127.0.0.1:1/", "callbackUrl": "http://127.0.0.1:1/cb", "headers": map[string]string{"a b": "c"}},
		"negative delay":   map[string]any{"streamUrl": "http://127.0.0.1:1/", "callbackUrl": "http://127.0.0.1:1/cb", "initialDelayMs": -1},
		"bad last id":      map[string]any{"streamUrl": "http://127.0.0.1:1/", "callbackUrl": "http://127.0.0.1:1/cb", "lastEventId": "a\nb"},
		"wrong field type": map[string]any{"streamUrl": 5, "callbackUrl": "http://127.0.0.1:1/cb"},
	} {
		var raw any = body
		if s, ok := body.(string); ok {
			raw = json.RawMessage(s)
			resp, err := http.Post(h.svc.URL+"/", "application/json", strings.NewReader(s))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s: HTTP %d, want 400", name, resp.StatusCode)
			}
			continue
		}
		if resp := h.do("POST", "/", raw); resp.StatusCode != 400 {
			t.Errorf("%s: HTTP %d, want 400", name, resp.StatusCode)
		}
	}
}

func TestEventsCommentsAndErrorsAreNumbered(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	h.create(ss.URL, map[string]any{"initialDelayMs": 0})
	c := ss.accept(t)
	if c.r.Method != "GET" || c.r.Header.Get("Accept") != "text/event-stream" || c.r.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("request %s %v", c.r.Method, c.r.Header)
	}
	if _, ok := c.r.Header["Last-Event-Id"]; ok {
		t.Fatal("first request has a Last-Event-ID")
	}
	c.write(t, "\xEF\xBB\xBF:Hello\n")
	h.comment("Hello")
	c.write(t, "event: greeting\nid: abc\ndata: Hi\n\ndata: two\n\nid: def\ndata: partial")
	h.event(eventMessage{Type: "greeting", Data: "Hi", ID: "abc"})
	h.event(eventMessage{Type: "message", Data: "two", ID: "abc"})
	close(c.close)
	h.error()
	c2 := ss.accept(t)
	if got := c2.r.Header.Get("Last-Event-ID"); got != "abc" {
		t.Fatalf("reconnected with Last-Event-ID %q, want abc (the partial event is discarded)", got)
	}
	c2.write(t, "data: We meet again\n\n")
	h.event(eventMessage{Type: "message", Data: "We meet again", ID: "abc"})
}

func TestRequestSettings(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	h.create(ss.URL, map[string]any{
		"initialDelayMs": 0,
		"lastEventId":    "abc",
		"method":         "REPORT",
		"body":           `{"hello": "world"}`,
		"headers":        map[string]string{"content-type": "application/json; charset=utf-8", "header-name-1": "value-1"},
	})
	for i := range 2 {
		c := ss.accept(t)
		if c.r.Method != "REPORT" || c.body != `{"hello": "world"}` || c.r.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
			c.r.Header.Get("Header-Name-1") != "value-1" || c.r.Header.Get("Last-Event-ID") != "abc" {
			t.Fatalf("request %d: %s %q %v", i, c.r.Method, c.body, c.r.Header)
		}
		close(c.close) // the body is sent again on the reconnection
		h.error()
	}
}

func TestPostBodyDefaultsToTextPlain(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	h.create(ss.URL, map[string]any{"method": "POST", "body": "hi"})
	if c := ss.accept(t); c.r.Method != "POST" || c.body != "hi" || !strings.HasPrefix(c.r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("request %s %q %v", c.r.Method, c.body, c.r.Header)
	}
}

func TestRestart(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	loc := h.create(ss.URL, map[string]any{"initialDelayMs": 0})
	c := ss.accept(t)
	c.write(t, "id: 1\ndata: Hello\n\n")
	h.event(eventMessage{Type: "message", Data: "Hello", ID: "1"})
	if resp := h.do("POST", loc, map[string]any{"command": "restart"}); resp.StatusCode/100 != 2 {
		t.Fatalf("restart: HTTP %d", resp.StatusCode)
	}
	c2 := ss.accept(t)
	<-c.gone
	if got := c2.r.Header.Get("Last-Event-ID"); got != "1" {
		t.Fatalf("restarted with Last-Event-ID %q", got)
	}
	c2.write(t, "data: Thanks\n\n")
	// No error between: a restart is not a failure.
	h.event(eventMessage{Type: "message", Data: "Thanks", ID: "1"})
}

func TestListen(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	loc := h.create(ss.URL, nil)
	c := ss.accept(t)
	c.write(t, "event: early\ndata: 0\n\n")
	h.event(eventMessage{Type: "early", Data: "0"})
	if resp := h.do("POST", loc, map[string]any{"command": "listen", "listen": map[string]string{"type": " greeting"}}); resp.StatusCode/100 != 2 {
		t.Fatalf("listen: HTTP %d", resp.StatusCode)
	}
	c.write(t, "event: other\ndata: 1\n\nevent:  greeting\ndata: 2\n\ndata: 3\n\n")
	h.event(eventMessage{Type: " greeting", Data: "2"})
	h.event(eventMessage{Type: "message", Data: "3"})
}

func TestCommandErrors(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	loc := h.create(ss.URL, nil)
	ss.accept(t)
	for _, tc := range []struct {
		path   string
		body   any
		status int
	}{
		{loc, map[string]any{"command": "dance"}, 400},
		{loc, map[string]any{"command": "listen"}, 400},
		{"/streams/999", map[string]any{"command": "restart"}, 404},
	} {
		if resp := h.do("POST", tc.path, tc.body); resp.StatusCode != tc.status {
			t.Errorf("%s %v: HTTP %d, want %d", tc.path, tc.body, resp.StatusCode, tc.status)
		}
	}
	if resp := h.do("DELETE", "/streams/999", nil); resp.StatusCode != 404 {
		t.Errorf("DELETE unknown stream: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestDeleteStopsTheClient(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	loc := h.create(ss.URL, map[string]any{"initialDelayMs": 0})
	c := ss.accept(t)
	if resp := h.do("DELETE", loc, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
	}
	select {
	case <-c.gone:
	case <-time.After(hangTimeout):
		t.Fatal("the connection is still open")
	}
	if n := ss.count.Load(); n != 1 {
		t.Fatalf("%d connections after DELETE, want 1", n)
	}
	h.none()
	if resp := h.do("POST", loc, map[string]any{"command": "restart"}); resp.StatusCode != 404 {
		t.Fatalf("command after DELETE: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestNoContentStopsReconnecting(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, http.StatusNoContent)
	loc := h.create(ss.URL, map[string]any{"initialDelayMs": 0})
	// The client ends by itself, without a reconnection or an error.
	select {
	case <-h.entity(loc).done:
	case <-time.After(hangTimeout):
		t.Fatal("the client is still running after a 204")
	}
	if n := ss.count.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	h.none()
}

func TestPermanentErrorIsReported(t *testing.T) {
	h := newHarness(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMovedPermanently) // no Location
	}))
	defer redirect.Close()
	h.create(redirect.URL, map[string]any{"initialDelayMs": 0})
	if msg := h.error(); !strings.Contains(msg, "Location") {
		t.Fatalf("error %q", msg)
	}
	h.none()
}

func TestReadTimeout(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	h.create(ss.URL, map[string]any{"initialDelayMs": 0, "readTimeoutMs": 50})
	c := ss.accept(t)
	c.write(t, "data: Hello\n\n")
	h.event(eventMessage{Type: "message", Data: "Hello"})
	if msg := h.error(); !strings.Contains(msg, "read timeout") {
		t.Fatalf("error %q, want a read timeout", msg)
	}
	ss.accept(t)
}

func TestDeleteRootExits(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	h.create(ss.URL, nil)
	c := ss.accept(t)
	if resp := h.do("DELETE", "/", nil); resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE /: HTTP %d", resp.StatusCode)
	}
	select {
	case <-h.exited:
	case <-time.After(hangTimeout):
		t.Fatal("exit not called")
	}
	<-c.gone
}

func TestDoubledSlashPath(t *testing.T) {
	h := newHarness(t)
	ss := newStreamServer(t, 0)
	loc := h.create(ss.URL, nil)
	ss.accept(t)
	if resp := h.do("POST", "/"+loc, map[string]any{"command": "restart"}); resp.StatusCode/100 != 2 {
		t.Fatalf("POST /%s: HTTP %d", loc, resp.StatusCode)
	}
	ss.accept(t)
}
