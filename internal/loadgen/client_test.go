package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testEnv returns an env whose subscribers connect to rawURL.
func testEnv(t *testing.T, rawURL string, publishers int) *env {
	t.Helper()
	ep, err := resolveTarget(t.Context(), rawURL, false)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		start:          time.Now(),
		mark:           marker("test1234"),
		target:         target{addr: ep.addr.String(), host: ep.url.Host, path: ep.url.RequestURI()},
		sources:        []*net.TCPAddr{{IP: net.IPv4(127, 0, 0, 2)}, {IP: net.IPv4(127, 0, 0, 3)}},
		connectTimeout: 5 * time.Second,
		maxEventSize:   1 << 20,
		publishers:     publishers,
	}
	if e.request, err = buildRequest(e.target, "Bearer sub-token", "41"); err != nil {
		t.Fatal(err)
	}
	return e
}

// runSubscriber connects one subscriber and reads until the server ends
// the stream.
func runSubscriber(t *testing.T, e *env, id int) *subscriber {
	t.Helper()
	s := &subscriber{id: id, shard: &shard{latency: newHistogram()}}
	connected := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(t.Context(), e, func() { close(connected) }, nil)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.close()
		<-done
		t.Fatal("the subscriber did not finish")
	}
	return s
}

func TestSubscriberSequence(t *testing.T) {
	var e *env
	var gotAuth, gotLast, gotAccept string
	var remote []string
	// The script: 0…99 from publisher 0, without 50, with 70 twice and 80
	// before 79; then 0…9 from publisher 1; a comment and a foreign event.
	var script []int64
	for i := int64(0); i < 100; i++ {
		switch i {
		case 50:
			continue
		case 79:
			script = append(script, 80, 79)
		case 80:
			continue
		case 70:
			script = append(script, 70, 70)
		default:
			script = append(script, i)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotLast, gotAccept = r.Header.Get("Authorization"), r.Header.Get("Last-Event-ID"), r.Header.Get("Accept")
		remote = append(remote, r.RemoteAddr)
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, ": heartbeat\n\n")
		rc.Flush()
		for i, seq := range script {
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, appendPayload(nil, e.mark, 0, seq, int64(e.now()), 0))
			if i%3 == 0 {
				rc.Flush() // vary the chunk boundaries
			}
		}
		for seq := range int64(10) {
			fmt.Fprintf(w, "data: {\"wrapped\": %q}\n\n", appendPayload(nil, e.mark, 1, seq, int64(e.now()), 100))
		}
		io.WriteString(w, "data: not ours\n\n")
	}))
	defer srv.Close()
	e = testEnv(t, srv.URL+"/stream?topic=x", 2)
	s := runSubscriber(t, e, 1)
	if !s.connected || s.connErr != nil {
		t.Fatalf("not connected: %v", s.connErr)
	}
	if gotAuth != "Bearer sub-token" || gotLast != "41" || gotAccept != "text/event-stream" {
		t.Errorf("request headers: Authorization %q, Last-Event-ID %q, Accept %q", gotAuth, gotLast, gotAccept)
	}
	if host, _, _ := net.SplitHostPort(remote[0]); host != "127.0.0.3" {
		t.Errorf("subscriber 1 connected from %s, want source 127.0.0.3", host)
	}
	if s.dropErr == nil || !strings.Contains(s.dropErr.Error(), "ended the stream") {
		t.Errorf("drop error %v, want the server ending the stream", s.dropErr)
	}
	// 100 + 10 tagged events arrived, 99 + 10 of them unique.
	if s.events != 110 || s.unique != 109 || s.holes != 1 || s.dups != 1 || s.late != 1 || s.other != 1 || s.comments != 1 {
		t.Errorf("events %d unique %d gaps %d dups %d late %d other %d comments %d; want 110 109 1 1 1 1 1",
			s.events, s.unique, s.holes, s.dups, s.late, s.other, s.comments)
	}
	l := s.shard.latency.summary()
	if l == nil || l.Count != 109 || l.Max <= 0 || l.Max > int64(5*time.Second) {
		t.Errorf("latency %+v, want 109 positive samples", l)
	}
	if s.shard.unique.Load() != 109 {
		t.Errorf("shard counted %d unique, want 109", s.shard.unique.Load())
	}
}

// rawServer serves each connection with handle, on a plain TCP listener.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf) // the request
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

func TestSubscriberUnchunkedBodies(t *testing.T) {
	var e *env
	events := func() string {
		var b strings.Builder
		for seq := range int64(5) {
			fmt.Fprintf(&b, "data: %s\r\n\r\n", appendPayload(nil, e.mark, 0, seq, int64(e.now()), 0))
		}
		return b.String()
	}
	// Read until the server closes, with the head and the first events in
	// one write.
	u := rawServer(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"+events())
	})
	e = testEnv(t, u, 1)
	if s := runSubscriber(t, e, 0); s.unique != 5 || s.holes != 0 {
		t.Errorf("close-delimited body: %d unique, %d gaps; want 5, 0", s.unique, s.holes)
	}
	// Content-Length bounds the body: what follows it is not read.
	u = rawServer(t, func(c net.Conn) {
		body := events()
		fmt.Fprintf(c, "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nContent-Length: %d\n\n%sdata: after the body\n\n", len(body), body)
	})
	e = testEnv(t, u, 1)
	if s := runSubscriber(t, e, 0); s.unique != 5 || s.other != 0 {
		t.Errorf("Content-Length body: %d unique, %d other; want 5, 0", s.unique, s.other)
	}
}

func TestSubscriberRefusals(t *testing.T) {
	for _, c := range []struct{ head, want string }{
		{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "403 Forbidden"},
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", "not text/event-stream"},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"},
		{"SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", "unexpected EOF"},
	} {
		u := rawServer(t, func(conn net.Conn) { io.WriteString(conn, c.head) })
		s := runSubscriber(t, testEnv(t, u, 1), 0)
		if s.connected || s.connErr == nil || !strings.Contains(s.connErr.Error(), c.want) {
			t.Errorf("%q: connected %v, error %v; want an error with %q", c.head, s.connected, s.connErr, c.want)
		}
	}
	// A server that never answers: the connect timeout ends the wait.
	u := rawServer(t, func(net.Conn) { time.Sleep(2 * time.Second) })
	e := testEnv(t, u, 1)
	e.connectTimeout = 100 * time.Millisecond
	if s := runSubscriber(t, e, 0); s.connErr == nil || !strings.Contains(s.connErr.Error(), "timeout") {
		t.Errorf("silent server: %v, want a timeout", s.connErr)
	}
}

func TestSubscriberCloseWhileConnecting(t *testing.T) {
	// A subscriber closed before its connection is up closes it on arrival.
	u := rawServer(t, func(c net.Conn) { time.Sleep(time.Second) })
	e := testEnv(t, u, 1)
	s := &subscriber{id: 0, shard: &shard{latency: newHistogram()}}
	s.close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s.run(ctx, e, func() {}, nil)
	if s.connected || s.connErr != errStopped {
		t.Errorf("connected %v, error %v; want errStopped", s.connected, s.connErr)
	}
}
