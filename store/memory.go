package store

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"
)

// Defaults of [MemoryConfig].
const (
	// DefaultMemoryMaxEvents is the number of events a Memory store keeps
	// when MemoryConfig.MaxEvents is zero.
	DefaultMemoryMaxEvents = 100_000
	// DefaultMemoryMaxBytes is the byte budget (see [EventSize]) of a Memory
	// store when MemoryConfig.MaxBytes is zero: 64 MiB.
	DefaultMemoryMaxBytes = 64 << 20
)

// batchSize is how many events History and Follow copy under the lock at a
// time before yielding them without it.
const batchSize = 256

// MemoryConfig configures a [Memory] store. The zero value is a store that
// keeps the last 100,000 events within 64 MiB, with no age limit.
type MemoryConfig struct {
	// MaxEvents is the most events retained; the oldest are evicted first.
	// Zero means DefaultMemoryMaxEvents; a negative value means no count
	// limit.
	MaxEvents int
	// MaxBytes bounds the sum of [EventSize] over retained events. Zero
	// means DefaultMemoryMaxBytes; a negative value means no byte limit. An
	// event larger than MaxBytes on its own is refused ([ErrInvalidEvent]).
	MaxBytes int64
	// TTL is the longest an event is retained, measured from its Time.
	// Zero means no age limit.
	TTL time.Duration
	// Now is the clock used for Event.Time, TTL and KeepFor. Nil means
	// time.Now.
	Now func() time.Time

	// KeepPerChannel is how many of the newest events of each channel the
	// store keeps apart from MaxEvents, MaxBytes and TTL ([Keeper]). Zero
	// means DefaultKeepPerChannel; a negative value keeps nothing.
	KeepPerChannel int
	// KeepFor is how long an event of a channel is kept, from its Time.
	// Zero means DefaultKeepFor.
	KeepFor time.Duration
	// KeepMaxBytes bounds the sum of [EventSize] over the kept events of
	// all channels, plus what keeping each costs (its copy of the Event
	// struct, about 170 bytes; the strings are the log's): past it, the
	// oldest event of the channel written to least recently is dropped. Zero means DefaultMemoryMaxBytes; a
	// negative value means no byte limit.
	KeepMaxBytes int64
}

// Memory is an in-memory [Store]: a ring buffer bounded by event count,
// bytes and age. Append is O(1) (amortised: the ring grows by doubling up to
// MaxEvents), a generated id is turned into a ring slot by arithmetic and a
// custom id through a map, so replaying k events after a recent cursor costs
// O(k) whatever the size of the ring.
//
// Custom ids: an id in the form of the ids this store generates is refused
// ([ErrInvalidEvent]), so a cursor always means what it meant when issued.
// A repeated custom id resolves to its first occurrence still retained: when
// retention evicts the first occurrence, the next one takes over; when it
// evicts the last, the id is unknown ([ErrUnknownID]), since the store
// remembers nothing beyond its retention.
//
// Cursors: the id of the newest evicted event is still valid (nothing after
// it is missing); older ones yield [ErrExpired].
//
// The Topics slice of the events it yields is shared with the store and must
// not be modified.
type Memory struct {
	maxEvents int
	maxBytes  int64
	ttl       time.Duration
	now       func() time.Time
	epoch     Epoch

	mu       sync.Mutex
	ring     []slot // len is a power of two
	start    int    // ring index of the oldest retained event
	n        int    // number of retained events
	first    uint64 // position of the oldest retained event (last+1 if none)
	last     uint64 // position of the newest event ever appended (0 if none)
	bytes    int64  // sum of EventSize over retained events
	lastTime time.Time
	custom   map[string][]uint64 // custom id -> retained positions, ascending
	notify   chan struct{}       // closed on the next append; nil when nobody waits
	closed   bool
	kept     keeper
}

