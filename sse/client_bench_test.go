package sse

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// benchBlock returns count events in wire form, with distinct ids, and the
// size of one.
func benchBlock(count int, data string) ([]byte, int) {
	var b bytes.Buffer
	for i := range count {
		fmt.Fprintf(&b, "id: %08d\nevent: token\ndata: %s\n\n", i, data)
	}
	return b.Bytes(), b.Len() / count
}

// BenchmarkClientThroughput measures one Stream reading one connection over
// loopback HTTP: the server writes b.N events as fast as it can.
func BenchmarkClientThroughput(b *testing.B) {
	for _, tc := range []struct {
		name  string
		data  string
		block int // events per server write
	}{
		{"small", `{"i":1,"t":"token-00001","x":1}`, 1000}, // ~30 bytes of data
		{"1MiB", strings.Repeat("0123456789abcdef", 1<<16), 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			block, size := benchBlock(tc.block, tc.data)
			var want atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for sent := int64(0); sent < want.Load(); sent += int64(tc.block) {
					if _, err := w.Write(block); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)

			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			want.Store(int64(b.N))
			n := 0
			for _, err := range Connect(context.Background(), req) {
				if err != nil {
					b.Fatal(err)
				}
				if n++; n == b.N {
					break
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkClientReconnect measures reconnect-to-first-event latency: every
// connection delivers one event and ends, and the client (retry 0)
// reconnects with Last-Event-ID; one op is one reconnection and its first
// event. "keepalive" reuses the TCP connection as HTTP/1.1 allows after a
// clean end; "newconn" dials anew each time, as after a broken connection.
func BenchmarkClientReconnect(b *testing.B) {
	for _, keepAlive := range []bool{true, false} {
		name := "keepalive"
		if !keepAlive {
			name = "newconn"
		}
		b.Run(name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !keepAlive {
					w.Header().Set("Connection", "close")
				}
				w.Header().Set("Content-Type", "text/event-stream")
				id := r.Header.Get("Last-Event-ID")
				fmt.Fprintf(w, "id: %s1\ndata: x\n\n", id[:min(len(id), 4)])
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for _, err := range Connect(context.Background(), req, WithRetry(0)) {
				if err != nil {
					b.Fatal(err)
				}
				if n++; n == b.N {
					break
				}
			}
		})
	}
}
