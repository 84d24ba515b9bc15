package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
)

// TestCluster runs three "sluice serve" processes, A, B and C, on one Redis
// log, then on one NATS stream (issue 7). Two publishers publish through A,
// some events with their own ids; two subscribers stream from B and two
// from C. B is killed with SIGKILL while it streams: its subscribers
// reconnect to C with their Last-Event-ID. Every subscriber must end with
// every event exactly once, all in the same order, each publisher's events
// in the order it published them, each with the id the publisher was given.
// Then a fresh subscriber on C resumes from a publisher-supplied id
// published through A and gets exactly the events after it.
func TestCluster(t *testing.T) {
	for _, ss := range sharedStores {
		t.Run(ss.kind, func(t *testing.T) { testCluster(t, ss.kind) })
	}
}

// clusterSub is one subscriber of TestCluster.
type clusterSub struct {
	name    string
	urls    []string      // the hubs it tries, in order; it moves on when one fails
	ready   chan struct{} // closed once the first connection is open
	quarter chan struct{} // closed once it has received n/4 events
	done    chan struct{} // closed when its stream is over

	mu      sync.Mutex
	events  []sse.Event
	err     error
	conns   []string // hub and Last-Event-ID of every connection opened
	current int      // index in urls of the hub it uses
}

func (s *clusterSub) received() []sse.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// connect is the subscriber's ConnectFunc: it opens the stream on its
// current hub, and when that hub cannot be reached moves on to the next one
// at once, as a load balancer would. The stream resumes with lastEventID.
func (s *clusterSub) connect(ctx context.Context, lastEventID string) (io.ReadCloser, error) {
	var err error
	for range s.urls {
		s.mu.Lock()
		u := s.urls[s.current]
		s.mu.Unlock()
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if rerr != nil {
			return nil, sse.Permanent(rerr)
		}
		var c sse.Client
		connect, cerr := c.ConnectFunc(req)
		if cerr != nil {
			return nil, sse.Permanent(cerr)
		}
		var body io.ReadCloser
		if body, err = connect(ctx, lastEventID); err == nil {
			s.mu.Lock()
			first := len(s.conns) == 0
			s.conns = append(s.conns, u+" Last-Event-ID="+lastEventID)
			s.mu.Unlock()
			if first {
				close(s.ready)
			}
			return body, nil
		}
		var se *sse.StatusError
		if errors.As(err, &se) || ctx.Err() != nil {
			return nil, err // the hub answered: not a reason to move on
		}
		s.mu.Lock()
		s.current = (s.current + 1) % len(s.urls)
		s.mu.Unlock()
	}
	return nil, err
}

