package natsstore

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestKeptRecordRoundTrip(t *testing.T) {
	prev := keptState{hwm: 41, lost: 7, pending: []pendingIntent{{3, -5}, {1 << 40, time.Now().UnixNano()}}}
	for _, m := range []keptMsg{
		{kind: kindIntent, epoch: "k3j9x0a2", t: 12345, prev: prev},
		{kind: kindCopy, epoch: "k3j9x0a2", t: 1, prev: prev, intent: 9, pos: 1 << 50, record: []byte("the record")},
		{kind: kindCopy, epoch: "", t: 0, intent: 1, pos: 2, record: []byte{}},
		{kind: kindAbort, epoch: "e", t: 99, intent: 300},
	} {
		b := encodeKept(&m)
		got, err := decodeKept(77, b)
		m.seq = 77
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("decodeKept(encodeKept(%+v)) = %+v, %v", m, got, err)
		}
		for i := range b {
			if m.kind == kindCopy && i >= len(b)-len(m.record) {
				break // a shorter record is a record
			}
			if _, err := decodeKept(77, b[:i]); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeKept of %d of the %d bytes of %+v: %v, want errCorrupt", i, len(b), m, err)
			}
		}
	}
	for _, b := range [][]byte{nil, {2, kindIntent}, {keptVersion, 0}, {keptVersion, kindAbort + 1}} {
		if _, err := decodeKept(1, b); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeKept(%v): %v, want errCorrupt", b, err)
		}
	}
}

// chain builds the messages of a chain in stream order from steps, as
// Store.keepWrite does: each carries the state after the one before.
type chain struct {
	msgs []keptMsg
	seq  uint64
}

func (c *chain) add(m keptMsg) uint64 {
	c.seq++
	m.seq = c.seq
	if m.epoch == "" {
		m.epoch = "ep"
	}
	if n := len(c.msgs); n > 0 && c.msgs[n-1].epoch == m.epoch {
		m.prev = c.msgs[n-1].after()
	}
	c.msgs = append(c.msgs, m)
	return m.seq
}

// event appends the intent and the copy of an event at pos and time t.
func (c *chain) event(pos uint64, t int64) {
	i := c.add(keptMsg{kind: kindIntent, t: t})
	c.add(keptMsg{kind: kindCopy, t: t, intent: i, pos: pos})
}

func copyPositions(v keptView) []uint64 {
	var ps []uint64
	for _, m := range v.copies {
		ps = append(ps, m.pos)
	}
	return ps
}

