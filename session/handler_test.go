package session_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/internal/ssetest"
	"github.com/sluicehq/sluice/session"
	"github.com/sluicehq/sluice/sse"
)

// A per-connection handler sends to its connection through the log: what
// the client had not read when it dropped comes with its next connection,
// whose handler knows where it resumed from. The handler's context ends
// with the connection; Comment and Close reach the connection only.
func TestHandle(t *testing.T) {
	ssetest.Protocols(t, func(t *testing.T, h2 bool) {
		e := newEnv(t, nil, h2, nil)
		type conn struct {
			c    *session.Conn
			tick chan string   // what to send next
			sent chan struct{} // a tick was appended
			done chan struct{}
		}
		conns := make(chan *conn, 2)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /ticks", func(w http.ResponseWriter, r *http.Request) {
			sub := hub.Subscription{Subject: "alice", Cursor: hub.RequestCursor(r)}
			e.m.Handle(w, r, sub, func(ctx context.Context, c *session.Conn) {
				cn := &conn{c: c, tick: make(chan string), sent: make(chan struct{}, 3), done: make(chan struct{})}
				conns <- cn
				defer close(cn.done)
				for {
					select {
					case <-ctx.Done():
						return
					case data := <-cn.tick:
						if _, err := c.Send(ctx, sse.Event{Type: "tick", Data: data}); err != nil {
							t.Error(err)
						}
						cn.sent <- struct{}{}
					}
				}
			})
		})
		srv, client := ssetest.Server(t, mux, h2)

		first := ssetest.Get(t, client, srv.URL+"/ticks", nil, h2)
		id := first.Resp.Header.Get(session.DefaultHeader)
		a := <-conns
		if a.c.Session() != id || a.c.LastEventID() != "" {
			t.Fatalf("first connection: session %q (header %q), cursor %q", a.c.Session(), id, a.c.LastEventID())
		}
		a.tick <- "1"
		one := first.Next()
		if ev := one; ev.Data != "1" {
			t.Fatalf("got %+v", ev)
		}
		a.c.Comment("only here")
		if got := <-first.Comments; got != "only here" {
			t.Fatalf("comment %q", got)
		}
		a.tick <- "2" // sent, and perhaps not read: the client drops
		<-a.sent      // (the drop must not cancel the send itself)
		<-a.sent
		first.Close()
		<-a.done // the handler's context ended with the connection

		again := ssetest.Get(t, client, srv.URL+"/ticks", http.Header{session.DefaultHeader: {id}, "Last-Event-Id": {one.ID}}, h2)
		b := <-conns
		if b.c.LastEventID() != one.ID {
			t.Fatalf("second connection resumed from %q, want %q", b.c.LastEventID(), one.ID)
		}
		if ev := again.Next(); ev.Data != "2" {
			t.Fatalf("the resumed connection got %+v, want the tick it missed", ev)
		}
		b.tick <- "3"
		if ev := again.Next(); ev.Data != "3" {
			t.Fatalf("got %+v", ev)
		}
		b.c.Close()
		again.End()
		if r, ok := again.Reader.Retry(); !ok || r <= 0 {
			t.Fatalf("retry %v %v", r, ok)
		}
		<-b.done
		if info, _ := e.m.Lookup(id); info.Reconnections != 1 {
			t.Fatalf("session %+v", info)
		}
	})
}
