package hub_test

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
)

// Embedding the hub in an existing net/http application: a store, a hub,
// one route for subscribers, Publish wherever events happen.
func Example() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, err := hub.New(hub.Config{Store: st}) // subscribers pick topics with ?topic=
	if err != nil {
		log.Fatal(err)
	}
	defer h.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.Handle("GET /events", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/events?topic=news")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	// The subscriber is registered before the headers are sent: nothing
	// published from now on is missed.
	h.Publish(context.Background(), hub.Message{Topics: []string{"news"}, Event: sse.Event{Type: "headline", Data: "sluice 1.0"}})

	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Header.Get("Content-Type"), ev.Type, ev.Data)
	// Output: text/event-stream headline sluice 1.0
}

// A completable stream: a POST starts the work and streams its result; a
// GET with the stream id resumes it after a dropped connection (with
// Last-Event-ID) and gets 204 once the stream is finished and read.
func ExampleHub_OpenStream() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, _ := hub.New(hub.Config{Store: st})
	defer h.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("POST /answers", func(w http.ResponseWriter, r *http.Request) {
		s, err := h.OpenStream(r.Context())
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
		h.ServeStream(w, r, s.ID())
	})
	mux.HandleFunc("GET /answers/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.ServeStream(w, r, r.PathValue("id"))
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

// Serve is the primitive a handler composes: the handler authenticates the
// request and builds the subscription (its topics, what private events it
// may see, callbacks on connect and disconnect), and the hub resumes and
// follows it.
func ExampleHub_Serve() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, err := hub.New(hub.Config{Store: st})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Shutdown(context.Background())

	connected := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{user}/feed", func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user") // authenticate it in a real application
		h.Serve(w, r, hub.Subscription{
			Topics: []string{"users/" + user, "announcements"},
			Cursor: hub.RequestCursor(r), // the client's Last-Event-ID
			// Private events reach only their user.
			Authorize: func(e *store.Event) bool { return !e.Private || strings.HasPrefix(e.Data, user+":") },
			Subject:   user,
			OnConnect: func(*hub.Subscriber) { connected <- user },
		})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/users/ada/feed")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println("connected:", <-connected)
	h.Publish(context.Background(), hub.Message{Topics: []string{"announcements"}, Event: sse.Event{Data: "bob: secret"}, Private: true})
	h.Publish(context.Background(), hub.Message{Topics: []string{"users/ada"}, Event: sse.Event{Data: "ada: hello"}, Private: true})
	for ev, err := range sse.Read(resp.Body) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Data)
		break
	}
	// Output:
	// connected: ada
	// ada: hello
}
