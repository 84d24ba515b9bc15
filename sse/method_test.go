package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// zeroJitter makes every backoff wait exactly the reconnection time.
func zeroJitter(time.Duration) time.Duration { return 0 }

// requestLog records the requests a test server saw, in order.
type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *requestLog) add(r *http.Request) (seenRequest, int) {
	seen := recordRequest(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, seen)
	return seen, len(l.reqs)
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// summary is "METHOD[:Last-Event-ID][ path]" for each request, the path
// only when it is not "/".
func (l *requestLog) summary() []string {
	var out []string
	for _, r := range l.all() {
		s := r.method
		if id := r.header.Get("Last-Event-ID"); id != "" {
			s += ":" + id
		}
		if r.path != "/" {
			s += " " + r.path
		}
		out = append(out, s)
	}
	return out
}

// drop ends the response without the end of the chunked body, as a
// connection that breaks: the client reads an unexpected EOF.
func drop() { panic(http.ErrAbortHandler) }

// collect ranges over seq and returns the events and the errors yielded.
// It stops at more than max events: a stream repeating itself.
func collect(t *testing.T, seq func(func(Event, error) bool), max int) (events []Event, errs []error) {
	t.Helper()
	for e, err := range seq {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if events = append(events, e); len(events) > max {
			t.Errorf("more than %d events: %+v", max, events)
			break
		}
	}
	return events, errs
}

// An LLM answer: a POST, five tokens with ids and a short retry, a clean end
// of the stream and no 204. The prompt is sent once, the answer yielded
// once, and the loop ends.
func TestConnectPostIsSentOnce(t *testing.T) {
	for _, method := range []string{"POST", "PUT", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			var log requestLog
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				log.add(r)
				startEventStream(w)
				sendSSE(w, "retry: 10\n\n")
				for i := 1; i <= 5; i++ {
					sendSSE(w, fmt.Sprintf("id: %d\nevent: token\ndata: tok%d\n\n", i, i))
				}
			}))
			defer srv.Close()
			req, _ := http.NewRequest(method, srv.URL, strings.NewReader(`{"prompt":"hi"}`))
			rs := newRetries()
			events, errs := collect(t, Connect(t.Context(), req, rs.option()), 5)
			if len(errs) != 0 {
				t.Fatalf("errors %v", errs)
			}
			var got []string
			for _, e := range events {
				got = append(got, e.ID+"="+e.Data)
			}
			if want := []string{"1=tok1", "2=tok2", "3=tok3", "4=tok4", "5=tok5"}; !slices.Equal(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			if reqs := log.all(); len(reqs) != 1 || reqs[0].method != method || reqs[0].body != `{"prompt":"hi"}` {
				t.Fatalf("requests %+v, want one %s with the prompt", reqs, method)
			}
			rs.none(t)
		})
	}
}

