package mercure

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// BenchmarkPublishHandler is the CPU and allocations of one publish POST in
// the Mercure handler, without the network: token check, form, validation,
// append to a memory store. Topics: a bare name (sluice bench's) and an
// absolute URL.
//
//	go test -run NONE -bench PublishHandler -benchmem ./mercure/
func BenchmarkPublishHandler(b *testing.B) {
	for _, topic := range []string{"bench", "https://example.com/books/1"} {
		b.Run(strings.ReplaceAll(topic, "/", "_"), func(b *testing.B) {
			st := store.NewMemory(store.MemoryConfig{MaxEvents: 1000})
			defer st.Close()
			key := mustKey(b, pubSecret)
			eng, err := hub.New(hub.Config{Store: st, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Shutdown(context.Background())
			h, err := New(Config{Hub: eng, PublisherKey: &key, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			auth := "Bearer " + classicToken(b, key, []string{"*"}, nil)
			body := "topic=" + topic + "&data=sb%3A0123abcd%3A12%3A345678%3A987654321"
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, HubPath, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkPublishHTTP is one publish POST through a real net/http server on
// loopback, as a publisher sends them: one keep-alive HTTP/1.1 connection,
// the next request once the response is read. The client is a raw TCP
// connection writing a prepared request and reading the response in place,
// so the allocations per op are the server's (net/http's and the hub's);
// the time is both sides' and the loopback's.
//
//	go test -run NONE -bench PublishHTTP -benchmem ./mercure/
func BenchmarkPublishHTTP(b *testing.B) {
	st := store.NewMemory(store.MemoryConfig{MaxEvents: 1000})
	defer st.Close()
	key := mustKey(b, pubSecret)
	eng, err := hub.New(hub.Config{Store: st, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Shutdown(context.Background())
	h, err := New(Config{Hub: eng, PublisherKey: &key, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	body := "topic=bench&data=sb%3A0123abcd%3A12%3A345678%3A987654321"
	req := []byte("POST " + HubPath + " HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() +
		"\r\nAuthorization: Bearer " + classicToken(b, key, []string{"*"}, nil) +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := readResponse(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// readResponse reads one 200 response with a Content-Length body from conn.
func readResponse(conn net.Conn, buf []byte) error {
	n := 0
	for {
		m, err := conn.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
		head, rest, ok := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
		if !ok {
			continue
		}
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("response %q", buf[:n])
		}
		i := bytes.Index(head, []byte("Content-Length: "))
		if i < 0 {
			return fmt.Errorf("no Content-Length in %q", head)
		}
		line, _, _ := bytes.Cut(head[i+len("Content-Length: "):], []byte("\r\n"))
		size, err := strconv.Atoi(string(line))
		if err != nil {
			return err
		}
		if len(rest) == size {
			return nil
		}
	}
}
