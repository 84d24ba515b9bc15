package sse_test

import (
	"context"
	"encoding/json"
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

// Connect streams an HTTP response, here the answer of an LLM API: the
// POST (and its prompt) is sent once, and the server ending the stream ends
// the loop. Had the connection broken mid-answer, the loop would end with
// ErrConnectionLost instead: the prompt is not sent again unless WithResend
// says so.
func ExampleConnect() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 10\n\n")
		for i, tok := range []string{"Hello", ",", " world"} {
			fmt.Fprintf(w, "id: %d\nevent: token\ndata: %s\n\n", i+1, tok)
		}
		io.WriteString(w, "event: done\ndata: {\"finish_reason\":\"stop\"}\n\n")
	}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/answers", strings.NewReader(`{"prompt":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer KEY")
	var answer strings.Builder
	for e, err := range sse.Connect(context.Background(), req, sse.WithTypes("token")) {
		switch {
		case errors.Is(err, sse.ErrConnectionLost):
			fmt.Printf("cut short after %q: %v\n", answer.String(), err)
			return
		case err != nil:
			fmt.Println("error:", err) // a 4xx, not an event stream, ctx done…
			return
		}
		answer.WriteString(e.Data)
	}
	fmt.Println(answer.String())
	// Output:
	// Hello, world
}

// WithResume resumes a stream with another request: here a tool call over
// the MCP streamable HTTP transport, where a POST carries the JSON-RPC
// request and opens its response stream, and a stream that ends or breaks
// before the response is resumed with a GET carrying Last-Event-ID. This
// server opens the stream with a priming id, sends a progress
// notification, and closes it, as a server may to make the client poll.
func ExampleWithResume() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") != "s1" {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch {
		case r.Method == http.MethodPost:
			io.WriteString(w, "id: 1\nretry: 10\n\n") // priming: an id, no event
			io.WriteString(w, `id: 2`+"\n"+`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`+"\n\n")
		case r.Header.Get("Last-Event-ID") == "2":
			io.WriteString(w, `id: 3`+"\n"+`data: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}`+"\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	endpoint := srv.URL + "/mcp"

	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", "s1")
	resume := func(lastEventID string) (*http.Request, error) {
		if lastEventID == "" {
			// No id yet: a GET would open another stream, not resume this one.
			return nil, fmt.Errorf("stream lost before any event id: %w", sse.ErrConnectionLost)
		}
		fmt.Println("resuming after", lastEventID)
		r, err := http.NewRequest(http.MethodGet, endpoint, nil)
		if err != nil {
			return nil, err
		}
		r.Header.Set("Mcp-Session-Id", "s1") // Last-Event-ID is added
		return r, nil
	}
	for e, err := range sse.Connect(context.Background(), req, sse.WithResume(resume)) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(e.Data)
		var msg struct {
			ID json.RawMessage `json:"id"` // only responses have one
		}
		if json.Unmarshal([]byte(e.Data), &msg) == nil && string(msg.ID) == "7" {
			break // the response to the call: the exchange is over
		}
	}
	// Output:
	// {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}
	// resuming after 2
	// {"jsonrpc":"2.0","id":7,"result":{"content":[]}}
}
