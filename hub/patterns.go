package hub

import (
	"sync"

	"github.com/sluicehq/sluice/store"
)

// Pattern subscriptions (Subscription.Match) are matched off the shared
// path. The follower's dispatch loop serves every subscriber; if it ran the
// subscriptions' matchers itself, what one connection asks for (a thousand
// patterns, each as costly as the subscription code makes it) would delay
// every event for everyone. So it only hands each event to the pattern
// groups: the subscribers with the same Subscription.MatchKey (or one
// subscriber, without a key) form a group, and a goroutine of the group's
// own runs the group's matcher once per event and fills its members'
// queues, in log order. A slow matcher delays its own group only; a group
// that falls more than Config.QueueEvents (or QueueBytes) behind
// disconnects its members, which resume from their Last-Event-ID, like any
// slow subscriber. The goroutine exists only while the group has events to
// match.
//
// A pattern subscriber is served by its group only, its exact topics and
// private channels too, so that one goroutine fills its
// queue and the queue stays in log order.

// patGroup is the subscribers sharing one matcher.
type patGroup struct {
	h     *Hub
	key   string                     // in h.groups
	match func(topics []string) bool // the members' Subscription.Match
	slot  int                        // position in h.groupList

	mu      sync.Mutex
	members []*Subscriber            // position: Subscriber.memberSlot
	index   map[string][]*Subscriber // the members' exact topics (channels too)
	q       []groupItem              // events to match, in log order
	qBytes  int
	spare   []groupItem
	running bool // a goroutine is draining q
	failed  bool // fell behind: its members are closed, it takes no more events
	// authorizers counts the members with a Subscription.Authorize: the
	// others never see a private event, so without them the group does
	// not take one.
	authorizers int
	seq         uint64

	targets []*Subscriber // the goroutine's scratch space (run only)
}

// groupItem is an event handed to a group: the store event (its topics,
// for the matcher and the authorization) and the queue item to deliver.
type groupItem struct {
	ev       *store.Event
	it       item
	seq      uint64 // the hub's dispatch sequence number (Hub.seq)
	reserved bool
}

// groupKey returns the key of the group s belongs to.
func groupKey(s *Subscriber) string {
	if s.matchKey != "" {
		return "k" + s.matchKey
	}
	return "s" + s.idStr // no key: a group of its own
}

// join adds s to its group, creating the group. h.mu must be held.
func (h *Hub) join(s *Subscriber) {
	key := groupKey(s)
	g := h.groups[key]
	if g != nil && g.hasFailed() {
		h.unlist(g) // its members are on their way out
		g = nil
	}
	if g == nil {
		g = &patGroup{h: h, key: key, match: s.match, slot: len(h.groupList), index: make(map[string][]*Subscriber)}
		h.groups[key] = g
		h.groupList = append(h.groupList, g)
	}
	g.mu.Lock()
	s.group = g
	s.memberSlot = len(g.members)
	g.members = append(g.members, s)
	indexAdd(g.index, s)
	if s.authorize != nil {
		g.authorizers++
	}
	g.mu.Unlock()
}

// leave removes s from its group, and the group from the hub when it was
// the last member. h.mu must be held.
func (h *Hub) leave(s *Subscriber) {
	g := s.group
	g.mu.Lock()
	last := len(g.members) - 1
	if j := s.memberSlot; j != last {
		moved := g.members[last]
		g.members[j] = moved
		moved.memberSlot = j
	}
	g.members[last] = nil
	g.members = g.members[:last]
	indexRemove(g.index, s)
	if s.authorize != nil {
		g.authorizers--
	}
	empty := last == 0
	g.mu.Unlock()
	if !empty {
		return
	}
	if h.groups[g.key] == g {
		delete(h.groups, g.key)
	}
	h.unlist(g)
}

// unlist removes g from the groups the dispatcher hands events to. h.mu
// must be held.
func (h *Hub) unlist(g *patGroup) {
	if g.slot < 0 {
		return
	}
	end := len(h.groupList) - 1
	if g.slot != end {
		moved := h.groupList[end]
		h.groupList[g.slot] = moved
		moved.slot = g.slot
	}
	h.groupList[end] = nil
	h.groupList = h.groupList[:end]
	g.slot = -1
}

