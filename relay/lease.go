package relay

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/stream"
)

// The lease of a relay is a signal channel of the hub (store.SignalPrefix:
// private, read from the log, not kept), named after the relay's stream:
// the relay appends leaseRenew to it every LeaseInterval and leaseRelease
// when it has finished its stream.
const (
	leasePrefix  = store.SignalPrefix + "relay-lease:"
	leaseRenew   = "renew"
	leaseRelease = "release"
)

func leaseTopic(id string) string { return leasePrefix + id }

// startPrefix starts the private channel that holds a relay's first
// renewal besides its lease: a channel the stores keep (store.Keeper)
// apart from the log's retention, so that the relay is known to have
// started however much traffic has turned the log over since.
const startPrefix = hub.ReservedTopicPrefix + "relay-start:"

func startTopic(id string) string { return startPrefix + id }

// Serve serves the relay stream id to one reader, as stream.Serve does
// (from its start or the request's Last-Event-ID; the response ends at
// the stream's end; 204 when nothing is left; 404 for an id that is no
// stream), and watches the relay's lease while the reader waits, so that
// it gets EventLost, never a hang, when the instance relaying the
// upstream dies. See the package doc.
func (rl *Relayer) Serve(w http.ResponseWriter, r *http.Request, id string) {
	sub, err := rl.Subscription(r, id)
	if err != nil {
		http.Error(w, "unknown stream", http.StatusNotFound)
		return
	}
	rl.h.Serve(w, r, sub)
}

// Subscription returns the subscription Serve serves, to compose with
// hub.Hub.Serve: stream.Subscription, with OnConnect and OnDisconnect set
// to watch the relay's lease. To add callbacks of your own, wrap these
// (call them from yours): replacing them leaves the reader without the
// relay-lost guarantee.
func (rl *Relayer) Subscription(r *http.Request, id string) (hub.Subscription, error) {
	sub, err := stream.Subscription(r, id)
	if err != nil {
		return sub, err
	}
	sub.OnConnect = func(*hub.Subscriber) { rl.mon.add(id) }
	sub.OnDisconnect = func(_ *hub.Subscriber, reason hub.DisconnectReason) {
		rl.mon.leave(id, reason == hub.ReasonCompleted)
	}
	return sub, nil
}

// monitor watches the leases of the relays this instance serves readers
// of. One goroutine reads the log's new lease events every LeaseInterval,
// while there is a lease to watch.
type monitor struct {
	rl *Relayer

	mu      sync.Mutex
	watches map[string]*watch // by stream id
	running bool
	passes  int // completed passes, for tests
	lost    int // relays declared lost, for tests
}

// watch is one relay's lease as this instance sees it.
type watch struct {
	readers int       // readers connected here
	seen    time.Time // the last renewal seen, or when the watch began
	renewed bool      // a renewal was seen: the relay exists
}

// maxLeaseScan bounds the events read after a stream's start to find its
// relay's first renewal, which Start appends right after opening it.
const maxLeaseScan = 4096

// add counts a reader of the relay id, and starts watching its lease.
func (m *monitor) add(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watches == nil {
		m.watches = make(map[string]*watch)
	}
	w := m.watches[id]
	if w == nil {
		w = &watch{seen: m.rl.opts.Clock.Now()}
		m.watches[id] = w
	}
	w.readers++
	if !m.running {
		m.running = true
		// Armed here, so that once a reader is seen watched, time that
		// passes counts (a test moves a fake clock on at once).
		go m.run(m.rl.opts.Clock.NewTimer(m.rl.opts.LeaseInterval))
	}
}

// leave counts a reader gone. A reader that reached the stream's end ends
// the watch; otherwise the watch stays until its lease lapses, so that a
// client reconnecting often does not restart its wait.
func (m *monitor) leave(id string, completed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.watches[id]
	if w == nil {
		return
	}
	w.readers--
	if completed {
		delete(m.watches, id)
	}
}

// run reads the lease events every LeaseInterval, on t, until nothing is
// left to watch or the Relayer closes.
func (m *monitor) run(t hub.Timer) {
	o := &m.rl.opts
	ctx := m.rl.ctx
	st := m.rl.h.Config().Store
	cursor, err := st.Head(ctx)
	ok := err == nil
	defer t.Stop()
	for {
		select {
		case <-t.C():
		case <-ctx.Done():
			m.mu.Lock()
			m.running = false
			m.mu.Unlock()
			return
		}
		cursor, ok = m.pass(ctx, st, cursor, ok)
		m.mu.Lock()
		m.passes++
		if len(m.watches) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		// Re-armed before the pass is seen done (passes, under m.mu), so
		// that a test which saw it can move a fake clock on.
		t.Reset(o.LeaseInterval)
		m.mu.Unlock()
	}
}

