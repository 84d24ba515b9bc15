package loadgen

import (
	"strings"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	m := marker("abcd0123")
	for _, size := range []int{0, 10, 100, 1000} {
		b := appendPayload([]byte("prefix "), m, 3, 12345, 987654321, size)
		data := string(b[len("prefix "):])
		if size > 30 && len(data) != size {
			t.Errorf("size %d: payload is %d bytes", size, len(data))
		}
		pub, seq, ts, ok := parsePayload(`{"x": "`+data+`"}`, m)
		if !ok || pub != 3 || seq != 12345 || ts != 987654321 {
			t.Errorf("size %d: parsed %d %d %d %v", size, pub, seq, ts, ok)
		}
	}
	for _, data := range []string{
		"", "hello", "sb:abcd0123:", "sb:abcd0123:1:2", "sb:abcd0123:1:2:", "sb:abcd0123:x:2:3",
		"sb:other000:1:2:3", "sb:abcd0123:1:" + strings.Repeat("9", 30) + ":3",
	} {
		if _, _, _, ok := parsePayload(data, m); ok {
			t.Errorf("%q parsed", data)
		}
	}
}

func TestSeqTrack(t *testing.T) {
	var tr seqTrack
	var holes, dups, late, unique int64
	see := func(seqs ...int64) {
		for _, s := range seqs {
			a := tr.see(s)
			holes += a.holes
			if a.dup {
				dups++
			}
			if a.late {
				late++
			}
			if a.unique {
				unique++
			}
		}
	}
	see(0, 1, 2, 3)
	if holes != 0 || dups != 0 || late != 0 || unique != 4 {
		t.Fatalf("in order: %d %d %d %d", holes, dups, late, unique)
	}
	see(6) // 4 and 5 missing
	if holes != 2 {
		t.Fatalf("holes %d after a skip of 2", holes)
	}
	see(4) // one comes late
	if holes != 1 || late != 1 {
		t.Fatalf("holes %d late %d after a late arrival", holes, late)
	}
	see(4, 6, 2) // duplicates, old and new
	if dups != 3 || late != 1 || unique != 6 {
		t.Fatalf("dups %d late %d unique %d", dups, late, unique)
	}
	see(200) // a jump past the window
	see(5)   // too old to tell: counted late, fills its hole
	if holes != 1+193-1 || late != 2 {
		t.Fatalf("holes %d late %d after a long jump", holes, late)
	}
}