func (g *patGroup) hasFailed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

// push hands the group an event dispatched by the follower. It runs on the
// follower goroutine, in log order. An event on private channels is handed
// only to a group whose members are indexed on one of them.
func (g *patGroup) push(gi groupItem) {
	h := g.h
	g.mu.Lock()
	if g.failed || (gi.reserved && !indexHas(g.index, gi.ev.Topics)) || (!gi.reserved && gi.ev.Private && g.authorizers == 0) {
		g.mu.Unlock()
		return
	}
	n := gi.it.size()
	if len(g.q) > 0 && (len(g.q) >= h.cfg.QueueEvents || g.qBytes+n > h.cfg.QueueBytes) {
		// The matcher cannot keep up: its members are as far behind.
		// A new subscriber with the same key starts a new group.
		g.failed = true
		members := append([]*Subscriber(nil), g.members...)
		clear(g.q)
		g.q, g.qBytes = g.q[:0], 0
		g.mu.Unlock()
		for _, s := range members {
			s.close(ReasonSlow)
		}
		h.log.Info("hub: a pattern group fell behind the log; disconnecting its subscribers, they resume from their Last-Event-ID",
			"subscribers", len(members), "queued", h.cfg.QueueEvents)
		return
	}
	g.q = append(g.q, gi)
	g.qBytes += n
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start && h.spawn() {
		go g.run()
	}
}

// spawn counts a goroutine of the hub's in h.bg, unless Shutdown is
// waiting for them (it then reports false): push runs on the follower and
// on Notify's callers, so the count must not race with Shutdown's Wait.
func (h *Hub) spawn() bool {
	h.spawnMu.Lock()
	defer h.spawnMu.Unlock()
	if h.stopped {
		return false
	}
	h.bg.Add(1)
	return true
}

// run matches the queued events and fills the members' queues until the
// queue is empty.
func (g *patGroup) run() {
	defer g.h.bg.Done()
	for {
		g.mu.Lock()
		batch := g.q
		g.q, g.qBytes = g.spare[:0], 0
		if len(batch) == 0 {
			g.running = false
			g.spare = batch
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		for i := range batch {
			g.deliver(&batch[i])
		}
		clear(batch)
		g.mu.Lock()
		g.spare = batch[:0]
		g.mu.Unlock()
	}
}

// deliver runs the group's matcher on one event and queues it for the
// members it reaches: all of them when the matcher accepts its topics,
// else those indexed on one of its topics; then the authorization of each,
// as the dispatcher does.
func (g *patGroup) deliver(gi *groupItem) {
	if !gi.reserved && gi.ev.Private && !g.anyMaySee(gi) {
		return // no matching for what none of them may see
	}
	matched := !gi.reserved && g.match(gi.ev.Topics)
	g.mu.Lock()
	g.seq++
	targets := g.targets[:0]
	if matched {
		targets = append(targets, g.members...)
	} else {
		targets = indexCollect(targets, g.index, gi.ev.Topics, g.seq)
	}
	g.mu.Unlock()
	for _, s := range targets {
		if gi.seq <= s.startSeq {
			continue // joined after this event was dispatched
		}
		if !gi.reserved && !s.visible(gi.ev) {
			continue
		}
		s.enqueue(gi.it)
	}
	clear(targets)
	g.targets = targets[:0]
}

// anyMaySee reports whether a member may see a private event (whatever its
// topics): the authorization is asked first, so that subscribers without
// grants, anonymous ones for instance, do not make their group match every
// private event of the hub (Mercure's subscription events among them).
func (g *patGroup) anyMaySee(gi *groupItem) bool {
	g.mu.Lock()
	snap := append(g.targets[:0], g.members...)
	g.mu.Unlock()
	any := false
	for _, s := range snap {
		if gi.seq > s.startSeq && s.visible(gi.ev) {
			any = true
			break
		}
	}
	clear(snap)
	g.targets = snap[:0]
	return any
}
