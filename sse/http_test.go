package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seenRequest is what a test server saw of one request.
type seenRequest struct {
	method string
	path   string
	header http.Header
	body   string
}

func recordRequest(r *http.Request) seenRequest {
	b, _ := io.ReadAll(r.Body)
	return seenRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(b)}
}

// eventStream starts an event-stream response.
func startEventStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func sendSSE(w http.ResponseWriter, s string) {
	io.WriteString(w, s)
	w.(http.Flusher).Flush()
}

// recvReq waits for a seenRequest the server recorded.
func recvReq(t *testing.T, ch chan seenRequest) seenRequest {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hangTimeout):
		t.Fatal("no seenRequest")
		return seenRequest{}
	}
}

func newGet(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestConnectHeadersAndLastEventID(t *testing.T) {
	reqs := make(chan seenRequest, 10)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- recordRequest(r)
		startEventStream(w)
		switch n.Add(1) {
		case 1:
			sendSSE(w, "id: abc\ndata: one\n\n")
		case 2:
			sendSSE(w, "id:\ndata: two\n\n")
		default:
			sendSSE(w, "data: three\n\n")
		}
	}))
	defer srv.Close()

	var got []Event
	for e, err := range Connect(t.Context(), newGet(t, srv.URL), WithRetry(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, e); len(got) == 3 {
			break
		}
	}
	want := []Event{{ID: "abc", Type: "message", Data: "one"}, {Type: "message", Data: "two"}, {Type: "message", Data: "three"}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for i, wantID := range []string{"", "abc", ""} {
		r := recvReq(t, reqs)
		if r.method != "GET" || r.header.Get("Accept") != "text/event-stream" || r.header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("seenRequest %d: %s with Accept %q, Cache-Control %q", i, r.method, r.header.Get("Accept"), r.header.Get("Cache-Control"))
		}
		ids, present := r.header["Last-Event-Id"]
		if wantID == "" && present {
			t.Fatalf("seenRequest %d: Last-Event-ID %q, want no header at all", i, ids)
		}
		if wantID != "" && r.header.Get("Last-Event-ID") != wantID {
			t.Fatalf("seenRequest %d: Last-Event-ID %q, want %q", i, ids, wantID)
		}
	}
}

func TestConnectLastEventIDFromRequest(t *testing.T) {
	reqs := make(chan seenRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- recordRequest(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	req := newGet(t, srv.URL)
	req.Header.Set("Last-Event-ID", "from-header")
	for range Connect(t.Context(), req) {
	}
	if got := recvReq(t, reqs).header.Get("Last-Event-ID"); got != "from-header" {
		t.Fatalf("Last-Event-ID %q", got)
	}
	for range Connect(t.Context(), req, WithLastEventID("from-option")) {
	}
	if got := recvReq(t, reqs).header.Get("Last-Event-ID"); got != "from-option" {
		t.Fatalf("Last-Event-ID %q", got)
	}
}

// WithResend sends a POST again, body and headers included, on every
// reconnection (without it a POST is sent once: TestConnectPostIsSentOnce).
func TestConnectResendSendsTheBodyAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"with GetBody", func() io.Reader { return strings.NewReader(`{"prompt":"hi"}`) }},
		{"without GetBody", func() io.Reader { return io.MultiReader(strings.NewReader(`{"prompt":`), strings.NewReader(`"hi"}`)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs := make(chan seenRequest, 10)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs <- recordRequest(r)
				startEventStream(w)
				sendSSE(w, "data: tok\n\n")
			}))
			defer srv.Close()

			req, err := http.NewRequest("POST", srv.URL, tc.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer k")
			n := 0
			for _, err := range Connect(t.Context(), req, WithRetry(0), WithResend()) {
				if err != nil {
					t.Fatal(err)
				}
				if n++; n == 3 {
					break
				}
			}
			for i := range 3 {
				r := recvReq(t, reqs)
				if r.method != "POST" || r.body != `{"prompt":"hi"}` || r.header.Get("Content-Type") != "application/json" ||
					r.header.Get("Authorization") != "Bearer k" {
					t.Fatalf("seenRequest %d: %+v", i, r)
				}
			}
		})
	}
}

