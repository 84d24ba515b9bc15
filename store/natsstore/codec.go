package natsstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/store"
)

// A message's payload is the event in a compact binary record:
//
//	version  1 byte (1)
//	flags    1 byte: flagCustom (the id follows), flagPrivate
//	time     8 bytes, big-endian Unix nanoseconds
//	retry    uvarint nanoseconds
//	type     uvarint length + bytes
//	topics   uvarint count, then uvarint length + bytes for each
//	id       uvarint length + bytes, only with flagCustom (a generated id is
//	         rebuilt from the epoch and the stream sequence)
//	data     the rest of the payload
//
// No NATS headers: the server does not parse them and the record is smaller.
const (
	recordVersion = 1
	flagCustom    = 1 << 0
	flagPrivate   = 1 << 1
	headerLen     = 10
)

var errCorrupt = errors.New("corrupt message")

// encode appends the record of e, appended at time t, to dst.
func encode(dst []byte, e *store.Event, custom bool, t time.Time) []byte {
	var flags byte
	if custom {
		flags |= flagCustom
	}
	if e.Private {
		flags |= flagPrivate
	}
	dst = append(dst, recordVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(e.Retry))
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Topics)))
	for _, tp := range e.Topics {
		dst = binary.AppendUvarint(dst, uint64(len(tp)))
		dst = append(dst, tp...)
	}
	if custom {
		dst = binary.AppendUvarint(dst, uint64(len(e.ID)))
		dst = append(dst, e.ID...)
	}
	return append(dst, e.Data...)
}

// recordTime returns the time in a record without decoding the rest.
func recordTime(b []byte) (time.Time, bool) {
	if len(b) < headerLen || b[0] != recordVersion {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[2:]))), true
}

// decode rebuilds the event stored at sequence seq; ep is the log's epoch,
// for generated ids. Without an arena the strings share one copy of b: b may
// be reused. With one, they alias b, which must never be modified or
// reused, and the topic list and generated id come from the arena.
func decode(ep store.Epoch, seq uint64, b []byte, a *arena) (store.Event, error) {
	t, ok := recordTime(b)
	if !ok {
		return store.Event{}, errCorrupt
	}
	flags := b[1]
	off := headerLen
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b[off:])
		if n <= 0 {
			bad = true
			return 0
		}
		off += n
		return v
	}
	var all string // b[headerLen:]; the fields are substrings of it
	switch {
	case len(b) == headerLen:
	case a != nil:
		all = unsafe.String(&b[headerLen], len(b)-headerLen)
	default:
		all = string(b[headerLen:]) // one copy
	}
	str := func() string {
		n := uv()
		if bad || n > uint64(len(b)-off) {
			bad = true
			return ""
		}
		s := all[off-headerLen : off-headerLen+int(n)]
		off += int(n)
		return s
	}
	e := store.Event{Pos: seq, Time: t, Private: flags&flagPrivate != 0}
	e.Retry = time.Duration(uv())
	e.Type = str()
	if k := uv(); k > 0 && !bad {
		if k > uint64(len(b)) {
			return store.Event{}, errCorrupt
		}
		if a != nil {
			e.Topics = a.strings(int(k))
		} else {
			e.Topics = make([]string, k)
		}
		for i := range e.Topics {
			e.Topics[i] = str()
		}
	}
	switch {
	case flags&flagCustom != 0:
		e.ID = str()
	case a != nil:
		e.ID = a.id(ep, seq)
	default:
		e.ID = ep.ID(seq)
	}
	if bad || e.Retry < 0 {
		return store.Event{}, errCorrupt
	}
	e.Data = all[off-headerLen:]
	return e, nil
}

// arena hands out the topic lists and generated ids of decoded events from
// shared chunks: a few allocations for a batch of events instead of two per
// event. Nothing handed out is ever written again; an event keeps its
// chunks alive.
type arena struct {
	topics []string
	ids    []byte
}

// strings returns a list of k strings, full (appending to it copies).
func (a *arena) strings(k int) []string {
	if len(a.topics)+k > cap(a.topics) {
		a.topics = make([]string, 0, max(256, k))
	}
	n := len(a.topics)
	a.topics = a.topics[:n+k]
	return a.topics[n : n+k : n+k]
}

// id returns ep.ID(pos).
func (a *arena) id(ep store.Epoch, pos uint64) string {
	n := ep.IDLen(pos)
	if len(a.ids)+n > cap(a.ids) {
		a.ids = make([]byte, 0, max(4096, n))
	}
	start := len(a.ids)
	a.ids = ep.AppendID(a.ids, pos)
	return unsafe.String(&a.ids[start], n)
}

// customID returns the custom id of a record, or "" if it has none.
func customID(b []byte) (string, bool) {
	if len(b) < headerLen || b[0] != recordVersion {
		return "", false
	}
	if b[1]&flagCustom == 0 {
		return "", true
	}
	e, err := decode("x", 1, b, nil)
	return e.ID, err == nil
}

// idToken is the subject token of a custom id: 128 bits of its SHA-256 in
// unpadded base64url (22 characters, valid in a subject whatever the id
// holds). A lookup checks the id stored in the message, so a collision
// cannot resolve to the wrong event.
func idToken(id string) string {
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// epochOf derives the log's epoch from its stream's name and creation time:
// a stream deleted and created again under the same name gets another
// epoch, so its old ids are recognised as foreign. 8 base-36 digits of a
// 64-bit FNV-1a hash.
func epochOf(stream string, created time.Time) store.Epoch {
	h := fnv.New64a()
	h.Write([]byte(stream))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(created.UnixNano())))
	v := h.Sum64()
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var out [8]byte
	for i := range out {
		out[i] = digits[v%36]
		v /= 36
	}
	return store.Epoch(out[:])
}

// streamSeq returns the stream sequence in the reply subject of a message
// a consumer delivered: $JS.ACK.<stream>.<consumer>.<delivered>.<seq>...
// (9 tokens), or with a domain and an account hash after ACK (12 or more).
func streamSeq(reply string) (uint64, bool) {
	dots := 0
	for i := 0; i < len(reply); i++ {
		if reply[i] == '.' {
			dots++
		}
	}
	pos := 5
	switch {
	case dots == 8:
	case dots >= 11:
		pos = 7
	default:
		return 0, false
	}
	for range pos {
		i := strings.IndexByte(reply, '.')
		reply = reply[i+1:]
	}
	if i := strings.IndexByte(reply, '.'); i >= 0 {
		reply = reply[:i]
	}
	v, err := strconv.ParseUint(reply, 10, 64)
	return v, err == nil && v > 0
}
