package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// primingPage opens an EventSource on /events and records what it fires.
const primingPage = `<!doctype html>
<title>priming</title>
<script>
window.state = {opens: 0, errors: 0, messages: []};
const es = new EventSource("/events?topic=t");
es.onopen = () => { window.state.opens++; };
es.onerror = () => { window.state.errors++; };
es.onmessage = (e) => { window.state.messages.push({data: e.data, id: e.lastEventId}); };
</script>`

type primingState struct {
	Opens    int `json:"opens"`
	Errors   int `json:"errors"`
	Messages []struct {
		Data string `json:"data"`
		ID   string `json:"id"`
	} `json:"messages"`
}

// TestDefaultPrimingInChromium opens a stream of the hub's engine, with its
// default priming (the head as a lone id field), in Chromium's
// EventSource: no message event fires for it, and when the hub ends the
// stream, the browser reconnects with the primed id as Last-Event-ID and
// gets the next event once.
func TestDefaultPrimingInChromium(t *testing.T) {
	needChromium(t)
	mem := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { mem.Close() })
	type connection struct {
		lastEventID string
		sub         *hub.Subscriber
	}
	conns := make(chan connection, 10)
	h, err := hub.New(hub.Config{
		Store:  mem,
		Logger: slog.New(slog.DiscardHandler),
		Retry:  100 * time.Millisecond, // sent when the hub ends a stream
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		lastID := r.Header.Get("Last-Event-ID")
		h.Serve(w, r, hub.Subscription{Topics: r.URL.Query()["topic"], Cursor: hub.RequestCursor(r),
			OnConnect: func(s *hub.Subscriber) { conns <- connection{lastID, s} }})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, primingPage)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	publish := func(data string) string {
		t.Helper()
		id, err := h.Publish(context.Background(), hub.Message{Topics: []string{"t"}, Event: sse.Event{Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	head := publish("before the page")

	ctx := startBrowser(t)
	state, waitFor := pageWatcher[primingState](t, ctx, `JSON.stringify(window.state)`, nil)
	nextConnection := func() connection {
		t.Helper()
		select {
		case c := <-conns:
			return c
		case <-time.After(hangTimeout):
			t.Fatalf("the page did not connect; page state: %+v", state())
			return connection{}
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	first := nextConnection()
	if first.lastEventID != "" {
		t.Fatalf("first connection with Last-Event-ID %q", first.lastEventID)
	}
	waitFor("the stream to open", func(s primingState) bool { return s.Opens == 1 })
	// The priming went out with the response headers, before "open"; the
	// hub now ends the stream (after a retry field), which the browser
	// reads after the priming.
	first.sub.Close()
	second := nextConnection()
	if second.lastEventID != head {
		t.Fatalf("the browser reconnected with Last-Event-ID %q, want the primed %q", second.lastEventID, head)
	}
	waitFor("the stream to open again", func(s primingState) bool { return s.Opens == 2 })
	after := publish("after the reconnection")
	s := waitFor("the event", func(s primingState) bool { return len(s.Messages) > 0 })
	if len(s.Messages) != 1 || s.Messages[0].Data != "after the reconnection" || s.Messages[0].ID != after {
		t.Fatalf("messages %+v, want only %s: a priming fired a message event", s.Messages, after)
	}
}
