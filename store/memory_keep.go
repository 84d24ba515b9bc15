package store

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"time"
	"unsafe"
)

// keeper holds the kept events of a Memory store's channels ([Keeper]).
// Its methods are called with the store's lock held.
type keeper struct {
	per      int // events kept per channel; negative: none
	keepFor  time.Duration
	maxBytes int64 // negative: no limit
	bytes    int64
	// floor is the newest position of a channel forgotten whole: a
	// channel written again after that starts as one that dropped
	// everything up to it, since the store no longer knows what it had.
	floor    uint64
	channels map[string]*channel
	lru      *channel // sentinel of the channels by last write: lru.next is the newest
}

// channel is the kept events of one channel, oldest first.
type channel struct {
	name       string
	evs        []keptEvent
	head       int    // index of the oldest kept event in evs
	dropped    uint64 // position of the newest event dropped, 0 if none
	prev, next *channel
}

type keptEvent struct {
	ev   Event
	size int64
}

func (k *keeper) init(cfg MemoryConfig) {
	k.per, k.keepFor, k.maxBytes = cfg.KeepPerChannel, cfg.KeepFor, cfg.KeepMaxBytes
	if k.per == 0 {
		k.per = DefaultKeepPerChannel
	}
	if k.keepFor <= 0 {
		k.keepFor = DefaultKeepFor
	}
	if k.maxBytes == 0 {
		k.maxBytes = DefaultMemoryMaxBytes
	}
	k.channels = make(map[string]*channel)
	k.lru = &channel{}
	k.lru.prev, k.lru.next = k.lru, k.lru
}

// keptOverhead is what a kept event costs beyond its EventSize: its copy
// of the Event (the strings are shared with the log) and its slot.
const keptOverhead = int64(unsafe.Sizeof(keptEvent{}))

// add keeps e, appended at now with size bytes, under each of its channels.
func (k *keeper) add(e *Event, size int64, now time.Time) {
	if k.per < 0 || k.channels == nil {
		return
	}
	size += keptOverhead
	// Channels nobody wrote to for KeepFor hold only expired events.
	for c := k.lru.prev; c != k.lru && now.Sub(c.evs[len(c.evs)-1].ev.Time) > k.keepFor; c = k.lru.prev {
		k.remove(c)
	}
	for _, tp := range e.Topics {
		if !IsChannel(tp) {
			continue
		}
		c := k.channels[tp]
		if k.maxBytes >= 0 && size > k.maxBytes {
			// Too large to keep: the channel is incomplete from here on.
			if c != nil {
				k.remove(c)
			}
			k.floor = max(k.floor, e.Pos)
			continue
		}
		if c == nil {
			c = &channel{name: tp, dropped: k.floor}
			k.channels[tp] = c
		} else if c.evs[len(c.evs)-1].ev.Pos == e.Pos {
			continue // the topic is repeated in e.Topics
		} else {
			c.unlink()
		}
		c.evs = append(c.evs, keptEvent{ev: *e, size: size})
		k.bytes += size
		c.prev, c.next = k.lru, k.lru.next
		c.prev.next, c.next.prev = c, c
		k.expire(c, now)
		for len(c.evs)-c.head > k.per {
			k.drop(c)
		}
	}
	for k.maxBytes >= 0 && k.bytes > k.maxBytes && k.lru.prev != k.lru {
		k.drop(k.lru.prev)
	}
}

// expire drops the events of c older than KeepFor at now.
func (k *keeper) expire(c *channel, now time.Time) {
	for c.head < len(c.evs) && now.Sub(c.evs[c.head].ev.Time) > k.keepFor {
		k.drop(c)
	}
}

// drop drops the oldest kept event of c, and c itself when it was the last.
func (k *keeper) drop(c *channel) {
	ke := &c.evs[c.head]
	c.dropped = ke.ev.Pos
	k.bytes -= ke.size
	*ke = keptEvent{}
	c.head++
	switch {
	case c.head == len(c.evs):
		k.remove(c)
	case c.head >= 64 && c.head*2 >= len(c.evs):
		n := copy(c.evs, c.evs[c.head:])
		clear(c.evs[n:])
		c.evs, c.head = c.evs[:n], 0
	}
}

// remove forgets c and what it keeps.
func (k *keeper) remove(c *channel) {
	for _, ke := range c.evs[c.head:] {
		k.bytes -= ke.size
	}
	k.floor = max(k.floor, c.dropped)
	if n := len(c.evs); n > c.head {
		k.floor = max(k.floor, c.evs[n-1].ev.Pos)
	}
	c.unlink()
	delete(k.channels, c.name)
}

func (c *channel) unlink() {
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

// Kept yields the kept events of channel after cursor. See [Keeper].
func (m *Memory) Kept(ctx context.Context, channel, cursor string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		evs, err := m.kept1(ctx, channel, cursor)
		if err != nil {
			yield(Event{}, fmt.Errorf("store: kept %q: %w", channel, err))
			return
		}
		for _, e := range evs {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// kept1 returns a copy of the kept events of channel after cursor.
func (m *Memory) kept1(ctx context.Context, name, cursor string) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var after uint64
	if cursor != "" {
		pos, ok := m.epoch.Pos(cursor)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not an id this log generated", ErrUnknownID, cursor)
		}
		after = pos
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, ErrClosed
	case after > m.last:
		return nil, fmt.Errorf("%w: %q is beyond the end of the log", ErrUnknownID, cursor)
	}
	c := m.kept.channels[name]
	if c != nil {
		m.kept.expire(c, m.now())
		c = m.kept.channels[name] // expire may have removed it
	}
	switch {
	case cursor == "" && c == nil:
		return nil, nil
	case c == nil:
		return nil, fmt.Errorf("%w: nothing of the channel is kept", ErrExpired)
	case cursor != "" && c.dropped > after:
		return nil, fmt.Errorf("%w: events after %q were dropped", ErrExpired, cursor)
	}
	kept := c.evs[c.head:]
	i := sort.Search(len(kept), func(i int) bool { return kept[i].ev.Pos > after })
	evs := make([]Event, len(kept)-i)
	for j := range evs {
		evs[j] = kept[i+j].ev
	}
	return evs, nil
}

var _ Keeper = (*Memory)(nil)