type slot struct {
	ev     Event
	size   int64
	custom bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store configured by cfg.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{
		maxEvents: cfg.MaxEvents,
		maxBytes:  cfg.MaxBytes,
		ttl:       cfg.TTL,
		now:       cfg.Now,
		epoch:     NewEpoch(),
		ring:      make([]slot, 64),
		first:     1,
		custom:    make(map[string][]uint64),
	}
	if m.maxEvents == 0 {
		m.maxEvents = DefaultMemoryMaxEvents
	}
	if m.maxBytes == 0 {
		m.maxBytes = DefaultMemoryMaxBytes
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.kept.init(cfg)
	return m
}

// Append adds e to the log. See [Store.Append].
func (m *Memory) Append(ctx context.Context, e Event) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, fmt.Errorf("store: append: %w", err)
	}
	if err := ValidateEvent(&e); err != nil {
		return Event{}, fmt.Errorf("store: append: %w", err)
	}
	custom := e.ID != ""
	if custom {
		if _, ok := m.epoch.Pos(e.ID); ok {
			return Event{}, fmt.Errorf("store: append: %w: custom id %q has the form of the ids this store generates", ErrInvalidEvent, e.ID)
		}
	}
	if len(e.Topics) == 0 {
		e.Topics = nil
	} else {
		e.Topics = slices.Clone(e.Topics)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Event{}, fmt.Errorf("store: append: %w", ErrClosed)
	}
	pos := m.last + 1
	if !custom {
		e.ID = m.epoch.ID(pos)
	}
	size := int64(EventSize(&e))
	if m.maxBytes > 0 && size > m.maxBytes {
		return Event{}, fmt.Errorf("store: append: %w: event of %d bytes exceeds the store's MaxBytes %d", ErrInvalidEvent, size, m.maxBytes)
	}
	now := m.now()
	if now.Before(m.lastTime) {
		now = m.lastTime // Time never decreases along the log.
	}
	e.Pos, e.Time = pos, now
	m.evictExpired(now)
	for m.n > 0 && (m.maxEvents > 0 && m.n >= m.maxEvents || m.maxBytes > 0 && m.bytes+size > m.maxBytes) {
		m.evictOldest()
	}
	if m.n == len(m.ring) {
		m.grow()
	}
	m.ring[(m.start+m.n)&(len(m.ring)-1)] = slot{ev: e, size: size, custom: custom}
	m.n++
	m.last, m.bytes, m.lastTime = pos, m.bytes+size, now
	if m.n == 1 {
		m.first = pos
	}
	if custom {
		m.custom[e.ID] = append(m.custom[e.ID], pos)
	}
	m.kept.add(&e, size, now)
	if m.notify != nil {
		close(m.notify)
		m.notify = nil
	}
	return e, nil
}

func (m *Memory) grow() {
	ring := make([]slot, 2*len(m.ring))
	for i := 0; i < m.n; i++ {
		ring[i] = m.ring[(m.start+i)&(len(m.ring)-1)]
	}
	m.ring, m.start = ring, 0
}

// evictOldest removes the oldest retained event; m.n must be positive.
func (m *Memory) evictOldest() {
	s := &m.ring[m.start]
	if s.custom {
		id := s.ev.ID
		if ps := m.custom[id]; len(ps) > 1 {
			m.custom[id] = ps[1:]
		} else {
			delete(m.custom, id)
		}
	}
	m.bytes -= s.size
	*s = slot{}
	m.start = (m.start + 1) & (len(m.ring) - 1)
	m.n--
	m.first++
}

// evictExpired removes the events older than the TTL at time now.
func (m *Memory) evictExpired(now time.Time) {
	if m.ttl <= 0 {
		return
	}
	for m.n > 0 && now.Sub(m.ring[m.start].ev.Time) > m.ttl {
		m.evictOldest()
	}
}

// resolve returns the position a cursor stands for: History and Follow
// yield the events after it.
func (m *Memory) resolve(cursor string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	m.evictExpired(m.now())
	if cursor == "" {
		return m.first - 1, nil
	}
	if pos, ok := m.epoch.Pos(cursor); ok {
		switch {
		case pos > m.last:
			return 0, fmt.Errorf("%w: %q is beyond the end of the log", ErrUnknownID, cursor)
		case pos+1 < m.first:
			return 0, fmt.Errorf("%w: %q", ErrExpired, cursor)
		}
		return pos, nil
	}
	if ps := m.custom[cursor]; len(ps) > 0 {
		return ps[0], nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownID, cursor)
}

// Resolve returns the position a cursor stands for. See [Resolver].
func (m *Memory) Resolve(ctx context.Context, cursor string) (uint64, error) {
	pos, err := m.resolve(cursor)
	if err != nil {
		return 0, fmt.Errorf("store: resolve: %w", err)
	}
	return pos, nil
}