func TestConnectNoContentStops(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	rs := newRetries()
	for e, err := range Connect(t.Context(), newGet(t, srv.URL), WithRetry(0), rs.option()) {
		t.Fatalf("yielded %+v, %v", e, err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests, want 1", n.Load())
	}
	rs.none(t)
}

func TestConnectPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		is          error
		message     string
	}{
		{"404", 404, "application/json", `{"error":"nope"}`, nil, "sse: unexpected HTTP status 404 Not Found"},
		{"500", 500, "text/plain", "boom", nil, "sse: unexpected HTTP status 500 Internal Server Error"},
		{"503 without Retry-After", 503, "text/plain", "", nil, "sse: unexpected HTTP status 503 Service Unavailable"},
		{"200 html", 200, "text/html", "<p>", ErrNotEventStream,
			`sse: response is not an event stream: HTTP 200 OK with Content-Type "text/html"`},
		{"200 no type", 200, "", "data: x\n\n", ErrNotEventStream,
			`sse: response is not an event stream: HTTP 200 OK with Content-Type ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header()["Content-Type"] = []string{tc.contentType}
				w.Header().Set("X-Request-Id", "r1")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			var errs []error
			for e, err := range Connect(t.Context(), newGet(t, srv.URL), WithRetry(0)) {
				if err == nil {
					t.Fatalf("yielded %+v", e)
				}
				errs = append(errs, err)
			}
			if len(errs) != 1 || n.Load() != 1 {
				t.Fatalf("%d errors, %d requests: %v", len(errs), n.Load(), errs)
			}
			se, ok := errs[0].(*StatusError)
			if !ok {
				t.Fatalf("yielded %T %v, want *StatusError", errs[0], errs[0])
			}
			if se.StatusCode != tc.status || se.Header.Get("X-Request-Id") != "r1" || !errors.Is(se, tc.is) && tc.is != nil {
				t.Fatalf("got %+v", se)
			}
			if tc.is == nil && string(se.Body) != tc.body {
				t.Fatalf("body %q, want %q", se.Body, tc.body)
			}
			if se.Error() != tc.message {
				t.Fatalf("message %q, want %q", se.Error(), tc.message)
			}
		})
	}
}

func TestConnectContentTypeParameters(t *testing.T) {
	for _, ct := range []string{"text/event-stream; charset=utf-8", "Text/Event-Stream", "text/event-stream;charset=UTF-8"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			io.WriteString(w, "data: ok\n\n")
		}))
		for e, err := range Connect(t.Context(), newGet(t, srv.URL)) {
			if err != nil || e.Data != "ok" {
				t.Fatalf("%s: got %+v, %v", ct, e, err)
			}
			break
		}
		srv.Close()
	}
}

func TestConnectRetryAfter(t *testing.T) {
	clk := newFakeClock()
	for _, tc := range []struct {
		status int
		value  string
		want   time.Duration
	}{
		{503, "2", 2 * time.Second},
		{429, clk.Now().Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{429, clk.Now().Add(-time.Hour).Format(http.TimeFormat), 6 * time.Second}, // past: the backoff
		{503, "0", 6 * time.Second},
	} {
		t.Run(fmt.Sprint(tc.status, " ", tc.value), func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.value)
					w.WriteHeader(tc.status)
					return
				}
				startEventStream(w)
				sendSSE(w, "data: ok\n\n")
			}))
			defer srv.Close()
			clk, rs := newFakeClock(), newRetries()
			items := runStream(t.Context(), mustConnectFunc(t, &Client{}, newGet(t, srv.URL)), WithClock(clk), WithJitter(maxJitter), rs.option())
			r := rs.next(t)
			if se, ok := errors.AsType[*StatusError](r.Err); !ok || se.StatusCode != tc.status || r.Delay != tc.want {
				t.Fatalf("retry %+v, want status %d after %v", r, tc.status, tc.want)
			}
			if d := clk.nextAfter(t); d != tc.want {
				t.Fatalf("waited %v", d)
			}
			clk.Advance(tc.want)
			if e := nextEvent(t, items); e.Data != "ok" {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

func mustConnectFunc(t *testing.T, c *Client, req *http.Request) ConnectFunc {
	t.Helper()
	f, err := c.ConnectFunc(req)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConnectRetryableClassifier(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		startEventStream(w)
		sendSSE(w, "data: ok\n\n")
	}))
	defer srv.Close()
	c := &Client{Retryable: func(err *StatusError) bool { return err.StatusCode >= 500 }}
	clk, rs := newFakeClock(), newRetries()
	items := runStream(t.Context(), mustConnectFunc(t, c, newGet(t, srv.URL)), WithClock(clk), WithRetry(time.Second),
		WithJitter(maxJitter), rs.option())
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second} {
		r := rs.next(t)
		if se, ok := errors.AsType[*StatusError](r.Err); !ok || se.StatusCode != 502 || r.Delay != want {
			t.Fatalf("retry %+v, want 502 after %v", r, want)
		}
		clk.Advance(clk.nextAfter(t))
	}
	if e := nextEvent(t, items); e.Data != "ok" {
		t.Fatalf("got %+v", e)
	}
}

func TestConnectFollowsRedirects(t *testing.T) {
	for _, status := range []int{301, 302, 307, 308} {
		for _, method := range []string{"GET", "POST"} {
			t.Run(fmt.Sprint(status, method), func(t *testing.T) {
				reqs := make(chan seenRequest, 10)
				target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reqs <- recordRequest(r)
					startEventStream(w)
					sendSSE(w, "id: 1\ndata: hello\n\n")
				}))
				defer target.Close()
				var redirects atomic.Int32
				front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					redirects.Add(1)
					http.Redirect(w, r, target.URL+"/events", status)
				}))
				defer front.Close()

				req, _ := http.NewRequest(method, front.URL, nil)
				opts := []Option{WithRetry(0)}
				if method == "POST" {
					req, _ = http.NewRequest(method, front.URL, strings.NewReader("prompt"))
					opts = append(opts, WithResend()) // reconnect through the redirect too
				}
				n := 0
				for e, err := range Connect(t.Context(), req, opts...) {
					if err != nil || e.Data != "hello" {
						t.Fatalf("got %+v, %v", e, err)
					}
					if n++; n == 2 {
						break
					}
				}
				if redirects.Load() != 2 {
					t.Fatalf("%d redirects, want one per connection", redirects.Load())
				}
				for i := range 2 {
					r := recvReq(t, reqs)
					wantMethod, wantBody := method, ""
					if method == "POST" && (status == 307 || status == 308) {
						wantBody = "prompt"
					} else {
						wantMethod = "GET" // as browsers do for 301 and 302
					}
					if r.path != "/events" || r.method != wantMethod || r.body != wantBody {
						t.Fatalf("seenRequest %d: %+v", i, r)
					}
					if i == 1 && r.header.Get("Last-Event-ID") != "1" {
						t.Fatalf("reconnection through the redirect lost Last-Event-ID: %v", r.header)
					}
				}
			})
		}
	}
}

func TestConnectRedirectWithoutLocation(t *testing.T) {
	for _, status := range []int{301, 302, 307, 308} {
		for _, empty := range []bool{true, false} {
			t.Run(fmt.Sprint(status, " empty=", empty), func(t *testing.T) {
				var n atomic.Int32
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n.Add(1)
					if empty {
						w.Header()["Location"] = []string{""}
					}
					w.WriteHeader(status)
				}))
				defer srv.Close()
				var errs []error
				for _, err := range Connect(t.Context(), newGet(t, srv.URL), WithRetry(0)) {
					errs = append(errs, err)
				}
				if len(errs) != 1 || !errors.Is(errs[0], ErrRedirectWithoutLocation) {
					t.Fatalf("yielded %v, want one ErrRedirectWithoutLocation", errs)
				}
				if se, ok := errors.AsType[*StatusError](errs[0]); !ok || se.StatusCode != status {
					t.Fatalf("yielded %v", errs[0])
				}
				if n.Load() != 1 {
					t.Fatalf("%d requests, want 1", n.Load())
				}
			})
		}
	}
}

func TestConnectRedirectLoopIsPermanent(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, "/again", http.StatusFound)
	}))
	defer srv.Close()
	var errs []error
	for _, err := range Connect(t.Context(), newGet(t, srv.URL), WithRetry(0)) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "redirects") {
		t.Fatalf("yielded %v", errs)
	}
	if n.Load() > 11 {
		t.Fatalf("%d requests: the client retried a redirect loop", n.Load())
	}
}

func TestConnectNetworkErrorIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		startEventStream(w)
		sendSSE(w, "data: ok\n\n")
	}))
	defer srv.Close()
	clk, rs := newFakeClock(), newRetries()
	items := runStream(t.Context(), mustConnectFunc(t, &Client{}, newGet(t, srv.URL)), WithClock(clk), WithRetry(time.Second),
		WithJitter(maxJitter), rs.option())
	if r := rs.next(t); r.Attempt != 2 || r.Delay != 2*time.Second {
		t.Fatalf("retry %+v", r)
	}
	clk.Advance(clk.nextAfter(t))
	if e := nextEvent(t, items); e.Data != "ok" {
		t.Fatalf("got %+v", e)
	}
}

// hangingServer answers every seenRequest with an event and then holds the
// stream open, reporting on gone when the client drops it.
func hangingServer(t *testing.T, reqs chan seenRequest, gone chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- recordRequest(r)
		startEventStream(w)
		sendSSE(w, fmt.Sprintf("id: %d\ndata: hello\n\n", len(reqs)))
		<-r.Context().Done()
		gone <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func recvGone(t *testing.T, gone chan struct{}) {
	t.Helper()
	select {
	case <-gone:
	case <-time.After(hangTimeout):
		t.Fatal("the server never saw the connection dropped")
	}
}

func TestConnectReadTimeout(t *testing.T) {
	reqs, gone := make(chan seenRequest, 10), make(chan struct{}, 10)
	srv := hangingServer(t, reqs, gone)
	clk, rs := newFakeClock(), newRetries()
	items := runStream(t.Context(), mustConnectFunc(t, &Client{}, newGet(t, srv.URL)), WithClock(clk), WithRetry(0),
		WithReadTimeout(5*time.Second), rs.option())
	nextEvent(t, items)
	if d := clk.nextAfter(t); d != 5*time.Second {
		t.Fatalf("watchdog armed for %v", d)
	}
	clk.Advance(5 * time.Second)
	recvGone(t, gone)
	if r := rs.next(t); !errors.Is(r.Err, ErrReadTimeout) {
		t.Fatalf("retry %v", r)
	}
	recvReq(t, reqs)
	if r := recvReq(t, reqs); r.header.Get("Last-Event-ID") == "" {
		t.Fatal("reconnected without Last-Event-ID")
	}
	nextEvent(t, items)
}

func TestConnectRestart(t *testing.T) {
	reqs, gone := make(chan seenRequest, 10), make(chan struct{}, 10)
	srv := hangingServer(t, reqs, gone)
	var restarter Restarter
	rs := newRetries()
	items := runStream(t.Context(), mustConnectFunc(t, &Client{}, newGet(t, srv.URL)), WithRestarter(&restarter), rs.option())
	if e := nextEvent(t, items); e.ID != "1" {
		t.Fatalf("got %+v", e)
	}
	restarter.Restart()
	recvGone(t, gone)
	if e := nextEvent(t, items); e.ID != "2" {
		t.Fatalf("got %+v", e)
	}
	recvReq(t, reqs)
	if r := recvReq(t, reqs); r.header.Get("Last-Event-ID") != "1" {
		t.Fatalf("restarted with Last-Event-ID %q", r.header.Get("Last-Event-ID"))
	}
	rs.none(t)
}

func TestConnectCancel(t *testing.T) {
	reqs, gone := make(chan seenRequest, 10), make(chan struct{}, 10)
	srv := hangingServer(t, reqs, gone)
	ctx, cancel := context.WithCancel(t.Context())
	items := runStream(ctx, mustConnectFunc(t, &Client{}, newGet(t, srv.URL)), WithRetry(0))
	nextEvent(t, items)
	cancel()
	recvGone(t, gone)
	if it := nextItem(t, items); it.err != context.Canceled {
		t.Fatalf("got %+v", it)
	}
	expectEnd(t, items)
	if len(reqs) != 1 {
		t.Fatalf("%d requests: cancelling reconnected", len(reqs))
	}
}

func TestConnectResetSignal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ResetHeader, ResetUnknown)
		startEventStream(w)
		wire, _ := AppendEvent(nil, ResetEvent("head-3", ResetUnknown))
		sendSSE(w, string(wire)+"id: head-4\ndata: live\n\n")
	}))
	defer srv.Close()
	req := newGet(t, srv.URL)
	req.Header.Set("Last-Event-ID", "gone")
	var reset *ResetError
	for e, err := range Connect(t.Context(), req) {
		if errors.As(err, &reset) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if reset == nil || *reset != (ResetError{Reason: ResetUnknown, Head: "head-3", LastEventID: "gone"}) {
			t.Fatalf("reset %+v before %+v", reset, e)
		}
		if e.Data != "live" {
			t.Fatalf("got %+v", e)
		}
		break
	}
}

func TestStatusErrorRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 3 ", 3 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		e := &StatusError{StatusCode: 503, Header: http.Header{"Retry-After": {tc.value}}}
		if d, ok := e.RetryAfter(now); d != tc.want || ok != tc.ok {
			t.Errorf("Retry-After %q: %v, %v; want %v, %v", tc.value, d, ok, tc.want, tc.ok)
		}
	}
	if DefaultRetryable(&StatusError{StatusCode: 500, Header: http.Header{"Retry-After": {"1"}}}) {
		t.Error("500 with Retry-After is retryable by default")
	}
	if !DefaultRetryable(&StatusError{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}}) {
		t.Error("429 with Retry-After is not retryable by default")
	}
}
