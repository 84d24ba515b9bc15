package session

import (
	"context"
	"net/http"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
)

// Handler is code that runs for the life of one connection of a session
// (Manager.Handle): ctx ends when the connection does.
type Handler func(ctx context.Context, c *Conn)

// Conn is one connection of a session, as its Handler sees it. Its methods
// are safe for concurrent use.
type Conn struct {
	m      *Manager
	id     string
	s      *hub.Subscriber
	cursor string
}

// Session returns the connection's session id.
func (c *Conn) Session() string { return c.id }

// LastEventID returns the cursor the connection resumed from: the
// request's Last-Event-ID, or where the session's last connection stopped;
// "" for a connection that started from now.
func (c *Conn) LastEventID() string { return c.cursor }

// Subscriber returns the hub's subscriber of the connection.
func (c *Conn) Subscriber() *hub.Subscriber { return c.s }

// Send sends e to the connection's session through the log, and returns
// its id: if the client drops before it arrives, its next connection, on
// this or (with Config.Key) another instance, gets it.
func (c *Conn) Send(ctx context.Context, e sse.Event) (string, error) {
	return c.m.Send(ctx, []string{c.id}, e)
}

// Comment sends a comment line to this connection only (not in the log).
func (c *Conn) Comment(text string) { c.s.Comment(text) }

// Close ends the connection with a "retry:" (hub.Config.Retry): the client
// reconnects, to the same session, after that long.
func (c *Conn) Close() { c.s.Close() }

// Handle serves sub with a session, as Serve does, and runs handler on a
// goroutine of its own for the life of the connection: from when the
// client is subscribed (a Send is never missed) until it goes away or the
// hub ends the response (handler returning does not end it). Handle does
// not wait for handler to return.
func (m *Manager) Handle(w http.ResponseWriter, r *http.Request, sub hub.Subscription, handler Handler) {
	m.serve(w, r, sub, handler)
}

// start runs handler for the connection s of session id, resumed from
// cursor, until stop is called.
func (m *Manager) start(r *http.Request, id, cursor string, s *hub.Subscriber, handler Handler) (stop context.CancelFunc) {
	// The request's context ends when net/http's handler returns, which on
	// HTTP/1.1 is before the stream does: keep its values only.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	go handler(ctx, &Conn{m: m, id: id, s: s, cursor: cursor})
	return cancel
}