var _ Resolver = (*Memory)(nil)

// PositionID returns the generated id of e's position. See [Positioner].
func (m *Memory) PositionID(e *Event) string { return m.epoch.ID(e.Pos) }

// Lookup returns the first retained event with custom id id. See
// [Positioner].
func (m *Memory) Lookup(ctx context.Context, id string) (Event, bool, error) {
	if id == "" {
		return Event{}, false, nil
	}
	if _, ok := m.epoch.Pos(id); ok {
		return Event{}, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Event{}, false, fmt.Errorf("store: lookup: %w", ErrClosed)
	}
	m.evictExpired(m.now())
	ps := m.custom[id]
	if len(ps) == 0 {
		return Event{}, false, fmt.Errorf("store: lookup: %w: %q", ErrUnknownID, id)
	}
	return m.ring[(m.start+int(ps[0]-m.first))&(len(m.ring)-1)].ev, true, nil
}

var _ Positioner = (*Memory)(nil)

// read appends to buf the events after position after, up to position end
// and at most batchSize of them. When there are none and wait is set, it
// also returns a channel closed by the next append.
func (m *Memory) read(after, end uint64, buf []Event, wait bool) ([]Event, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return buf, nil, ErrClosed
	}
	m.evictExpired(m.now())
	if after+1 < m.first {
		return buf, nil, fmt.Errorf("%w: events after position %d were evicted before they were read", ErrExpired, after)
	}
	end = min(end, m.last)
	if after >= end {
		if !wait {
			return buf, nil, nil
		}
		if m.notify == nil {
			m.notify = make(chan struct{})
		}
		return buf, m.notify, nil
	}
	k := int(min(end-after, batchSize))
	off := int(after + 1 - m.first)
	mask := len(m.ring) - 1
	for i := 0; i < k; i++ {
		buf = append(buf, m.ring[(m.start+off+i)&mask].ev)
	}
	return buf, nil, nil
}

// History yields the retained events after cursor that match filter, up to
// the end of the log as it is when iteration starts. See [Store.History].
// If ctx is done before the end, the last element is ctx's error.
func (m *Memory) History(ctx context.Context, cursor string, filter Filter) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		after, err := m.resolve(cursor)
		if err != nil {
			yield(Event{}, err)
			return
		}
		m.mu.Lock()
		end := m.last
		m.mu.Unlock()
		var buf []Event
		if after < end {
			buf = make([]Event, 0, min(end-after, batchSize))
		}
		for after < end {
			if err := ctx.Err(); err != nil {
				yield(Event{}, fmt.Errorf("store: history: %w", err))
				return
			}
			if buf, _, err = m.read(after, end, buf[:0], false); err != nil {
				yield(Event{}, err)
				return
			}
			if len(buf) == 0 {
				return
			}
			for i := range buf {
				after = buf[i].Pos
				if filter != nil && !filter(&buf[i]) {
					continue
				}
				if !yield(buf[i], nil) {
					return
				}
			}
		}
	}
}

// Follow yields the events after cursor, then new ones as they are
// appended. See [Store.Follow].
func (m *Memory) Follow(ctx context.Context, cursor string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		after, err := m.resolve(cursor)
		if err != nil {
			yield(Event{}, err)
			return
		}
		var buf []Event
		for ctx.Err() == nil {
			var wait <-chan struct{}
			if buf, wait, err = m.read(after, ^uint64(0), buf[:0], true); err != nil {
				yield(Event{}, err)
				return
			}
			if len(buf) == 0 {
				select {
				case <-ctx.Done():
					return
				case <-wait:
				}
				continue
			}
			for i := range buf {
				after = buf[i].Pos
				if !yield(buf[i], nil) {
					return
				}
			}
		}
	}
}

// Head returns the generated id of the last event appended, or "" if none
// was. See [Store.Head].
func (m *Memory) Head(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", fmt.Errorf("store: head: %w", ErrClosed)
	}
	if m.last == 0 {
		return "", nil
	}
	return m.epoch.ID(m.last), nil
}

// Close releases the events and ends every Follow with [ErrClosed]. Closing
// a closed store does nothing.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.ring, m.custom, m.n = nil, nil, 0
	m.kept.channels, m.kept.lru = nil, nil
	if m.notify != nil {
		close(m.notify)
		m.notify = nil
	}
	return nil
}
