package boltstore

import (
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

func FuzzDecode(f *testing.F) {
	ep := store.Epoch("abc")
	for _, e := range []store.Event{
		{},
		{ID: "custom", Type: "t", Data: "d", Topics: []string{"a", "bb"}, Retry: time.Second, Private: true},
		{Data: "line\nline", Topics: []string{""}},
	} {
		f.Add(encode(nil, &e, e.ID != "", 42), uint64(7))
	}
	f.Fuzz(func(t *testing.T, v []byte, pos uint64) {
		e, _, err := decode(v, pos, ep, nil)
		n, cid, ok := size(v, pos, ep)
		if (err == nil) != ok {
			t.Fatalf("decode error %v but size ok=%v", err, ok)
		}
		if err != nil {
			return
		}
		if n != store.EventSize(&e) {
			t.Fatalf("size %d, EventSize of the decoded event %d", n, store.EventSize(&e))
		}
		if cid != nil && string(cid) != e.ID || cid == nil && e.ID != ep.ID(pos) {
			t.Fatalf("custom id %q, decoded id %q", cid, e.ID)
		}
		// A decoded record encodes back to itself.
		back := encode(nil, &e, v[8]&flagCustom != 0, e.Time.UnixNano())
		e2, _, err := decode(back, pos, ep, nil)
		if err != nil || e2.ID != e.ID || e2.Data != e.Data || e2.Type != e.Type || !slices.Equal(e2.Topics, e.Topics) ||
			e2.Retry != e.Retry || e2.Private != e.Private || !e2.Time.Equal(e.Time) {
			t.Fatalf("round trip: %+v -> %+v (%v)", e, e2, err)
		}
	})
}
