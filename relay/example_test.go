package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// A resumable LLM answer: POST /answers relays the question to an
// OpenAI-compatible API and streams the answer; the answer goes on when
// the client drops, and GET /answers/{id} with Last-Event-ID resumes it,
// on this instance or any other on the same log, without asking the
// upstream again.
func Example() {
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range strings.Fields("the log is the bus") {
			fmt.Fprintf(w, "data: %s\n\n", tok)
		}
	}))
	defer llm.Close()
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, _ := hub.New(hub.Config{Store: st})
	defer h.Shutdown(context.Background())
	rl, _ := relay.New(h, nil)
	defer rl.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("POST /answers", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		up, _ := http.NewRequest(http.MethodPost, llm.URL+"/v1/chat/completions", bytes.NewReader(body))
		up.Header.Set("Authorization", "Bearer sk-…") // the server's key, never the client's
		rel, err := rl.Start(context.WithoutCancel(r.Context()), up)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Answer-Id", rel.ID())
		rl.Serve(w, r, rel.ID())
	})
	mux.HandleFunc("GET /answers/{id}", func(w http.ResponseWriter, r *http.Request) {
		rl.Serve(w, r, r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/answers", "application/json", strings.NewReader(`{"prompt":"hi"}`))
	if err != nil {
		log.Fatal(err)
	}
	id := resp.Header.Get("Answer-Id")
	resp.Body.Close() // the client drops before reading anything

	// It comes back, later: the whole answer is there.
	resp, err = http.Get(srv.URL + "/answers/" + id)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	for ev, err := range sse.Read(resp.Body) {
		if err != nil {
			break // io.EOF: the answer is complete
		}
		fmt.Print(ev.Data, " ")
	}
	fmt.Println()
	// Output:
	// the log is the bus
}
