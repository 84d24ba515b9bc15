package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what the test server saw of one request.
type seen struct {
	method string
	header http.Header
	body   string
	query  string
}

// server answers request n (from 1) with handle(n, w, r) and records every
// request.
func server(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, chan seen) {
	reqs := make(chan seen, 100)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- seen{r.Method, r.Header.Clone(), string(b), r.URL.RawQuery}
		handle(int(n.Add(1)), w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, reqs
}

func stream(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, s)
}

func listen(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), append([]string{"listen"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

const twoEvents = "retry: 1\nid: 1\nevent: greeting\ndata: Hello\ndata: <world> & \"you\"\n\n: comment\ndata: no id field\n\n"

func TestListenJSON(t *testing.T) {
	srv, _ := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		stream(w, twoEvents)
	})
	code, out, errOut := listen(t, "--json", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `{"id":"1","type":"greeting","data":"Hello\n<world> & \"you\""}` + "\n" +
		`{"id":"1","type":"message","data":"no id field"}` + "\n"
	if out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

func TestListenReadableForm(t *testing.T) {
	srv, _ := server(t, func(n int, w http.ResponseWriter, r *http.Request) { stream(w, twoEvents) })
	code, out, errOut := listen(t, "--once", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "id: 1\nevent: greeting\ndata: Hello\ndata: <world> & \"you\"\n\nid: 1\nevent: message\ndata: no id field\n\n"
	if out != want {
		t.Fatalf("stdout:\n%q\nwant:\n%q", out, want)
	}
}

func TestListenReconnectsByDefault(t *testing.T) {
	srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			stream(w, "retry: 1\nid: a\ndata: one\n\n")
		case 2:
			stream(w, "id: b\ndata: two\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	code, out, errOut := listen(t, "--json", "--last-event-id", "start", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := `{"id":"a","type":"message","data":"one"}` + "\n" + `{"id":"b","type":"message","data":"two"}` + "\n"; out != want {
		t.Fatalf("stdout %q", out)
	}
	for i, want := range []string{"start", "a", "b"} {
		if got := (<-reqs).header.Get("Last-Event-ID"); got != want {
			t.Fatalf("request %d: Last-Event-ID %q, want %q", i, got, want)
		}
	}
	// Each reconnection is reported on one line.
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "reconnecting") {
		t.Fatalf("stderr %q", errOut)
	}
}

// An LLM-style POST is sent once: the end of its stream ends the command,
// a broken connection is an error, and neither sends the prompt again.
func TestListenPostIsSentOnce(t *testing.T) {
	for _, broken := range []bool{false, true} {
		srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
			stream(w, "retry: 1\nid: 1\ndata: tok\n\n")
			if broken {
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
		})
		code, out, errOut := listen(t, "--json", "--data", `{"prompt":"hi"}`, srv.URL)
		switch {
		case broken && (code != 1 || !strings.Contains(errOut, "connection lost") || strings.Count(errOut, "\n") != 1):
			t.Fatalf("broken: exit %d, stderr %q", code, errOut)
		case !broken && (code != 0 || errOut != ""):
			t.Fatalf("exit %d: %q", code, errOut)
		}
		if out != `{"id":"1","type":"message","data":"tok"}`+"\n" {
			t.Fatalf("broken=%v: stdout %q", broken, out)
		}
		if len(reqs) != 1 {
			t.Fatalf("broken=%v: %d requests, want 1", broken, len(reqs))
		}
	}
}

func TestListenOnceDoesNotReconnect(t *testing.T) {
	srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) { stream(w, "retry: 1\ndata: x\n\n") })
	code, out, errOut := listen(t, "--once", "--json", srv.URL)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if out != `{"id":"","type":"message","data":"x"}`+"\n" {
		t.Fatalf("stdout %q", out)
	}
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
}

func TestListenErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(n int, w http.ResponseWriter, r *http.Request)
		want   string
	}{
		{"404", func(n int, w http.ResponseWriter, r *http.Request) { http.Error(w, "no such\nstream", 404) }, "404 Not Found: no such stream\n"},
		{"500", func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "500"},
		{"status text body", func(n int, w http.ResponseWriter, r *http.Request) { http.Error(w, "Forbidden", http.StatusForbidden) }, "403 Forbidden\n"},
		{"json body", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(429)
			io.WriteString(w, `{"title": "slow down"}`)
		}, `429 Too Many Requests: {"title": "slow down"}`},
		{"html body", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html><body>bad gateway</body></html>")
		}, "502 Bad Gateway\n"},
		{"204 once", func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, "204"},
		{"content type", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}, "application/json"},
	} {
		for _, once := range []bool{true, false} {
			if tc.name == "204 once" && !once {
				continue // reconnecting, 204 is the clean end (TestListenJSON)
			}
			args := []string{"--json"}
			if once {
				args = append(args, "--once")
			}
			t.Run(tc.name+" "+strings.Join(args, " "), func(t *testing.T) {
				srv, reqs := server(t, tc.handle)
				code, out, errOut := listen(t, append(args, srv.URL)...)
				if code != 1 || out != "" {
					t.Fatalf("exit %d, stdout %q", code, out)
				}
				if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") || !strings.Contains(errOut, tc.want) {
					t.Fatalf("stderr %q: want one line mentioning %s", errOut, tc.want)
				}
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
			})
		}
	}
}

func TestListenOnceNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, _, errOut := listen(t, "--once", url)
	if code != 1 || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestListenTimeout(t *testing.T) {
	for _, once := range []bool{true, false} {
		srv, _ := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
			stream(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		args := []string{"--json", "--timeout", "50ms", srv.URL}
		if once {
			args = append(args, "--once")
		}
		code, out, errOut := listen(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("once=%v: exit %d: %q", once, code, errOut)
		}
		if out != `{"id":"","type":"message","data":"first"}`+"\n" {
			t.Fatalf("once=%v: stdout %q", once, out)
		}
	}
}

func TestListenRequestFlags(t *testing.T) {
	srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) { stream(w, "data: ok\n\n") })
	code, _, errOut := listen(t, "--once", "-H", "Authorization: Bearer k", "-H", "X-Multi: 1", "-H", "X-Multi: 2",
		"--data", `{"q":1}`, srv.URL, "--last-event-id", "42")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := <-reqs
	if r.method != "POST" || r.body != `{"q":1}` || r.header.Get("Authorization") != "Bearer k" ||
		strings.Join(r.header.Values("X-Multi"), ",") != "1,2" || r.header.Get("Last-Event-ID") != "42" ||
		r.header.Get("Accept") != "text/event-stream" {
		t.Fatalf("request %+v", r)
	}

	code, _, errOut = listen(t, "--once", "--method", "PUT", srv.URL)
	if r := <-reqs; code != 0 || r.method != "PUT" || r.body != "" {
		t.Fatalf("exit %d (%s), request %+v", code, errOut, r)
	}
	code, _, errOut = listen(t, "--once", srv.URL)
	if r := <-reqs; code != 0 || r.method != "GET" || len(r.header.Values("Last-Event-Id")) != 0 {
		t.Fatalf("exit %d (%s), request %+v", code, errOut, r)
	}
}

// A "#" left unencoded in the URL starts its fragment, which is never sent:
// a cursor such as last_event_id=#k3j9x0a2-1z would be lost without a word.
func TestListenWarnsOfAFragment(t *testing.T) {
	srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) { stream(w, "data: ok\n\n") })
	code, _, errOut := listen(t, "--once", srv.URL+"/?topic=a&last_event_id=#k3j9x0a2-1z")
	if r := <-reqs; code != 0 || r.query != "topic=a&last_event_id=" || !strings.Contains(errOut, `fragment "#k3j9x0a2-1z" is not sent`) || !strings.Contains(errOut, "%23") {
		t.Fatalf("exit %d, query %q, stderr %q; want a warning about the fragment", code, r.query, errOut)
	}
	code, _, errOut = listen(t, "--once", srv.URL+"/?topic=a&last_event_id=%23k3j9x0a2-1z")
	if r := <-reqs; code != 0 || r.query != "topic=a&last_event_id=%23k3j9x0a2-1z" || errOut != "" {
		t.Fatalf("exit %d, query %q, stderr %q; want the encoded cursor sent and no warning", code, r.query, errOut)
	}
}

func TestListenReadTimeout(t *testing.T) {
	srv, reqs := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		stream(w, "retry: 0\nid: 1\ndata: x\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	code, _, errOut := listen(t, "--read-timeout", "20ms", srv.URL)
	if code != 0 || !strings.Contains(errOut, "read timeout") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	<-reqs
	if r := <-reqs; r.header.Get("Last-Event-ID") != "1" {
		t.Fatalf("reconnected with %v", r.header)
	}
}

func TestListenResetIsReported(t *testing.T) {
	srv, _ := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		stream(w, "retry: 0\nevent: sluice-reset\nid: 9\ndata: {\"head\":\"9\",\"reason\":\"expired\"}\n\nid: 10\ndata: live\n\n")
	})
	code, out, errOut := listen(t, "--json", "--last-event-id", "3", srv.URL)
	if code != 0 || out != `{"id":"10","type":"message","data":"live"}`+"\n" || !strings.Contains(errOut, "history lost (expired)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestListenUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"http://a", "http://b"},
		{"--nope", "http://a"},
		{"-H", "no colon", "http://a"},
		{"ftp://a"},
		{"--method", "BAD METHOD", "http://a"},
		{"--last-event-id", "a\nb", "http://a"},
	} {
		code, out, errOut := listen(t, args...)
		if code != 2 || out != "" || errOut == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, out, _ := listen(t, "-h"); code != 0 || out != "" {
		t.Errorf("-h: exit %d", code)
	}
}

func TestDispatch(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "listen") {
		t.Fatalf("no args: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "frobnicate") {
		t.Fatalf("unknown: exit %d, %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "listen") {
		t.Fatalf("help: exit %d, %q", code, out.String())
	}
}

func TestListenStopsWhenContextEnds(t *testing.T) {
	srv, _ := server(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() { done <- run(ctx, []string{"listen", srv.URL}, pw, io.Discard) }()
	buf := make([]byte, 64)
	if _, err := pr.Read(buf); err != nil { // the first event is out
		t.Fatal(err)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not stop")
	}
}

// TestListenShowsWhatTheHubSays: an error response's body, where the hub
// says what is wrong, is on the error line.
func TestListenShowsWhatTheHubSays(t *testing.T) {
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", strings.Repeat("k", 32), "--anonymous")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{base + "/.well-known/mercure"}, "400 Bad Request: mercure: missing topic"},
		{[]string{"-H", "Authorization: Bearer " + strings.Repeat("x", 50), base + "/.well-known/mercure?topic=a"}, "401 Unauthorized: token is malformed"},
	} {
		code, _, errOut := listen(t, append([]string{"--once"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("listen %s: exit %d, stderr %q; want 1 and one line with %q", tc.args, code, errOut, tc.want)
		}
	}
}
