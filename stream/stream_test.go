package stream_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/internal/sharedlog"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/stream"
)

// instance is one hub on a store, behind a real HTTP server: /stream/{id}
// serves streams, /events?topic= the hub's topics.
type instance struct {
	t      *testing.T
	h      *hub.Hub
	srv    *httptest.Server
	client *http.Client
	h2     bool
}

func newInstance(t *testing.T, st store.Store, h2 bool) *instance {
	t.Helper()
	h, err := hub.New(hub.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", h)
	mux.HandleFunc("GET /stream/{id}", func(w http.ResponseWriter, r *http.Request) {
		stream.Serve(h, w, r, r.PathValue("id"))
	})
	srv, client := ssetest.Server(t, mux, h2)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ssetest.Hang)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &instance{t: t, h: h, srv: srv, client: client, h2: h2}
}

func (in *instance) get(path string, hdr http.Header) *ssetest.Client {
	in.t.Helper()
	return ssetest.Get(in.t, in.client, in.srv.URL+path, hdr, in.h2)
}

func (in *instance) publish(topic, data string) string {
	in.t.Helper()
	id, err := in.h.Publish(context.Background(), hub.Message{Topics: []string{topic}, Event: sse.Event{Data: data}})
	if err != nil {
		in.t.Fatal(err)
	}
	return id
}

func lastEventID(id string) http.Header { return http.Header{"Last-Event-Id": {id}} }

func TestCompletableStream(t *testing.T) {
	ssetest.Protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		in := newInstance(t, m, h2)
		ctx := context.Background()
		in.publish("noise", "x")
		s, err := stream.Open(ctx, in.h)
		if err != nil {
			t.Fatal(err)
		}
		var sent []string
		send := func(i int) {
			t.Helper()
			id, err := s.Send(ctx, sse.Event{Type: "token", Data: strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, id)
		}
		send(0)
		send(1)
		in.publish("noise", "y")

		// A fresh reader gets the stream from its start, then live.
		c := in.get("/stream/"+s.ID(), nil)
		if c.Resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", c.Resp.StatusCode)
		}
		c.Primed() // the head when the stream opened
		for i := range 2 {
			if ev := c.Next(); ev.Data != strconv.Itoa(i) || ev.Type != "token" {
				t.Fatalf("got %+v", ev)
			}
		}
		send(2)
		if ev := c.Next(); ev.Data != "2" {
			t.Fatalf("got %+v", ev)
		}
		c.Close() // the client drops mid-way

		send(3)
		send(4)
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		// Reconnecting: the rest, then the end of the response.
		c = in.get("/stream/"+s.ID(), lastEventID(sent[2]))
		if got := ssetest.Events(c.End()); got != "token:3 token:4" || c.Primed() != sent[2] {
			t.Fatalf("rest: %s", got)
		}
		// After the end: 204, from the last event or from any later cursor.
		for _, cursor := range []string{sent[4], in.publish("noise", "z")} {
			c = in.get("/stream/"+s.ID(), lastEventID(cursor))
			if c.Resp.StatusCode != http.StatusNoContent {
				t.Fatalf("after finish from %s: status %d", cursor, c.Resp.StatusCode)
			}
		}
		if _, err := s.Send(ctx, sse.Event{Data: "late"}); !errors.Is(err, stream.ErrFinished) {
			t.Fatalf("send after finish: %v", err)
		}
		if err := s.Finish(ctx); !errors.Is(err, stream.ErrFinished) {
			t.Fatalf("finish twice: %v", err)
		}
		// A fresh read of a finished stream replays it whole, then ends.
		c = in.get("/stream/"+s.ID(), nil)
		if got := ssetest.Events(c.End()); got != "token:0 token:1 token:2 token:3 token:4" {
			t.Fatalf("whole: %s", got)
		}
		c.Primed()
		// Unknown streams.
		for _, id := range []string{"nope", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef!"} {
			c = in.get("/stream/"+id, nil)
			if c.Resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: status %d", id, c.Resp.StatusCode)
			}
		}
		if _, err := stream.Subscription(c.Resp.Request, "nope"); !errors.Is(err, stream.ErrUnknown) {
			t.Fatalf("Subscription of an unknown id: %v", err)
		}
		// Topic subscribers never see stream events.
		n := in.get("/events?topic=noise", lastEventID(sent[0]))
		n.Primed()
		if ev := n.Next(); ev.Data != "y" {
			t.Fatalf("noise subscriber got %+v", ev)
		}
	})
}

