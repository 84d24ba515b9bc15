package natsstore

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestServerAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"2.11.0": true, "2.11.9": true, "v2.12.0-beta.1": true, "2.15.2": true, "3.0.0": true,
		"2.10.24": false, "2.9.10": false, "1.99.0": false, "": false, "x.y": false, "2.1x.0": false,
	} {
		if got := serverAtLeast(v, 2, 11); got != want {
			t.Errorf("serverAtLeast(%q, 2, 11) = %v", v, got)
		}
	}
}

// readBatch takes sequences from the messages' headers, or derives them for
// messages without headers only when the end of the batch proves them
// contiguous from the first sequence asked for.
func TestReadBatch(t *testing.T) {
	const inbox = "_INBOX.x."
	msg := func(subj string, h nats.Header, data string) *nats.Msg {
		return &nats.Msg{Subject: subj, Header: h, Data: []byte(data)}
	}
	batch := func(data string) *nats.Msg { return msg(inbox+"1", nil, data) }
	headed := func(seq string) *nats.Msg {
		return msg(inbox+"1", nats.Header{"Nats-Sequence": {seq}, "Nats-Num-Pending": {"5"}, "Nats-Last-Sequence": {"0"}}, "d"+seq)
	}
	eob := func(last string) *nats.Msg {
		return msg(inbox+"1", nats.Header{"Status": {"204"}, "Description": {"EOB"}, "Nats-Num-Pending": {"0"}, "Nats-Last-Sequence": {last}}, "")
	}
	status := func(code string) *nats.Msg { return msg(inbox+"1", nats.Header{"Status": {code}}, "") }
	for _, c := range []struct {
		name    string
		replies []*nats.Msg
		seqs    []uint64 // nil: none
		ok      bool
		err     error
	}{
		{"bare, contiguous", []*nats.Msg{batch("a"), batch("b"), batch("c"), eob("12")}, []uint64{10, 11, 12}, true, nil},
		{"bare, one missing", []*nats.Msg{batch("a"), batch("b"), eob("12")}, nil, false, nil},
		{"bare, before the first asked for", []*nats.Msg{batch("a"), batch("b"), eob("9")}, nil, false, nil},
		{"headers", []*nats.Msg{headed("11"), headed("13"), eob("13")}, []uint64{11, 13}, true, nil},
		{"others' replies are skipped", []*nats.Msg{msg(inbox+"i", nil, "{}"), msg(inbox+"0", nil, "old"), batch("a"), eob("10")}, []uint64{10}, true, nil},
		{"nothing there", []*nats.Msg{status("404")}, nil, true, nil},
		{"no responders", []*nats.Msg{status("503")}, nil, false, errNoBatch},
		{"no batch support", []*nats.Msg{msg(inbox+"1", nats.Header{"Nats-Sequence": {"10"}}, "a")}, nil, false, errNoBatch},
		{"bad request", []*nats.Msg{status("408")}, nil, false, errors.New("")},
		{"bad sequence", []*nats.Msg{msg(inbox+"1", nats.Header{"Nats-Sequence": {"x"}, "Nats-Num-Pending": {"1"}}, "a")}, nil, false, errCorrupt},
	} {
		r := &replies{s: &Store{ctx: context.Background()}, inbox: inbox, ch: make(chan *nats.Msg, 16), batch: inbox + "1", from: 10}
		for _, m := range c.replies {
			r.ch <- m
		}
		msgs, seqs, ok, err := r.readBatch(context.Background())
		switch {
		case c.err == nil && err != nil, c.err != nil && err == nil, c.err != nil && c.err.Error() != "" && !errors.Is(err, c.err):
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		case ok != c.ok || !slices.Equal(seqs, c.seqs) || len(msgs) != len(c.seqs):
			t.Errorf("%s: %d messages, sequences %v, ok %v; want %v, %v", c.name, len(msgs), seqs, ok, c.seqs, c.ok)
		}
	}
}
