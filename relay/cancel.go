package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/stream"
)

// Cancelling from any instance: the user who pressed "stop" may be
// connected to another instance than the one relaying the answer.
// Relayer.Cancel cancels a relay of its own at once, and otherwise appends
// a cancel request to a signal channel of the relay. An instance with
// relays in flight reads the log's new cancel requests once per
// LeaseInterval, on the renewal tick of one of its relays (one History
// read for all of them, no goroutine or timer of its own), and cancels the
// relays they name.

// cancelPrefix starts the signal channel (store.SignalPrefix: private,
// read from the log, not kept) of a relay's cancel requests.
const cancelPrefix = store.SignalPrefix + "relay-cancel:"

func cancelTopic(id string) string { return cancelPrefix + id }

// Cancel ends the relay id with EventCancelled, wherever it runs: on this
// Relayer at once (as Relay.Cancel), on another instance sharing the log
// within its LeaseInterval. An id that is no stream is ErrUnknown of
// package stream; a relay that has ended already is left as it is.
func (rl *Relayer) Cancel(ctx context.Context, id string) error {
	if _, err := stream.Attach(rl.h, id); err != nil {
		return fmt.Errorf("relay: cancel: %w", err)
	}
	if r := rl.local(id); r != nil {
		r.Cancel()
		return nil
	}
	if _, err := rl.h.Publish(ctx, hub.Message{Topics: []string{cancelTopic(id)}, Event: sse.Event{Type: "cancel"}}); err != nil {
		return fmt.Errorf("relay: cancel: %w", err)
	}
	return nil
}

// registry is the relays in flight on a Relayer, by id, and where the
// reading of cancel requests is.
type registry struct {
	mu       sync.Mutex
	relays   map[string]*Relay
	cursor   string    // the cancel requests after it are not read yet
	last     time.Time // the last read
	checking bool      // a read is under way
}

// local returns the relay id if it is in flight here.
func (rl *Relayer) local(id string) *Relay {
	rl.reg.mu.Lock()
	defer rl.reg.mu.Unlock()
	return rl.reg.relays[id]
}

// track records r in flight; start is a cursor before any cancel request
// for it (its stream's start).
func (rl *Relayer) track(r *Relay, start string) {
	g := &rl.reg
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.relays) == 0 {
		g.relays = make(map[string]*Relay)
		g.cursor = start
	}
	g.relays[r.ID()] = r
}

// untrack forgets r, once it has ended.
func (rl *Relayer) untrack(r *Relay) {
	rl.reg.mu.Lock()
	delete(rl.reg.relays, r.ID())
	rl.reg.mu.Unlock()
}

// checkCancels reads the cancel requests appended since the last read, at
// most once per half LeaseInterval whatever the number of relays calling
// it, and cancels the relays of this Relayer they name.
func (rl *Relayer) checkCancels(ctx context.Context) {
	g, o := &rl.reg, &rl.opts
	now := o.Clock.Now()
	g.mu.Lock()
	if g.checking || now.Sub(g.last) < o.LeaseInterval/2 {
		g.mu.Unlock()
		return
	}
	g.checking, g.last = true, now
	cursor := g.cursor
	g.mu.Unlock()

	st := rl.h.Config().Store
	head, err := st.Head(ctx)
	var ids []string
	if err == nil {
		for ev, herr := range st.History(ctx, cursor, isCancel) {
			if herr != nil {
				// An expired cursor: the requests in between are lost;
				// go on from the head.
				switch {
				case errors.Is(herr, store.ErrExpired):
					warnTurnover(o, "cancel requests from other instances are lost")
				case !errors.Is(herr, store.ErrUnknownID):
					err = herr
				}
				break
			}
			for _, tp := range ev.Topics {
				if id, ok := strings.CutPrefix(tp, cancelPrefix); ok {
					ids = append(ids, id)
				}
			}
		}
	}
	if err != nil {
		o.Logger.Warn("relay: reading cancel requests failed", "err", err)
	}
	g.mu.Lock()
	g.checking = false
	if err == nil {
		g.cursor = head
	}
	var cancel []*Relay
	for _, id := range ids {
		if r := g.relays[id]; r != nil {
			cancel = append(cancel, r)
		}
	}
	g.mu.Unlock()
	for _, r := range cancel {
		r.Cancel()
	}
}

// isCancel selects the cancel requests.
func isCancel(e *store.Event) bool {
	for _, t := range e.Topics {
		if strings.HasPrefix(t, cancelPrefix) {
			return true
		}
	}
	return false
}