// A reader live on the stream when it finishes gets the end of its
// response right away.
func TestStreamFinishLive(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	t.Cleanup(func() { m.Close() })
	in := newInstance(t, m, false)
	ctx := context.Background()
	s, err := stream.Open(ctx, in.h)
	if err != nil {
		t.Fatal(err)
	}
	c := in.get("/stream/"+s.ID(), nil)
	if _, err := s.Send(ctx, sse.Event{Data: "a"}); err != nil {
		t.Fatal(err)
	}
	if ev := c.Next(); ev.Data != "a" {
		t.Fatalf("got %+v", ev)
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if evs := c.End(); len(evs) != 0 {
		t.Fatalf("got %+v", evs)
	}
	c = in.get("/stream/"+s.ID(), lastEventID(c.Reader.LastEventID()))
	if c.Resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", c.Resp.StatusCode)
	}
}

// A stream opened on one hub is read, resumed and ended on another hub of
// the same log: the id is all a hub needs.
func TestStreamAcrossHubs(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			sa, sb := sharedlog.Open(t, kind)
			a, b := newInstance(t, sa, false), newInstance(t, sb, false)
			ctx := context.Background()
			a.publish("noise", "before")
			s, err := stream.Open(ctx, a.h)
			if err != nil {
				t.Fatal(err)
			}
			first, err := s.Send(ctx, sse.Event{Type: "token", Data: "one"})
			if err != nil {
				t.Fatal(err)
			}
			// B reads it from its start, live after that.
			c := b.get("/stream/"+s.ID(), nil)
			if ev := c.Next(); ev.ID != first || ev.Data != "one" {
				t.Fatalf("B got %+v", ev)
			}
			if _, err := s.Send(ctx, sse.Event{Type: "token", Data: "two"}); err != nil {
				t.Fatal(err)
			}
			if ev := c.Next(); ev.Data != "two" {
				t.Fatalf("B got %+v live", ev)
			}
			c.Close()
			if _, err := s.Send(ctx, sse.Event{Type: "token", Data: "three"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			// Resumed on B: the rest, then the end; then 204, there and on A.
			c = b.get("/stream/"+s.ID(), lastEventID(first))
			if got := ssetest.Events(c.End()); got != "token:two token:three" {
				t.Fatalf("resumed on B: %s", got)
			}
			for _, in := range []*instance{b, a} {
				c := in.get("/stream/"+s.ID(), lastEventID(c.Reader.LastEventID()))
				if c.Resp.StatusCode != http.StatusNoContent {
					t.Fatalf("after the end: status %d", c.Resp.StatusCode)
				}
			}
		})
	}
}

// Another hub on the log attaches to a stream by its id and ends it: a
// reader on a third position of the log (here the first hub) gets the
// attached producer's events and the end.
func TestAttach(t *testing.T) {
	for _, kind := range sharedlog.Kinds {
		t.Run(kind, func(t *testing.T) {
			sa, sb := sharedlog.Open(t, kind)
			a, b := newInstance(t, sa, false), newInstance(t, sb, false)
			ctx := context.Background()
			s, err := stream.Open(ctx, a.h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(ctx, sse.Event{Data: "from a"}); err != nil {
				t.Fatal(err)
			}
			c := a.get("/stream/"+s.ID(), nil)
			if ev := c.Next(); ev.Data != "from a" {
				t.Fatalf("got %+v", ev)
			}
			other, err := stream.Attach(b.h, s.ID())
			if err != nil || other.ID() != s.ID() {
				t.Fatalf("attach: %v", err)
			}
			if _, err := other.Send(ctx, sse.Event{Data: "from b"}); err != nil {
				t.Fatal(err)
			}
			if err := other.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ssetest.Events(c.End()); got != "message:from b" {
				t.Fatalf("after attach: %s", got)
			}
			if _, err := stream.Attach(b.h, "nope"); !errors.Is(err, stream.ErrUnknown) {
				t.Fatalf("attach to an unknown id: %v", err)
			}
		})
	}
}

// TestStreamOutlivesTraffic is a long answer read again after other
// traffic turned the log over: the store keeps the stream's channel apart
// from the log's retention (store.Keeper), so the reader still gets it
// whole, from its start, and then the end.
func TestStreamOutlivesTraffic(t *testing.T) {
	ssetest.Protocols(t, func(t *testing.T, h2 bool) {
		m := store.NewMemory(store.MemoryConfig{MaxEvents: 10})
		t.Cleanup(func() { m.Close() })
		in := newInstance(t, m, h2)
		ctx := context.Background()
		in.publish("noise", "before")
		s, err := stream.Open(ctx, in.h)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for i := range 5 {
			if _, err := s.Send(ctx, sse.Event{Type: "token", Data: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
			want += " token:" + strconv.Itoa(i)
			for range 5 {
				in.publish("noise", "unrelated")
			}
		}
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		c := in.get("/stream/"+s.ID(), nil)
		if got := ssetest.Events(c.End()); got != want[1:] {
			t.Fatalf("the stream read after the log turned over: %s, want %s", got, want[1:])
		}
		if c.Resp.Header.Get(hub.ResetHeader) != "" {
			t.Fatalf("reset %q for a stream kept whole", c.Resp.Header.Get(hub.ResetHeader))
		}
	})
}
