package session_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/session"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Two hub instances on one log (here one Memory store; in production
// redisstore.Open or natsstore.Open on each instance) and one session key:
// a session created on A continues on B, with what was sent while it was
// away.
func Example() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	key := []byte("the same secret on every instance")
	serve := func() (*session.Manager, *httptest.Server) {
		h, _ := hub.New(hub.Config{Store: st})
		m, _ := session.New(h, &session.Config{Key: key})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.Serve(w, r, hub.Subscription{Subject: r.Header.Get("X-User"), Cursor: hub.RequestCursor(r)})
		}))
		return m, srv
	}
	a, srvA := serve()
	b, srvB := serve()
	defer srvA.Close()
	defer srvB.Close()
	ctx := context.Background()

	req, _ := http.NewRequest(http.MethodGet, srvA.URL, nil)
	req.Header.Set("X-User", "alice")
	resp, err := http.DefaultClient.Do(req) // alice connects to A...
	if err != nil {
		log.Fatal(err)
	}
	id := resp.Header.Get(session.DefaultHeader)
	first, _ := a.Send(ctx, []string{id}, sse.Event{Data: "hello"})
	r := sse.NewReader(resp.Body)
	ev, _ := r.Next()
	resp.Body.Close() // ...and drops.
	fmt.Println("on A:", ev.Data)

	b.Send(ctx, []string{id}, sse.Event{Data: "while you were away"})

	req, _ = http.NewRequest(http.MethodGet, srvB.URL, nil) // she comes back to B
	req.Header.Set("X-User", "alice")
	req.Header.Set(session.DefaultHeader, id)
	req.Header.Set("Last-Event-ID", first) // what EventSource sends by itself
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	ev, _ = sse.NewReader(resp.Body).Next()
	fmt.Println("on B:", ev.Data, resp.Header.Get(session.DefaultHeader) == id)
	// Output:
	// on A: hello
	// on B: while you were away true
}

// A per-connection handler, celeris-style: a ticker for each connection.
// Its sends go through the log, so a client that drops and comes back
// with its Last-Event-ID gets the ticks it missed.
func ExampleManager_Handle() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	h, _ := hub.New(hub.Config{Store: st})
	defer h.Shutdown(context.Background())
	m, _ := session.New(h, nil)

	ticks := func(w http.ResponseWriter, r *http.Request) {
		m.Handle(w, r, hub.Subscription{Cursor: hub.RequestCursor(r)}, func(ctx context.Context, c *session.Conn) {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for n := 1; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Send(ctx, sse.Event{Type: "tick", Data: strconv.Itoa(n)})
				}
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(ticks))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	for range 3 {
		ev, _ := r.Next()
		fmt.Println(ev.Type, ev.Data)
	}
	// Output:
	// tick 1
	// tick 2
	// tick 3
}
