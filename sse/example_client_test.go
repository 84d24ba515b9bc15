package sse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluicehq/sluice/sse"
)

// Stream works over any transport: the ConnectFunc opens a fresh stream,
// resuming after lastEventID.
func ExampleStream() {
	history := []string{"id: 1\ndata: one\n\n", "id: 2\ndata: two\n\n", "id: 3\ndata: three\n\n"}
	connect := func(ctx context.Context, lastEventID string) (io.ReadCloser, error) {
		fmt.Printf("connect after %q\n", lastEventID)
		n := 0
		fmt.Sscan(lastEventID, &n)
		// This server delivers one event per connection, then ends the stream.
		return io.NopCloser(strings.NewReader(history[n])), nil
	}
	for e, err := range sse.Stream(context.Background(), connect, sse.WithRetry(0)) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(e.ID, e.Data)
		if e.ID == "3" {
			break
		}
	}
	// Output:
	// connect after ""
	// 1 one
	// connect after "1"
	// 2 two
	// connect after "2"
	// 3 three
}

// Connect streams an HTTP response, here the POST stream of an LLM-style
// API. The server ends a finished answer with 204 No Content when the
// client reconnects, which ends the iteration without an error.
func ExampleConnect() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") == "done" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: token\ndata: Hello\n\nevent: token\ndata: world\n\nid: done\nevent: end\ndata:\n\n")
	}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"prompt":"hi"}`))
	req.Header.Set("Authorization", "Bearer KEY")
	for e, err := range sse.Connect(context.Background(), req, sse.WithTypes("token"), sse.WithRetry(0)) {
		var reset *sse.ResetError
		switch {
		case errors.As(err, &reset):
			fmt.Println("history lost; resynchronising")
			continue // the iteration goes on with live events
		case err != nil:
			fmt.Println("error:", err)
			return
		}
		fmt.Println(e.Data)
	}
	fmt.Println("finished")
	// Output:
	// Hello
	// world
	// finished
}
