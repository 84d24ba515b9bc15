package loadgen

import (
	"strconv"
	"strings"
)

// An event published by the load generator carries, in its data,
//
//	sb:RUN:PUB:SEQ:TS[:xxx…]
//
// RUN is the run's random tag (so events of other runs, replayed from a
// hub's history, are told apart), PUB the publisher's index, SEQ its
// sequence number from 0, and TS the send time in nanoseconds since the
// run's start on the process's monotonic clock; the optional padding makes
// the data the size asked for. Subscribers find the tag anywhere in the
// data, so a server that wraps the published body (in JSON, say) still
// works.

// marker returns the prefix that tags the events of run.
func marker(run string) string { return "sb:" + run + ":" }

// appendPayload appends the data of one event to b, padded with 'x' to
// size bytes when it is shorter.
func appendPayload(b []byte, mark string, pub int, seq, ts int64, size int) []byte {
	start := len(b)
	b = append(b, mark...)
	b = strconv.AppendInt(b, int64(pub), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, ts, 10)
	if pad := size - (len(b) - start); pad > 0 {
		b = append(b, ':')
		for range pad - 1 {
			b = append(b, 'x')
		}
	}
	return b
}

// parsePayload finds the run's tag in data and returns the publisher,
// sequence number and send time after it. ok is false for data without
// the tag or with a malformed payload.
func parsePayload(data, mark string) (pub int, seq, ts int64, ok bool) {
	i := strings.Index(data, mark)
	if i < 0 {
		return 0, 0, 0, false
	}
	s := data[i+len(mark):]
	p, s, ok1 := cutNumber(s, true)
	q, s, ok2 := cutNumber(s, true)
	t, _, ok3 := cutNumber(s, false)
	if !ok1 || !ok2 || !ok3 || p > 1<<20 {
		return 0, 0, 0, false
	}
	return int(p), q, t, true
}

// cutNumber parses the decimal number at the start of s. With colon, the
// number must be followed by ':', which is consumed.
func cutNumber(s string, colon bool) (n int64, rest string, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		if i >= 18 {
			return 0, s, false
		}
		n = n*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	if colon {
		if i == len(s) || s[i] != ':' {
			return 0, s, false
		}
		i++
	}
	return n, s[i:], true
}

// seqTrack follows the sequence numbers one connection receives from one
// publisher. It remembers which of the 64 numbers below the next expected
// one arrived, so a late arrival is told from a duplicate within that
// window.
type seqTrack struct {
	next   int64  // the number after the highest one received
	window uint64 // bit k: next-1-k was received
}

// arrival classifies one received sequence number.
type arrival struct {
	unique bool  // first time this number arrived
	holes  int64 // change in the count of numbers skipped and not (yet) received
	dup    bool  // received before
	late   bool  // arrived after a higher number (out of order)
}

func (t *seqTrack) see(seq int64) arrival {
	switch {
	case seq == t.next:
		t.window = t.window<<1 | 1
		t.next++
		return arrival{unique: true}
	case seq > t.next:
		skipped := seq - t.next
		if skipped+1 >= 64 {
			t.window = 1
		} else {
			t.window = t.window<<(skipped+1) | 1
		}
		t.next = seq + 1
		return arrival{unique: true, holes: skipped}
	}
	k := t.next - 1 - seq
	if k >= 64 {
		// Too far back to tell: count it as a late arrival.
		return arrival{unique: true, late: true, holes: -1}
	}
	if t.window>>k&1 == 1 {
		return arrival{dup: true}
	}
	t.window |= 1 << k
	return arrival{unique: true, late: true, holes: -1}
}
