package stream_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/stream"
)

// A completable stream: a POST starts the work and streams its result; a
// GET with the stream id resumes it after a dropped connection (with
// Last-Event-ID) and gets 204 once the stream is finished and read.
func Example() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, _ := hub.New(hub.Config{Store: st})
	defer h.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("POST /answers", func(w http.ResponseWriter, r *http.Request) {
		s, err := stream.Open(r.Context(), h)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		go func() { // the work outlives this request: the client may drop
			ctx := context.Background()
			for _, tok := range strings.Fields("the log is the bus") {
				s.Send(ctx, sse.Event{Type: "token", Data: tok})
			}
			s.Finish(ctx)
		}()
		w.Header().Set("Answer-Id", s.ID())
		stream.Serve(h, w, r, s.ID())
	})
	mux.HandleFunc("GET /answers/{id}", func(w http.ResponseWriter, r *http.Request) {
		stream.Serve(h, w, r, r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/answers", "text/plain", strings.NewReader("question"))
	if err != nil {
		log.Fatal(err)
	}
	id := resp.Header.Get("Answer-Id")
	r := sse.NewReader(resp.Body)
	var words []string
	for {
		ev, err := r.Next()
		if err != nil {
			break // io.EOF: the stream is finished
		}
		if ev.Type == "token" {
			words = append(words, ev.Data)
		}
	}
	resp.Body.Close()
	fmt.Println(strings.Join(words, " "))

	// Resuming after the end: nothing left.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/answers/"+id, nil)
	req.Header.Set("Last-Event-ID", r.LastEventID())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// the log is the bus
	// 204
}