// pass reads the lease events after cursor, and declares lost the relays
// with readers and no renewal for LeaseTTL. It returns the next cursor.
// When it cannot tell (the store fails, the cursor expired), it counts
// every lease as renewed: it never declares a relay lost without having
// read the log.
func (m *monitor) pass(ctx context.Context, st store.Store, cursor string, ok bool) (string, bool) {
	o := &m.rl.opts
	log := o.Logger
	now := o.Clock.Now()
	head, err := st.Head(ctx)
	if err != nil || !ok {
		if err != nil {
			log.Warn("relay: reading the leases failed", "err", err)
		}
		m.renewAll(now)
		return head, err == nil
	}
	type seen struct {
		id      string
		release bool
	}
	var evs []seen
	for ev, err := range st.History(ctx, cursor, isLease) {
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, store.ErrExpired):
				// Renewals were evicted unread: a relay that died
				// meanwhile cannot be told from a live one.
				warnTurnover(o, "dead relays go undetected")
			case !errors.Is(err, store.ErrUnknownID):
				log.Warn("relay: reading the leases failed", "err", err)
			}
			m.renewAll(now)
			return head, true
		}
		for _, tp := range ev.Topics {
			if id, isL := strings.CutPrefix(tp, leasePrefix); isL {
				evs = append(evs, seen{id: id, release: ev.Type == leaseRelease})
			}
		}
	}
	var lost []string
	m.mu.Lock()
	for _, e := range evs {
		if w := m.watches[e.id]; w != nil {
			if e.release {
				delete(m.watches, e.id)
			} else {
				w.seen, w.renewed = now, true
			}
		}
	}
	var unseen []string // lapsed without a renewal seen: maybe no relay
	for id, w := range m.watches {
		if now.Sub(w.seen) < o.LeaseTTL {
			continue
		}
		switch {
		case w.readers == 0:
		case w.renewed:
			lost = append(lost, id)
		default:
			unseen = append(unseen, id)
		}
		delete(m.watches, id)
	}
	m.mu.Unlock()
	for _, id := range unseen {
		if m.started(ctx, st, id) {
			lost = append(lost, id)
		}
	}
	for _, id := range lost {
		m.declareLost(ctx, id)
	}
	m.mu.Lock()
	m.lost += len(lost)
	m.mu.Unlock()
	return head, true
}

// startID is the custom id of a relay's first renewal: stores index
// custom ids, so whether a relay was started is one lookup.
func startID(id string) string { return "relay-start:" + id }

// started reports whether the relay id was started: its first renewal is
// kept or in the log. An id that no Start returned (made up by a client)
// is not, and is never declared lost: that would append to the log for
// anyone who asks. With a store.Keeper (every store of this module) the
// renewal is read where it is kept, on its own channel, past the log's
// retention; when that finds nothing (keeping turned off, or the renewal
// kept no longer), with a store.Positioner, by one lookup of its custom id
// in the log; without either, among the first maxLeaseScan events after
// the stream's start.
func (m *monitor) started(ctx context.Context, st store.Store, id string) bool {
	if k, ok := st.(store.Keeper); ok {
		for _, err := range k.Kept(ctx, startTopic(id), "") {
			if err == nil {
				return true
			}
			break
		}
	}
	if p, ok := st.(store.Positioner); ok {
		_, found, err := p.Lookup(ctx, startID(id))
		return err == nil && found
	}
	s, err := stream.Attach(m.rl.h, id)
	if err != nil {
		return false
	}
	lease := leaseTopic(id)
	n := 0
	for ev, err := range st.History(ctx, s.Start(), nil) {
		if err != nil || n >= maxLeaseScan {
			return false
		}
		n++
		if slices.Contains(ev.Topics, lease) {
			return true
		}
	}
	return false
}

// warnTurnover logs that the log evicted signals (lease renewals, cancel
// requests) before this instance read them, and what is lost: the log
// holds less than one LeaseInterval of traffic.
func warnTurnover(o *Options, lost string) {
	o.Logger.Warn("relay: the log turned over within one lease interval, before its signals were read: "+lost+" while this lasts; raise the log's retention or shorten LeaseInterval",
		"lease_interval", o.LeaseInterval)
}

// renewAll counts every lease as renewed at now.
func (m *monitor) renewAll(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.watches {
		w.seen = now
	}
}

// declareLost ends the relay id, whose lease lapsed: EventLost, then the
// finish. Another instance may do the same at the same time: readers end
// at the first finish.
func (m *monitor) declareLost(ctx context.Context, id string) {
	log := m.rl.opts.Logger.With("relay", id)
	s, err := stream.Attach(m.rl.h, id)
	if err != nil {
		return // Serve checked the id
	}
	log.Warn("relay: no lease renewal; the instance relaying it is gone, ending it with relay-lost", "ttl", m.rl.opts.LeaseTTL)
	if _, err := s.Send(ctx, sse.Event{Type: EventLost, Data: `{"reason":"lost"}`}); err != nil {
		log.Warn("relay: appending relay-lost failed", "err", err)
	}
	if err := s.Finish(ctx); err != nil {
		log.Warn("relay: finishing a lost relay failed", "err", err)
	}
}

// isLease selects the lease events.
func isLease(e *store.Event) bool {
	for _, t := range e.Topics {
		if strings.HasPrefix(t, leasePrefix) {
			return true
		}
	}
	return false
}