func TestViewKept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		build   func(c *chain)
		drop    int // messages the stream dropped from the front
		cutoff  int64
		per     int
		copies  []uint64
		dropped uint64
		lost    uint64
		pending int
	}{
		{name: "all kept", per: 10, build: func(c *chain) {
			c.event(5, 1)
			c.event(9, 2)
		}, copies: []uint64{5, 9}},
		{name: "the stream dropped the oldest", per: 10, drop: 3, build: func(c *chain) {
			c.event(5, 1)
			c.event(9, 2)
			c.event(12, 3)
		}, copies: []uint64{9, 12}, dropped: 5},
		{name: "KeepPerChannel", per: 2, build: func(c *chain) {
			for _, p := range []uint64{3, 4, 8, 10} {
				c.event(p, 1)
			}
		}, copies: []uint64{8, 10}, dropped: 4},
		{name: "KeepFor", per: 10, cutoff: 5, build: func(c *chain) {
			c.event(3, 1)
			c.event(4, 4)
			c.event(8, 5)
			c.event(10, 9)
		}, copies: []uint64{8, 10}, dropped: 4},
		{name: "everything expired", per: 10, cutoff: 5, build: func(c *chain) {
			c.event(3, 1)
		}},
		{name: "copies out of order", per: 10, drop: 1, build: func(c *chain) {
			// Two appends at once: 7's copy came before 6's.
			i6 := c.add(keptMsg{kind: kindIntent, t: 1})
			i7 := c.add(keptMsg{kind: kindIntent, t: 1})
			c.add(keptMsg{kind: kindCopy, t: 1, intent: i7, pos: 7})
			c.add(keptMsg{kind: kindCopy, t: 1, intent: i6, pos: 6})
		}, copies: []uint64{6, 7}},
		{name: "the newer copy dropped first", per: 1, build: func(c *chain) {
			i6 := c.add(keptMsg{kind: kindIntent, t: 1})
			i7 := c.add(keptMsg{kind: kindIntent, t: 1})
			c.add(keptMsg{kind: kindCopy, t: 1, intent: i7, pos: 7})
			c.add(keptMsg{kind: kindCopy, t: 1, intent: i6, pos: 6})
		}, copies: []uint64{6}, dropped: 7},
		{name: "an intent without its copy", per: 10, build: func(c *chain) {
			c.event(5, 1)
			c.add(keptMsg{kind: kindIntent, t: 2})
			c.event(9, 3)
		}, copies: []uint64{5, 9}, pending: 1},
		{name: "an intent pending before the oldest kept", per: 10, drop: 1, build: func(c *chain) {
			c.add(keptMsg{kind: kindIntent, t: 2})
			c.event(9, 3)
		}, copies: []uint64{9}, pending: 1},
		{name: "an aborted intent", per: 10, build: func(c *chain) {
			i := c.add(keptMsg{kind: kindIntent, t: 2})
			c.add(keptMsg{kind: kindAbort, t: 2, intent: i})
			c.event(9, 3)
		}, copies: []uint64{9}},
		{name: "a folded intent", per: 10, build: func(c *chain) {
			c.add(keptMsg{kind: kindIntent, t: 2})
			i := c.add(keptMsg{kind: kindIntent, t: 100})
			m := keptMsg{kind: kindCopy, t: 100, intent: i, pos: 30}
			c.add(m)
			c.msgs[len(c.msgs)-1].prev.fold(100, 10, 29, i)
		}, copies: []uint64{30}, lost: 29},
		{name: "another epoch before", per: 10, build: func(c *chain) {
			c.add(keptMsg{kind: kindIntent, t: 1, epoch: "old"})
			c.add(keptMsg{kind: kindCopy, t: 1, epoch: "old", pos: 900})
			c.event(2, 3)
		}, copies: []uint64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c chain
			tc.build(&c)
			v := viewKept(c.msgs[tc.drop:], "ep", tc.cutoff, tc.per)
			if !slices.Equal(copyPositions(v), tc.copies) || v.dropped != tc.dropped || v.lost != tc.lost || len(v.pending) != tc.pending {
				t.Fatalf("viewKept = copies %v, dropped %d, lost %d, pending %v; want %v, %d, %d, %d pending",
					copyPositions(v), v.dropped, v.lost, v.pending, tc.copies, tc.dropped, tc.lost, tc.pending)
			}
		})
	}
}

func TestFold(t *testing.T) {
	st := keptState{lost: 3, pending: []pendingIntent{{1, 0}, {2, 50}, {3, 95}, {4, 0}}}
	st.fold(100, 10, 40, 4)
	if st.lost != 40 || !slices.Equal(st.pending, []pendingIntent{{3, 95}, {4, 0}}) {
		t.Fatalf("fold: %+v", st)
	}
	st = keptState{lost: 3, pending: []pendingIntent{{3, 95}}}
	st.fold(100, 10, 40, 0)
	if st.lost != 3 || len(st.pending) != 1 {
		t.Fatalf("fold of young intents: %+v", st)
	}
	st = keptState{}
	for i := range maxPending + 5 {
		st.pending = append(st.pending, pendingIntent{uint64(i + 1), 100})
	}
	st.fold(100, 10, 40, 2)
	if len(st.pending) != maxPending || st.lost != 40 || st.pending[0].seq != 2 || st.pending[1].seq != 7 {
		t.Fatalf("fold beyond maxPending: lost %d, %d pending from %v", st.lost, len(st.pending), st.pending[:2])
	}
}
