package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batched direct gets (nats-server 2.11+, ADR-31): a request to
// $JS.API.DIRECT.GET.<stream> with {"seq":n,"batch":k,"next_by_subj":">"}
// is answered on the request's reply subject by up to k messages from
// sequence n on, each with its sequence in a Nats-Sequence header, then a
// "204 EOB" status; "404" when nothing is at or after n. No consumer is
// created, nothing is acknowledged.
//
// With "no_hdr":true (nats-server 2.15 honours it; servers that do not
// ignore it) the messages come without headers, so without their
// sequences; the end of batch still has Nats-Last-Sequence.
//
// A History sends its requests with one reply subscription (an inbox
// INBOX.*): the stream's info is answered on INBOX.i and each batch on
// INBOX.<its number>. The info request goes out first, so that its answer
// is not queued behind the whole first batch.
const (
	// directBatchBytes bounds the bytes of one batch (the server counts
	// subject, headers and payload, and stops after the message that
	// crosses it): the read-ahead of a History.
	directBatchBytes = 4 << 20
	// directTimeout bounds each wait for a reply (not the caller's time
	// between events).
	directTimeout = 5 * time.Second
)

// errNoBatch reports a server that does not batch direct gets.
var errNoBatch = errors.New("the server does not batch direct gets")

// serverAtLeast reports whether the server version v ("2.11.9",
// "2.12.0-beta") is at least major.minor.
func serverAtLeast(v string, major, minor int) bool {
	v = strings.TrimPrefix(v, "v")
	ma, rest, _ := strings.Cut(v, ".")
	mi, _, _ := strings.Cut(rest, ".")
	if i := strings.IndexFunc(mi, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mi = mi[:i]
	}
	maj, err1 := strconv.Atoi(ma)
	mn, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || maj == major && mn >= minor
}

// directBatch reports whether History reads with batched direct gets: the
// connected server is nats-server 2.11 or later (and the test knob does
// not force consumers).
func (s *Store) directBatch() bool {
	return !s.consumerHistory && serverAtLeast(s.nc.ConnectedServerVersion(), 2, 11)
}

// replies receives the answers to one History's requests.
type replies struct {
	s     *Store
	inbox string // "_INBOX.<nuid>."
	sub   *nats.Subscription
	ch    chan *nats.Msg
	batch string      // the reply subject of the batch in progress
	from  uint64      // its first sequence
	n     int         // batches requested
	early []*nats.Msg // the first batch's replies that came before the info
	msgs  []*nats.Msg // readBatch's result, reused
	seqs  []uint64    // readBatch's result, reused
	timer *time.Timer // next's, reused
}

// newReplies subscribes to a new inbox. Its buffer holds a batch of up to
// batch messages, its end and the info: a reader that waits for a batch's
// end before asking for the next is never a slow consumer.
func (s *Store) newReplies(batch int) (*replies, error) {
	r := &replies{s: s, inbox: s.nc.NewInbox() + ".", ch: make(chan *nats.Msg, batch+2)}
	var err error
	if r.sub, err = s.nc.ChanSubscribe(r.inbox+"*", r.ch); err != nil {
		return nil, err
	}
	return r, nil
}

// close ends the subscription; replies still to come are dropped.
func (r *replies) close() {
	_ = r.sub.Unsubscribe()
	if r.timer != nil {
		r.timer.Stop()
	}
}

// requestInfo asks for the stream's info.
func (r *replies) requestInfo() error {
	return r.s.nc.PublishRequest(r.s.infoSubj, r.inbox+"i", nil)
}

// requestBatch asks for up to n messages from sequence from on, without
// their headers when noHdr (a server that ignores no_hdr sends them). The
// replies of an earlier batch are ignored from then on.
func (r *replies) requestBatch(from uint64, n int, noHdr bool) error {
	r.n++
	r.batch = r.inbox + strconv.Itoa(r.n)
	r.from = from
	req := make([]byte, 0, 112)
	req = append(req, `{"seq":`...)
	req = strconv.AppendUint(req, from, 10)
	req = append(req, `,"batch":`...)
	req = strconv.AppendInt(req, int64(n), 10)
	req = append(req, `,"max_bytes":`...)
	req = strconv.AppendInt(req, directBatchBytes, 10)
	if noHdr {
		req = append(req, `,"no_hdr":true`...)
	}
	req = append(req, `,"next_by_subj":">"}`...)
	return r.s.nc.PublishRequest(r.s.directSubj, r.batch, req)
}

