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
