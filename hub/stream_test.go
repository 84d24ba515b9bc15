package hub

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/sse"
)

func TestCompletableStream(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnv(t, Config{}, h2)
		ctx := context.Background()
		e.publish("noise", "x")
		s, err := e.h.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var sent []string
		send := func(i int) {
			id, err := s.Send(ctx, sse.Event{Type: "token", Data: strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, id)
		}
		send(0)
		send(1)
		e.publish("noise", "y")

		// A fresh reader gets the stream from its start, then live.
		c := e.get("/stream/"+s.ID(), nil)
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", c.resp.StatusCode)
		}
		c.primed() // the head when the stream opened
		for i := range 2 {
			if ev := c.next(); ev.Data != strconv.Itoa(i) || ev.Type != "token" {
				t.Fatalf("got %+v", ev)
			}
		}
		send(2)
		if ev := c.next(); ev.Data != "2" {
			t.Fatalf("got %+v", ev)
		}
		c.close() // the client drops mid-way

		send(3)
		send(4)
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		// Reconnecting: the rest, then the end of the response.
		c = e.get("/stream/"+s.ID(), http.Header{"Last-Event-Id": {sent[2]}})
		if got := ids(c.end()); got != "token:3 token:4" || c.primed() != sent[2] {
			t.Fatalf("rest: %s", got)
		}
		// After the end: 204, from the last event or from any later cursor.
		for _, cursor := range []string{sent[4], e.publish("noise", "z")} {
			c = e.get("/stream/"+s.ID(), http.Header{"Last-Event-Id": {cursor}})
			if c.resp.StatusCode != http.StatusNoContent {
				t.Fatalf("after finish from %s: status %d", cursor, c.resp.StatusCode)
			}
		}
		if _, err := s.Send(ctx, sse.Event{Data: "late"}); !errors.Is(err, ErrStreamFinished) {
			t.Fatalf("send after finish: %v", err)
		}
		if err := s.Finish(ctx); !errors.Is(err, ErrStreamFinished) {
			t.Fatalf("finish twice: %v", err)
		}
		// A fresh read of a finished stream replays it whole, then ends.
		c = e.get("/stream/"+s.ID(), nil)
		if got := ids(c.end()); got != "token:0 token:1 token:2 token:3 token:4" {
			t.Fatalf("whole: %s", got)
		}
		c.primed()
		// Unknown streams.
		for _, id := range []string{"nope", "0123456789abcdef0123456789abcdef"} {
			c = e.get("/stream/"+id, nil)
			if c.resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: status %d", id, c.resp.StatusCode)
			}
		}
		// Topic subscribers never see stream events.
		n := e.subscribe(sent[0], "noise")
		n.primed()
		if ev := n.next(); ev.Data != "y" {
			t.Fatalf("noise subscriber got %+v", ev)
		}
	})
}

// A reader live on the stream when it finishes gets the end of its
// response right away.
func TestStreamFinishLive(t *testing.T) {
	e := newEnv(t, Config{}, false)
	ctx := context.Background()
	s, err := e.h.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := e.get("/stream/"+s.ID(), nil)
	s.Send(ctx, sse.Event{Data: "a"})
	if ev := c.next(); ev.Data != "a" {
		t.Fatalf("got %+v", ev)
	}
	s.Finish(ctx)
	if evs := c.end(); len(evs) != 0 {
		t.Fatalf("got %+v", evs)
	}
	c = e.get("/stream/"+s.ID(), http.Header{"Last-Event-Id": {c.reader.LastEventID()}})
	if c.resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", c.resp.StatusCode)
	}
}
