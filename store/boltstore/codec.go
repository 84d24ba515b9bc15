package boltstore

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/sluicehq/sluice/store"
)

// An event is stored under its position (8 bytes, big endian) as:
//
//	time     8 bytes, big-endian Unix nanoseconds (fixed offset, so TTL
//	         checks read it without decoding the rest)
//	flags    1 byte: flagCustom (the id is stored), flagPrivate
//	retry    uvarint nanoseconds
//	id       uvarint length + bytes, only with flagCustom (a generated id
//	         is rebuilt from the epoch and the position)
//	type     uvarint length + bytes
//	topics   uvarint count, then uvarint length + bytes for each
//	data     the rest of the value
const (
	flagCustom  = 1 << 0
	flagPrivate = 1 << 1
	headerLen   = 9
)

var errCorrupt = errors.New("corrupt event record")

func posKey(dst []byte, pos uint64) []byte { return binary.BigEndian.AppendUint64(dst, pos) }

func keyPos(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// encode appends the record of e (whose Time is t, in Unix nanoseconds) to
// dst.
func encode(dst []byte, e *store.Event, custom bool, t int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	var flags byte
	if custom {
		flags |= flagCustom
	}
	if e.Private {
		flags |= flagPrivate
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(e.Retry))
	if custom {
		dst = binary.AppendUvarint(dst, uint64(len(e.ID)))
		dst = append(dst, e.ID...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Topics)))
	for _, tp := range e.Topics {
		dst = binary.AppendUvarint(dst, uint64(len(tp)))
		dst = append(dst, tp...)
	}
	return append(dst, e.Data...)
}

// recordTime returns the Time of a record, in Unix nanoseconds.
func recordTime(v []byte) (int64, bool) {
	if len(v) < headerLen {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), true
}

// field reads a uvarint-prefixed field of v at off: the field's bounds and
// the offset after it.
func field(v []byte, off int) (start, end int, ok bool) {
	n, w := binary.Uvarint(v[off:])
	if w <= 0 || n > uint64(len(v)-off-w) {
		return 0, 0, false
	}
	start = off + w
	return start, start + int(n), true
}

// layout is where the parts of a record are.
type layout struct {
	flags            byte
	retry            uint64
	idStart, idEnd   int
	typStart, typEnd int
	topics           [][2]int // filled only when parse is given a non-nil slice
	ntopics          int
	topicBytes       int
	data             int
}

func parse(v []byte, topics [][2]int) (layout, bool) {
	var l layout
	if len(v) < headerLen {
		return l, false
	}
	l.flags = v[8]
	retry, w := binary.Uvarint(v[headerLen:])
	if w <= 0 {
		return l, false
	}
	l.retry = retry
	off := headerLen + w
	var ok bool
	if l.flags&flagCustom != 0 {
		if l.idStart, l.idEnd, ok = field(v, off); !ok {
			return l, false
		}
		off = l.idEnd
	}
	if l.typStart, l.typEnd, ok = field(v, off); !ok {
		return l, false
	}
	off = l.typEnd
	n, w := binary.Uvarint(v[off:])
	if w <= 0 || n > uint64(len(v)-off-w) {
		return l, false
	}
	off += w
	l.ntopics = int(n)
	l.topics = topics[:0]
	for range l.ntopics {
		s, e, ok := field(v, off)
		if !ok {
			return l, false
		}
		if topics != nil {
			l.topics = append(l.topics, [2]int{s, e})
		}
		l.topicBytes += e - s
		off = e
	}
	l.data = off
	return l, true
}

// size returns store.EventSize of the record v at pos, and its custom id
// (nil for a generated one), without allocating.
func size(v []byte, pos uint64, ep store.Epoch) (int, []byte, bool) {
	l, ok := parse(v, nil)
	if !ok {
		return 0, nil, false
	}
	n := (l.typEnd - l.typStart) + l.topicBytes + (len(v) - l.data)
	if l.flags&flagCustom != 0 {
		return n + l.idEnd - l.idStart, v[l.idStart:l.idEnd], true
	}
	return n + ep.IDLen(pos), nil, true
}

// decode returns the event stored at pos as record v. The strings share one
// copy of v, so the event holds no reference to bbolt's memory.
func decode(v []byte, pos uint64, ep store.Epoch, scratch [][2]int) (store.Event, [][2]int, error) {
	if scratch == nil {
		scratch = make([][2]int, 0, 8)
	}
	l, ok := parse(v, scratch)
	if !ok {
		return store.Event{}, scratch, errCorrupt
	}
	// One allocation holds the record and, for a generated id, the id.
	var sb strings.Builder
	sb.Grow(len(v) + ep.IDLen(pos))
	sb.Write(v)
	if l.flags&flagCustom == 0 {
		var idb [32]byte
		sb.Write(ep.AppendID(idb[:0], pos))
	}
	s := sb.String()
	e := store.Event{
		Pos:     pos,
		Type:    s[l.typStart:l.typEnd],
		Data:    s[l.data:len(v)],
		Retry:   time.Duration(l.retry),
		Private: l.flags&flagPrivate != 0,
		Time:    time.Unix(0, int64(binary.BigEndian.Uint64(v))),
	}
	if l.flags&flagCustom != 0 {
		e.ID = s[l.idStart:l.idEnd]
	} else {
		e.ID = s[len(v):]
	}
	if l.ntopics > 0 {
		e.Topics = make([]string, l.ntopics)
		for i, b := range l.topics {
			e.Topics[i] = s[b[0]:b[1]]
		}
	}
	return e, l.topics, nil
}