// run streams until the end marker, an error, or ctx is done.
func (s *clusterSub) run(ctx context.Context, quarter int) {
	defer close(s.done)
	for e, err := range sse.Stream(ctx, s.connect, sse.WithRetry(20*time.Millisecond), sse.WithMaxDelay(200*time.Millisecond)) {
		if err != nil { // a reset, the context, or a permanent error
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.events = append(s.events, e)
		k := len(s.events)
		s.mu.Unlock()
		if k == quarter {
			close(s.quarter)
		}
		if e.Data == clusterEnd {
			return
		}
	}
	s.mu.Lock()
	s.err = errors.New("the stream ended before the end marker")
	s.mu.Unlock()
}

// clusterEnd is the data of the event published last.
const clusterEnd = "end"

func testCluster(t *testing.T, kind string) {
	bin := buildSluice(t)
	dsn := sharedStoreDSN(t, kind)
	const key = "cluster-test-secret"
	token, err := mercure.NewToken([]byte(key), "", []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--addr", "127.0.0.1:0", "--store", dsn, "--jwt-key", key, "--anonymous", "--demo=false"}
	hubA := startHubProc(t, bin, args...)
	hubB := startHubProc(t, bin, args...)
	hubC := startHubProc(t, bin, args...)
	logs := func() string {
		return fmt.Sprintf("A:\n%s\nB:\n%s\nC:\n%s", hubA.log(), hubB.log(), hubC.log())
	}

	// Generous: a hang fails instead of blocking; a pass takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-ctx.Done():
			t.Fatalf("%s: timed out\n%s", what, logs())
		}
	}

	const (
		publishers = 2
		perPub     = 300
		n          = publishers * perPub
	)
	topicURL := func(base string) string {
		return base + mercure.HubPath + "?topic=" + url.QueryEscape("https://example.com/cluster")
	}
	var subs []*clusterSub
	for i, start := range []*hubProc{hubB, hubB, hubC, hubC} {
		s := &clusterSub{
			name:    fmt.Sprintf("sub%d@%s", i, map[*hubProc]string{hubB: "B", hubC: "C"}[start]),
			urls:    []string{topicURL(start.base), topicURL(hubC.base)},
			ready:   make(chan struct{}),
			quarter: make(chan struct{}),
			done:    make(chan struct{}),
		}
		subs = append(subs, s)
		go s.run(ctx, n/4)
	}
	defer func() {
		cancel()
		for _, s := range subs {
			<-s.done
		}
	}()
	for _, s := range subs {
		wait(s.ready, s.name+" connecting")
	}

	// Publish through A: each publisher publishes half its events, waits
	// for B to be killed, then publishes the rest. Every 10th event
	// carries a publisher-supplied id.
	killed := make(chan struct{})
	type published struct{ id, data string }
	sent := make([][]published, publishers)
	pubErr := make(chan error, publishers)
	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for i := range perPub {
				if i == perPub/2 {
					select {
					case <-killed:
					case <-ctx.Done():
						pubErr <- ctx.Err()
						return
					}
				}
				data := fmt.Sprintf("p%d-%d", p, i)
				form := url.Values{"topic": {"https://example.com/cluster"}, "data": {data}}
				if i%10 == 5 {
					form.Set("id", fmt.Sprintf("urn:cluster:p%d:%d", p, i))
				}
				code, id, err := post(ctx, hubA.base, token, form)
				if err != nil || code != http.StatusOK || id == "" {
					pubErr <- fmt.Errorf("publish %s through A: %d %q %v", data, code, id, err)
					return
				}
				if want := form.Get("id"); want != "" && id != want {
					pubErr <- fmt.Errorf("publish %s with id %s: the hub answered %s", data, want, id)
					return
				}
				sent[p] = append(sent[p], published{id, data})
			}
		})
	}

	// Kill B once each of its subscribers has a quarter of the events.
	for _, s := range subs[:2] {
		wait(s.quarter, s.name+" receiving the first events")
	}
	atKill := []int{len(subs[0].received()), len(subs[1].received())}
	if err := hubB.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("B exited cleanly after SIGKILL")
	}
	close(killed)
	t.Logf("B killed when its subscribers had %v of %d events", atKill, n)

	pubs.Wait()
	close(pubErr)
	for err := range pubErr {
		t.Fatal(err)
	}
	if code, _, err := post(ctx, hubA.base, token, url.Values{"topic": {"https://example.com/cluster"}, "data": {clusterEnd}}); err != nil || code != 200 {
		t.Fatalf("publishing the end marker: %d %v", code, err)
	}
	for _, s := range subs {
		wait(s.done, s.name+" receiving every event")
	}

	// Every subscriber: every event once, with its id, in one order.
	idOf := map[string]string{}
	for p := range publishers {
		for _, e := range sent[p] {
			idOf[e.data] = e.id
		}
	}
	var order []string // data, in the order of the first subscriber
	for _, s := range subs {
		s.mu.Lock()
		serr, conns := s.err, s.conns
		s.mu.Unlock()
		if serr != nil {
			t.Fatalf("%s: %v (connections %q)", s.name, serr, conns)
		}
		got := s.received()
		if len(got) != n+1 || got[n].Data != clusterEnd {
			t.Errorf("%s: %d events before the end marker, want %d", s.name, len(got)-1, n)
		}
		got = got[:len(got)-1]
		seen := map[string]bool{}
		var datas []string
		for _, e := range got {
			if seen[e.Data] {
				t.Errorf("%s: %s (%s) received twice", s.name, e.Data, e.ID)
			}
			seen[e.Data] = true
			if want, ok := idOf[e.Data]; !ok {
				t.Errorf("%s: unexpected event %+v", s.name, e)
			} else if e.ID != want || e.Type != "message" {
				t.Errorf("%s: %s has id %q type %q, want id %q, type message", s.name, e.Data, e.ID, e.Type, want)
			}
			datas = append(datas, e.Data)
		}
		for d := range idOf {
			if !seen[d] {
				t.Errorf("%s: %s never received", s.name, d)
			}
		}
		if order == nil {
			order = datas
		} else if !slices.Equal(datas, order) {
			i := 0
			for i < min(len(datas), len(order)) && datas[i] == order[i] {
				i++
			}
			t.Errorf("%s: order differs from %s from event %d", s.name, subs[0].name, i)
		}
		last := make([]int, publishers) // each publisher's events in its order
		for _, d := range datas {
			var p, i int
			if _, err := fmt.Sscanf(d, "p%d-%d", &p, &i); err != nil || p >= publishers {
				t.Fatalf("%s: unexpected data %q", s.name, d)
			}
			if i < last[p] {
				t.Errorf("%s: p%d-%d after p%d-%d", s.name, p, i, p, last[p])
			}
			last[p] = i
		}
		// B's subscribers went on at C with their last id; C's stayed.
		onB := strings.Contains(s.name, "@B")
		if onB && (len(conns) < 2 || !strings.HasPrefix(conns[len(conns)-1], topicURL(hubC.base)+" ") || strings.HasSuffix(conns[len(conns)-1], "=")) {
			t.Errorf("%s: connections %q, want a resumption on C with a Last-Event-ID", s.name, conns)
		}
		if !onB && len(conns) != 1 {
			t.Errorf("%s: connections %q, want one", s.name, conns)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range subs[:2] {
		t.Logf("%s: connections %q", s.name, s.conns)
	}

	// A fresh subscriber on C resumes from a publisher-supplied id published
	// through A, from the second half (after B's death).
	from := -1
	for i := n / 2; i < n; i++ {
		if strings.HasPrefix(idOf[order[i]], "urn:") {
			from = i
			break
		}
	}
	if from < 0 {
		t.Fatal("no publisher-supplied id in the second half")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, topicURL(hubC.base), nil)
	req.Header.Set("Last-Event-ID", idOf[order[from]])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Sluice-Reset") != "" {
		t.Fatalf("resuming on C from %s: status %d, Sluice-Reset %q", idOf[order[from]], res.StatusCode, res.Header.Get("Sluice-Reset"))
	}
	next, stopIter := iterPull(sse.NewReader(res.Body).All())
	defer stopIter()
	want := append(slices.Clone(order[from+1:]), clusterEnd, "after")
	for i, d := range want {
		if d == "after" { // a live event: nothing may come between
			if code, _, err := post(ctx, hubA.base, token, url.Values{"topic": {"https://example.com/cluster"}, "data": {"after"}}); err != nil || code != 200 {
				t.Fatalf("publishing through A: %d %v", code, err)
			}
		}
		e, err := next()
		if err != nil {
			t.Fatalf("resumed stream, event %d: %v", i, err)
		}
		if e.Data != d || (idOf[d] != "" && e.ID != idOf[d]) {
			t.Fatalf("resumed stream, event %d: got %s (%s), want %s (%s)", i, e.Data, e.ID, d, idOf[d])
		}
	}
}