// next returns the next reply, waiting at most directTimeout for it.
func (r *replies) next(ctx context.Context) (*nats.Msg, error) {
	select {
	case m := <-r.ch:
		return m, nil
	default:
	}
	if r.timer == nil {
		r.timer = time.NewTimer(directTimeout)
	} else {
		r.timer.Reset(directTimeout)
	}
	select {
	case m := <-r.ch:
		r.timer.Stop()
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.s.ctx.Done():
		return nil, r.s.ctx.Err()
	case <-r.timer.C:
		return nil, nats.ErrTimeout
	}
}

// isInfo reports whether m answers the info request.
func (r *replies) isInfo(m *nats.Msg) bool {
	return len(m.Subject) == len(r.inbox)+1 && m.Subject[len(r.inbox)] == 'i'
}

// streamInfo is what History needs of a stream info response.
type streamInfo struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Created time.Time `json:"created"`
	State   struct {
		Msgs     uint64 `json:"messages"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"state"`
}

// infoState decodes the answer to the info request, as [Store.info].
func (s *Store) infoState(m *nats.Msg) (state, error) {
	if st := m.Header.Get("Status"); st != "" {
		if st == "503" {
			return state{}, fmt.Errorf("stream info: %w", nats.ErrNoResponders)
		}
		return state{}, fmt.Errorf("stream info: status %s %s", st, m.Header.Get("Description"))
	}
	var info streamInfo
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return state{}, fmt.Errorf("stream info: %w", err)
	}
	if e := info.Error; e != nil {
		if e.ErrCode == int(jetstream.JSErrCodeStreamNotFound) {
			return state{}, jetstream.ErrStreamNotFound
		}
		return state{}, fmt.Errorf("stream info: %s (%d)", e.Description, e.ErrCode)
	}
	st := state{epoch: s.setEpoch(info.Created), first: info.State.FirstSeq, last: info.State.LastSeq}
	if info.State.Msgs == 0 || st.first == 0 {
		st.first = st.last + 1
	}
	return st, nil
}

// readBatch returns the messages of the batch in progress and their
// sequences, once its end came: sequences from the messages' headers, or,
// for messages without headers (no_hdr), r.from on when the end of the
// batch proves them contiguous. ok is false when messages without headers
// are not provably contiguous: ask again with headers. The slices are
// reused by the next call.
func (r *replies) readBatch(ctx context.Context) (msgs []*nats.Msg, seqs []uint64, ok bool, err error) {
	msgs, seqs = r.msgs[:0], r.seqs[:0]
	bare := 0 // messages without headers
	for {
		var m *nats.Msg
		if len(r.early) > 0 {
			m, r.early = r.early[0], r.early[1:]
		} else if m, err = r.next(ctx); err != nil {
			return nil, nil, false, err
		}
		if m.Subject != r.batch {
			continue // an earlier batch's, or the info's
		}
		if m.Header == nil {
			bare++
			msgs, seqs = append(msgs, m), append(seqs, 0)
			continue
		}
		if st := m.Header.Get("Status"); st != "" {
			var last uint64
			switch st {
			case "204": // end of batch
				last, err = strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
				if err != nil && bare > 0 {
					return nil, nil, false, fmt.Errorf("direct get: end of batch: last sequence %q: %w", m.Header.Get(jetstream.LastSequenceHeader), errCorrupt)
				}
			case "404": // nothing at or after the sequence
			case "503": // no responders: no direct gets on this stream
				return nil, nil, false, errNoBatch
			default:
				return nil, nil, false, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
			}
			r.msgs, r.seqs = msgs, seqs
			if bare == 0 {
				return msgs, seqs, true, nil
			}
			// len(msgs) distinct increasing sequences from r.from to
			// last: all of them when there are as many as the range holds.
			if bare != len(msgs) || last < r.from || last-r.from+1 != uint64(len(msgs)) {
				return nil, nil, false, nil
			}
			for i := range seqs {
				seqs[i] = r.from + uint64(i)
			}
			return msgs, seqs, true, nil
		}
		if m.Header.Get("Nats-Num-Pending") == "" {
			// A server that ignored "batch" answers with one message and
			// no end of batch.
			return nil, nil, false, errNoBatch
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || seq == 0 {
			return nil, nil, false, fmt.Errorf("direct get: sequence %q: %w", m.Header.Get(jetstream.SequenceHeader), errCorrupt)
		}
		msgs, seqs = append(msgs, m), append(seqs, seq)
	}
}