// The rules of Connect (README's table), method × how the first connection
// ends × options. The first request opens a stream that delivers the event
// with id 1 and then ends cleanly or breaks, or it fails with a status the
// client's classifier retries or with a network error, or it gets 204;
// every later request gets 204, which ends the stream.
func TestConnectReconnectionRules(t *testing.T) {
	resume := func(url string) Option {
		return WithResume(func(lastEventID string) (*http.Request, error) {
			return http.NewRequest(http.MethodGet, url+"/resume", nil)
		})
	}
	const (
		end    = "end"
		brk    = "drop"
		fail   = "503"
		refuse = "network error"
		gone   = "204"
	)
	for _, tc := range []struct {
		method string
		first  string   // how the first request ends
		opts   []string // resume, resend, oneshot
		reqs   []string // the requests the server sees
		err    error    // the final error: nil for a clean end
	}{
		// GET: EventSource.
		{"GET", end, nil, []string{"GET", "GET:1"}, nil},
		{"GET", brk, nil, []string{"GET", "GET:1"}, nil},
		{"GET", fail, nil, []string{"GET", "GET"}, nil},
		{"GET", refuse, nil, []string{"GET", "GET"}, nil},
		{"GET", gone, nil, []string{"GET"}, nil},
		{"GET", end, []string{"oneshot"}, []string{"GET"}, nil},
		{"GET", brk, []string{"oneshot"}, []string{"GET"}, ErrConnectionLost},
		{"GET", fail, []string{"oneshot"}, []string{"GET"}, &StatusError{}},
		{"GET", refuse, []string{"oneshot"}, []string{"GET"}, &url.Error{}},
		{"GET", end, []string{"resume"}, []string{"GET", "GET:1 /resume"}, nil},
		// POST: sent once unless the caller says how to go on.
		{"POST", end, nil, []string{"POST"}, nil},
		{"POST", brk, nil, []string{"POST"}, ErrConnectionLost},
		{"POST", fail, nil, []string{"POST"}, &StatusError{}},
		{"POST", refuse, nil, []string{"POST"}, &url.Error{}},
		{"POST", gone, nil, []string{"POST"}, nil},
		{"POST", end, []string{"resume"}, []string{"POST", "GET:1 /resume"}, nil},
		{"POST", brk, []string{"resume"}, []string{"POST", "GET:1 /resume"}, nil},
		{"POST", fail, []string{"resume"}, []string{"POST"}, &StatusError{}},
		{"POST", refuse, []string{"resume"}, []string{"POST"}, &url.Error{}},
		{"POST", gone, []string{"resume"}, []string{"POST"}, nil},
		{"POST", end, []string{"resend"}, []string{"POST", "POST:1"}, nil},
		{"POST", brk, []string{"resend"}, []string{"POST", "POST:1"}, nil},
		{"POST", fail, []string{"resend"}, []string{"POST", "POST"}, nil},
		{"POST", refuse, []string{"resend"}, []string{"POST", "POST"}, nil},
		{"POST", gone, []string{"resend"}, []string{"POST"}, nil},
		{"POST", refuse, []string{"oneshot"}, []string{"POST"}, &url.Error{}},
		{"POST", fail, []string{"resend", "resume"}, []string{"POST", "POST"}, nil},
		{"POST", brk, []string{"resend", "resume"}, []string{"POST", "GET:1 /resume"}, nil},
		{"POST", brk, []string{"oneshot", "resume", "resend"}, []string{"POST"}, ErrConnectionLost},
		{"DELETE", end, nil, []string{"DELETE"}, nil},
	} {
		t.Run(fmt.Sprint(tc.method, " ", tc.first, " ", tc.opts), func(t *testing.T) {
			var log requestLog
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, n := log.add(r); n > 1 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				switch tc.first {
				case fail:
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				case gone:
					w.WriteHeader(http.StatusNoContent)
					return
				case refuse:
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
				startEventStream(w)
				sendSSE(w, "id: 1\ndata: one\n\n")
				if tc.first == brk {
					drop()
				}
			}))
			defer srv.Close()
			opts := []Option{WithRetry(0), WithJitter(zeroJitter)}
			for _, o := range tc.opts {
				switch o {
				case "resume":
					opts = append(opts, resume(srv.URL))
				case "resend":
					opts = append(opts, WithResend())
				case "oneshot":
					opts = append(opts, WithOneShot())
				}
			}
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader("body"))
			c := &Client{Retryable: func(*StatusError) bool { return true }}
			events, errs := collect(t, c.Connect(t.Context(), req, opts...), 1)
			if got := log.summary(); !slices.Equal(got, tc.reqs) {
				t.Errorf("requests %q, want %q", got, tc.reqs)
			}
			if opens := tc.first == end || tc.first == brk; opens && (len(events) != 1 || events[0].Data != "one") {
				t.Errorf("events %+v, want the first one once", events)
			} else if !opens && len(events) != 0 {
				t.Errorf("events %+v, want none", events)
			}
			switch tc.err.(type) {
			case nil:
				if len(errs) != 0 {
					t.Errorf("errors %v, want a clean end", errs)
				}
			case *StatusError:
				if len(errs) != 1 || !errors.As(errs[0], new(*StatusError)) {
					t.Errorf("errors %v, want the 503", errs)
				}
			case *url.Error:
				if len(errs) != 1 || !errors.As(errs[0], new(*url.Error)) || errors.Is(errs[0], ErrConnectionLost) {
					t.Errorf("errors %v, want the request's network error", errs)
				}
			default:
				if len(errs) != 1 || !errors.Is(errs[0], tc.err) {
					t.Errorf("errors %v, want %v", errs, tc.err)
				}
			}
		})
	}
}

