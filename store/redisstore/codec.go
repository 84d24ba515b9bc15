package redisstore

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/store"
)

// A position in the log: the stream entry id ms-n. n is the event's Pos,
// contiguous from 1 (the append script assigns it from a counter); ms is its
// Time in Unix milliseconds, never decreasing along the log.
type position struct{ ms, n uint64 }

// streamID returns the Redis stream entry id of p.
func (p position) streamID() string {
	b := make([]byte, 0, 34)
	b = strconv.AppendUint(b, p.ms, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, p.n, 10)
	return string(b)
}

// parseStreamID parses a Redis stream entry id "ms-seq".
func parseStreamID(id string) (position, bool) {
	i := strings.IndexByte(id, '-')
	if i < 0 {
		return position{}, false
	}
	ms, err1 := strconv.ParseUint(id[:i], 10, 64)
	n, err2 := strconv.ParseUint(id[i+1:], 10, 64)
	return position{ms: ms, n: n}, err1 == nil && err2 == nil
}

// Generated ids are "#<epoch>-<n>-<ms>", both numbers in canonical base 36
// (for example "#k3j9x0a2-2s-mhc7yq3k"): the "#" makes the id a URI
// fragment (see [store.IDPrefix]), the epoch names the log, n is the
// position and ms the millisecond part of the stream entry id, which Redis
// needs to find the entry (XRANGE seeks by the full entry id).
func formatID(ep store.Epoch, p position) string {
	b := make([]byte, 0, len(store.IDPrefix)+len(ep)+2+26)
	b = append(b, store.IDPrefix...)
	b = append(b, ep...)
	b = append(b, '-')
	b = strconv.AppendUint(b, p.n, 36)
	b = append(b, '-')
	b = strconv.AppendUint(b, p.ms, 36)
	return string(b)
}

// parseID splits an id in the generated form into its epoch and position.
// It accepts only the canonical form (lowercase, no leading zeros, n >= 1),
// so a position has exactly one id, and that id in the legacy form of
// earlier versions, without the leading "#", for the same position (see
// [store.Epoch.Pos]).
func parseID(id string) (store.Epoch, position, bool) {
	id = strings.TrimPrefix(id, store.IDPrefix)
	i := strings.IndexByte(id, '-')
	if i <= 0 {
		return "", position{}, false
	}
	ep := store.Epoch(id[:i])
	if !ep.Valid() {
		return "", position{}, false
	}
	rest := id[i+1:]
	j := strings.IndexByte(rest, '-')
	if j < 0 {
		return "", position{}, false
	}
	n, ok1 := parse36(rest[:j])
	ms, ok2 := parse36(rest[j+1:])
	if !ok1 || !ok2 || n == 0 {
		return "", position{}, false
	}
	return ep, position{ms: ms, n: n}, true
}

// parse36 parses a canonical base-36 number: lowercase digits, no leading
// zero (except "0" itself), no overflow.
func parse36(s string) (uint64, bool) {
	if s == "" || len(s) > 13 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 36, 64)
	return v, err == nil
}

// An entry of the stream has two fields: "d", the data, and "m", the rest of
// the event in a compact binary record:
//
//	version  1 byte (1)
//	flags    1 byte: flagCustom (the id follows), flagPrivate
//	retry    uvarint nanoseconds
//	type     uvarint length + bytes
//	topics   uvarint count, then uvarint length + bytes for each
//	id       uvarint length + bytes, only with flagCustom (a generated id
//	         is rebuilt from the epoch and the entry id)
//
// Time and Pos are not stored: both come from the entry id.
const (
	recordVersion = 1
	flagCustom    = 1 << 0
	flagPrivate   = 1 << 1
)

var errCorrupt = errors.New("corrupt stream entry")

// encodeMeta appends the "m" field of e to dst.
func encodeMeta(dst []byte, e *store.Event, custom bool) []byte {
	var flags byte
	if custom {
		flags |= flagCustom
	}
	if e.Private {
		flags |= flagPrivate
	}
	dst = append(dst, recordVersion, flags)
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
	return dst
}

// metaReader reads the fields of an "m" record held in a string, without
// copying it.
type metaReader struct {
	s   string
	off int
	bad bool
}

func (r *metaReader) uvarint() uint64 {
	var v uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.off >= len(r.s) {
			break
		}
		c := r.s[r.off]
		r.off++
		if c < 0x80 {
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.bad = true
	return 0
}

func (r *metaReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	s := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

// decodeEntry rebuilds the event stored at p with fields m and d; ep is the
// log's epoch, for generated ids.
func decodeEntry(ep store.Epoch, p position, m, d string) (store.Event, error) {
	if len(m) < 2 || m[0] != recordVersion {
		return store.Event{}, errCorrupt
	}
	r := metaReader{s: m, off: 2}
	flags := m[1]
	e := store.Event{Pos: p.n, Data: d, Time: time.UnixMilli(int64(p.ms)), Private: flags&flagPrivate != 0}
	e.Retry = time.Duration(r.uvarint())
	e.Type = r.str()
	if k := r.uvarint(); k > 0 && !r.bad {
		if k > uint64(len(m)) {
			return store.Event{}, errCorrupt
		}
		e.Topics = make([]string, k)
		for i := range e.Topics {
			e.Topics[i] = r.str()
		}
	}
	if flags&flagCustom != 0 {
		e.ID = r.str()
	} else {
		e.ID = formatID(ep, p)
	}
	if r.bad || r.off != len(m) || e.Retry < 0 {
		return store.Event{}, errCorrupt
	}
	return e, nil
}

// indexMember is the member of the custom-id indexes for an occurrence of id
// at p: the id, NUL (custom ids never contain one), the position in 16 hex
// digits (so the occurrences of one id sort by position) and the entry's
// milliseconds in decimal. The append script builds the same string.
func indexMember(id string, p position) string {
	b := make([]byte, 0, len(id)+1+16+20)
	b = append(b, id...)
	b = append(b, 0)
	h := strconv.AppendUint(nil, p.n, 16)
	for range 16 - len(h) {
		b = append(b, '0')
	}
	b = append(b, h...)
	b = strconv.AppendUint(b, p.ms, 10)
	return string(b)
}

// parseIndexMember returns the position an index member names.
func parseIndexMember(m string) (position, bool) {
	i := strings.IndexByte(m, 0)
	if i < 0 || len(m) < i+1+16+1 {
		return position{}, false
	}
	n, err1 := strconv.ParseUint(m[i+1:i+17], 16, 64)
	ms, err2 := strconv.ParseUint(m[i+17:], 10, 64)
	return position{ms: ms, n: n}, err1 == nil && err2 == nil && n > 0
}
