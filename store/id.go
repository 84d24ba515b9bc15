package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDLen is the longest custom event id, in bytes, a store accepts. Longer
// ids are refused with an error wrapping [ErrInvalidEvent].
const MaxIDLen = 1024

// Epoch names one log: it is chosen at random when a log is created (a
// [Memory] store, a new bolt file) and, for durable stores, persisted with it.
// The ids a store generates are "#", its epoch, a dash and the event's
// position in base 36 (for example "#k3j9x0a2-1z"), so an id from another
// log, or from a log that was deleted and created again, is recognised as
// foreign ([ErrUnknownID]) instead of being misread as a position of this
// log.
//
// The leading "#" makes a generated id a relative reference consisting of a
// fragment, which is what the Mercure protocol requires of the ids a hub
// generates, and sets generated ids apart from publishers' ids at a glance.
// Versions before it generated the same ids without the "#" (the legacy
// form, "k3j9x0a2-1z"): [Epoch.Pos] still accepts that form, for the same
// position, so that a Last-Event-ID a client holds, or a cursor stored
// elsewhere, resumes exactly as before an upgrade. Stores refuse custom ids
// in either form ([ErrInvalidEvent]), so neither can ever name a
// publisher's event.
//
// Epoch is exported for store implementations; callers of a [Store] treat
// ids as opaque strings.
type Epoch string

// epochLen is the number of base-36 digits of a new epoch (about 41 bits).
const epochLen = 8

const digits36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// NewEpoch returns a random epoch of 8 lowercase base-36 digits.
func NewEpoch() Epoch {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	v := binary.LittleEndian.Uint64(b[:])
	var out [epochLen]byte
	for i := range out {
		out[i] = digits36[v%36]
		v /= 36
	}
	return Epoch(out[:])
}

// Valid reports whether ep can be used as an epoch: 1 to 16 characters, each
// a digit or a lowercase ASCII letter.
func (ep Epoch) Valid() bool {
	if len(ep) == 0 || len(ep) > 16 {
		return false
	}
	for i := 0; i < len(ep); i++ {
		if !isDigit36(ep[i]) {
			return false
		}
	}
	return true
}

// IDPrefix starts every id a store of this module generates: it makes the id
// a URI fragment ("#k3j9x0a2-1z"). See [Epoch]. Stores whose generated ids
// carry more than [Epoch.ID] (Redis) strip it, when present, before parsing
// an id, as [Epoch.Pos] does.
const IDPrefix = "#"

// ID returns the generated id of position pos in the log named by ep, for
// example "#k3j9x0a2-1z". The id is printable ASCII, so it is a valid SSE
// id.
func (ep Epoch) ID(pos uint64) string {
	var buf [1 + 16 + 1 + 13]byte
	return string(ep.AppendID(buf[:0], pos))
}

// AppendID appends ep.ID(pos) to dst and returns the extended slice.
func (ep Epoch) AppendID(dst []byte, pos uint64) []byte {
	dst = append(dst, IDPrefix...)
	dst = append(dst, ep...)
	dst = append(dst, '-')
	return appendBase36(dst, pos)
}

// IDLen returns len(ep.ID(pos)) without building the id.
func (ep Epoch) IDLen(pos uint64) int {
	n := 1
	for pos >= 36 {
		pos /= 36
		n++
	}
	return len(IDPrefix) + len(ep) + 1 + n
}

// Pos reports whether id is an id that ep.ID generates, and for which
// position. Only the canonical form is accepted (lowercase, no leading
// zeros, position at least 1), so every position has exactly one id, which
// is also accepted in the legacy form earlier versions generated (without
// the leading "#") and names the same position there: cursors issued before
// an upgrade keep working. Parsing either form allocates nothing.
func (ep Epoch) Pos(id string) (uint64, bool) {
	id = strings.TrimPrefix(id, IDPrefix)
	if len(id) <= len(ep)+1 || id[len(ep)] != '-' || id[:len(ep)] != string(ep) {
		return 0, false
	}
	s := id[len(ep)+1:]
	if len(s) > 13 || s[0] == '0' {
		return 0, false
	}
	var pos uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'z':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if pos > (^uint64(0)-d)/36 {
			return 0, false // overflow
		}
		pos = pos*36 + d
	}
	return pos, true
}

func isDigit36(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }

func appendBase36(b []byte, v uint64) []byte {
	var tmp [13]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits36[v%36]
		v /= 36
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ValidateEvent reports whether a store may append e: a custom id (e.ID
// non-empty) must be valid UTF-8 of at most [MaxIDLen] bytes without CR, LF
// or NUL, so that it reaches the client unchanged and comes back as the same
// Last-Event-ID; the type must not contain CR, LF or NUL; Retry must not be
// negative. Errors wrap [ErrInvalidEvent].
//
// A store also refuses custom ids in the form of the ids it generates itself,
// with or without the leading "#" (see [Epoch.Pos]); ValidateEvent cannot
// check that, as it does not know the store's epoch.
func ValidateEvent(e *Event) error {
	if e.ID != "" {
		switch {
		case len(e.ID) > MaxIDLen:
			return fmt.Errorf("%w: custom id of %d bytes exceeds %d", ErrInvalidEvent, len(e.ID), MaxIDLen)
		case strings.ContainsAny(e.ID, "\r\n\x00"):
			return fmt.Errorf("%w: custom id %q contains CR, LF or NUL", ErrInvalidEvent, e.ID)
		case !utf8.ValidString(e.ID):
			return fmt.Errorf("%w: custom id %q is not valid UTF-8", ErrInvalidEvent, e.ID)
		}
	}
	if strings.ContainsAny(e.Type, "\r\n\x00") {
		return fmt.Errorf("%w: type %q contains CR, LF or NUL", ErrInvalidEvent, e.Type)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: negative retry %v", ErrInvalidEvent, e.Retry)
	}
	return nil
}

// EventSize is the size of e as counted by byte-based retention:
// len(ID) + len(Type) + len(Data) + the length of every topic. It is what the
// event costs beyond fixed overhead; stores bound event count as well, which
// bounds that overhead.
func EventSize(e *Event) int {
	n := len(e.ID) + len(e.Type) + len(e.Data)
	for _, t := range e.Topics {
		n += len(t)
	}
	return n
}