// mcpServer is a streamable-HTTP-style endpoint: a POST starts a stream of
// five events that breaks after the second; a GET with Last-Event-ID
// resumes it; a GET after the last event gets 204.
func mcpServer(t *testing.T, log *requestLog) *httptest.Server {
	events := []string{"", "a", "b", "c", "d", "e"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ := log.add(r)
		switch {
		case r.Method == http.MethodPost:
			startEventStream(w)
			sendSSE(w, "retry: 10\n\n")
			for i := 1; i <= 2; i++ {
				sendSSE(w, fmt.Sprintf("id: %d\ndata: %s\n\n", i, events[i]))
			}
			drop()
		case r.Method == http.MethodGet && seen.header.Get("Mcp-Session-Id") == "s1":
			from := 0
			fmt.Sscan(r.Header.Get("Last-Event-ID"), &from)
			if from < 1 || from >= 5 {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			startEventStream(w)
			for i := from + 1; i <= 5; i++ {
				sendSSE(w, fmt.Sprintf("id: %d\ndata: %s\n\n", i, events[i]))
			}
		default:
			http.Error(w, "no session", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The MCP flow: a POST starts the stream, a drop is resumed with a GET
// carrying Last-Event-ID, the events after it arrive once, and 204 ends it.
func TestConnectPostResumedWithGet(t *testing.T) {
	var log requestLog
	srv := mcpServer(t, &log)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
	req.Header.Set("Mcp-Session-Id", "s1")
	var resumedAfter []string
	resume := func(lastEventID string) (*http.Request, error) {
		resumedAfter = append(resumedAfter, lastEventID)
		r, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err == nil {
			r.Header.Set("Mcp-Session-Id", "s1")
		}
		return r, err
	}
	events, errs := collect(t, Connect(t.Context(), req, WithResume(resume)), 5)
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.ID+"="+e.Data)
	}
	if want := []string{"1=a", "2=b", "3=c", "4=d", "5=e"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if got, want := log.summary(), []string{"POST", "GET:2", "GET:5"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if !slices.Equal(resumedAfter, []string{"2", "5"}) {
		t.Fatalf("resume called with %q", resumedAfter)
	}
	for _, r := range log.all()[1:] {
		if r.header.Get("Accept") != "text/event-stream" || r.header.Get("Cache-Control") != "no-cache" || r.body != "" {
			t.Fatalf("resumed request %+v", r)
		}
	}

	// Without a resume function the drop ends the stream: no second POST.
	log = requestLog{}
	req, _ = http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
	events, errs = collect(t, Connect(t.Context(), req), 5)
	if len(events) != 2 || len(errs) != 1 || !errors.Is(errs[0], ErrConnectionLost) || !errors.Is(errs[0], io.ErrUnexpectedEOF) {
		t.Fatalf("events %+v, errors %v; want 2 events and ErrConnectionLost", events, errs)
	}
	if got := log.summary(); !slices.Equal(got, []string{"POST"}) {
		t.Fatalf("requests %q, want one POST", got)
	}
}

// A resumed request meets the rules of the first one: a status that is
// not retried and a response that is not an event stream end the stream
// with their error, 204 ends it cleanly, a network error is retried (with
// the resume function called again), and the resume function's own
// errors end it.
func TestConnectResumeRequestRules(t *testing.T) {
	resumeErr := errors.New("no session")
	for _, tc := range []struct {
		name    string
		resumed func(n int, w http.ResponseWriter) // answers the nth resumed request
		fnErr   error                              // returned by the resume function
		calls   int                                // calls of the resume function
		check   func(error) bool
	}{
		{"404", func(n int, w http.ResponseWriter) { http.Error(w, "gone", 404) }, nil, 1,
			func(err error) bool { se, ok := errors.AsType[*StatusError](err); return ok && se.StatusCode == 404 }},
		{"not an event stream", func(n int, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}, nil, 1, func(err error) bool { return errors.Is(err, ErrNotEventStream) }},
		{"204", func(n int, w http.ResponseWriter) { w.WriteHeader(204) }, nil, 1, func(err error) bool { return err == nil }},
		{"network error then 204", func(n int, w http.ResponseWriter) {
			if n == 1 {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			w.WriteHeader(204)
		}, nil, 2, func(err error) bool { return err == nil }},
		{"resume function fails", nil, resumeErr, 1, func(err error) bool { return errors.Is(err, resumeErr) }},
		{"resume function says done", nil, fmt.Errorf("nothing to resume: %w", ErrDone), 1, func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log requestLog
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, n := log.add(r)
				if r.Method == http.MethodPost {
					startEventStream(w)
					sendSSE(w, "id: 1\ndata: one\n\n")
					drop()
				}
				tc.resumed(n-1, w)
			}))
			defer srv.Close()
			calls := 0
			resume := func(lastEventID string) (*http.Request, error) {
				calls++
				if tc.fnErr != nil {
					return nil, tc.fnErr
				}
				return http.NewRequest(http.MethodGet, srv.URL, nil)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
			events, errs := collect(t, Connect(t.Context(), req, WithResume(resume), WithRetry(0), WithJitter(zeroJitter)), 1)
			var err error
			if len(errs) > 1 {
				t.Fatalf("errors %v", errs)
			} else if len(errs) == 1 {
				err = errs[0]
			}
			if len(events) != 1 || !tc.check(err) || calls != tc.calls {
				t.Fatalf("events %+v, error %v, %d resume calls (want %d)", events, err, calls, tc.calls)
			}
			if reqs := log.all(); reqs[0].method != "POST" || slices.ContainsFunc(reqs[1:], func(r seenRequest) bool { return r.method != "GET" }) {
				t.Fatalf("requests %q", log.summary())
			}
		})
	}
}

// A resume function that returns no request and no error is a bug the
// stream reports rather than a panic.
func TestConnectResumeNilRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		startEventStream(w)
		sendSSE(w, "id: 1\ndata: one\n\n")
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	_, errs := collect(t, Connect(t.Context(), req, WithResume(func(string) (*http.Request, error) { return nil, nil })), 1)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no request") {
		t.Fatalf("errors %v", errs)
	}
}

// Each range over Connect's iterator starts with the first request again,
// also when the stream resumes with another one.
func TestConnectResumeRangesAfresh(t *testing.T) {
	var log requestLog
	srv := mcpServer(t, &log)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
	resume := func(string) (*http.Request, error) {
		r, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err == nil {
			r.Header.Set("Mcp-Session-Id", "s1")
		}
		return r, err
	}
	seq := Connect(t.Context(), req, WithResume(resume))
	for range 2 {
		if events, errs := collect(t, seq, 5); len(events) != 5 || len(errs) != 0 {
			t.Fatalf("events %+v, errors %v", events, errs)
		}
	}
	if got, want := log.summary(), []string{"POST", "GET:2", "GET:5", "POST", "GET:2", "GET:5"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if log.all()[3].body != "{}" {
		t.Fatal("the second POST lost its body")
	}
}

// A Restart on a stream that may not reconnect ends it with
// ErrConnectionLost rather than sending the POST again.
func TestConnectRestartPostWithoutResume(t *testing.T) {
	reqs, gone := make(chan seenRequest, 10), make(chan struct{}, 10)
	srv := hangingServer(t, reqs, gone)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("prompt"))
	var restarter Restarter
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	items := make(chan streamItem, 10)
	go func() {
		defer close(items)
		for e, err := range Connect(ctx, req, WithRestarter(&restarter)) {
			items <- streamItem{e, err}
		}
	}()
	nextEvent(t, items)
	restarter.Restart()
	recvGone(t, gone)
	if it := nextItem(t, items); !errors.Is(it.err, ErrConnectionLost) {
		t.Fatalf("got %+v, want ErrConnectionLost", it)
	}
	expectEnd(t, items)
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
}

// A block with an id and no data line — the hub's default priming — is
// never yielded, whatever the types asked for, and its id is the one the
// stream resumes from.
func TestConnectIDOnlyBlockIsInvisible(t *testing.T) {
	var log requestLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, n := log.add(r); n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		startEventStream(w)
		sendSSE(w, "id: primed\n\nid: typed\nevent: message\n\n: comment\n\n")
	}))
	defer srv.Close()
	for _, opts := range [][]Option{nil, {WithTypes("message")}} {
		log = requestLog{}
		events, errs := collect(t, Connect(t.Context(), newGet(t, srv.URL), append(opts, WithRetry(0))...), 0)
		if len(events) != 0 || len(errs) != 0 {
			t.Fatalf("yielded %+v, %v", events, errs)
		}
		if got := log.summary(); !slices.Equal(got, []string{"GET", "GET:typed"}) {
			t.Fatalf("requests %q", got)
		}
	}
}
