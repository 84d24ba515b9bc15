package main

// The HA tests: three "sluice serve" hubs on a highly available log (a
// NATS cluster with an R3 stream, Redis with replicas and Sentinels, a
// Redis Cluster) while the log's leader is killed under a steady publish
// load. They check what the README promises across a failover: every
// acknowledged publish is in the log (NATS; Redis with wait=1), every
// subscriber receives the log in one order, each event once, and where
// the new leader lacks events a hub had delivered, the subscribers get
// the reset signal rather than a silent gap. They report the publish
// stall, the delivery latency around the failover and, for Redis without
// wait, how many acknowledged events were lost. Run with make test-ha
// (SLUICE_TEST_HA=1).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

const haTopic = "https://example.com/ha"

// haSub is a subscriber of an HA test: it records every event with the
// time it arrived, and every reset, and goes on after a reset as an
// application does (after resynchronising its state).
type haSub struct {
	*clusterSub
	recv   []time.Time // when each event of events arrived
	resets []haReset
}

type haReset struct {
	at  int // events received before it
	err *sse.ResetError
}

func (s *haSub) run(ctx context.Context) {
	defer close(s.done)
	for e, err := range sse.Stream(ctx, s.connect, sse.WithRetry(20*time.Millisecond), sse.WithMaxDelay(200*time.Millisecond)) {
		if err != nil {
			var re *sse.ResetError
			s.mu.Lock()
			if errors.As(err, &re) {
				s.resets = append(s.resets, haReset{at: len(s.events), err: re})
				s.mu.Unlock()
				continue
			}
			s.err = err
			s.mu.Unlock()
			return
		}
		now := time.Now()
		s.mu.Lock()
		s.events = append(s.events, e)
		s.recv = append(s.recv, now)
		s.mu.Unlock()
		if e.Data == clusterEnd {
			return
		}
	}
}

// haPub is one publish attempt.
type haPub struct {
	data       string
	start, end time.Time
	ok         bool // acknowledged: 200 with an id
}

// haRun is one HA test run: hubs on one log, subscribers on each hub,
// publishers at a steady rate.
type haRun struct {
	t     *testing.T
	hubs  []*hubProc
	token string
	subs  []*haSub
	ctx   context.Context

	stop chan struct{} // closed to stop the publishers
	pubs sync.WaitGroup
	mu   sync.Mutex
	sent []haPub
	// marks are the moments of the run's events (kills, restarts), in
	// order, for the report.
	marks []haMark
}

type haMark struct {
	what string
	at   time.Time
}

// startHA starts three hubs on dsn and a subscriber on each.
func startHA(t *testing.T, ctx context.Context, dsn string) *haRun {
	t.Helper()
	bin := buildSluice(t)
	const key = "ha-test-secret"
	token, err := mercure.NewToken([]byte(key), "", []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := &haRun{t: t, token: token, ctx: ctx, stop: make(chan struct{})}
	args := []string{"--addr", "127.0.0.1:0", "--store", dsn, "--jwt-key", key, "--anonymous", "--demo=false"}
	for range 3 {
		r.hubs = append(r.hubs, startHubProc(t, bin, args...))
	}
	topicURL := func(h *hubProc) string { return h.base + mercure.HubPath + "?topic=" + url.QueryEscape(haTopic) }
	for i, h := range r.hubs {
		s := &haSub{clusterSub: &clusterSub{
			name:  fmt.Sprintf("sub@hub%d", i),
			urls:  []string{topicURL(h)},
			ready: make(chan struct{}),
			done:  make(chan struct{}),
		}}
		r.subs = append(r.subs, s)
		go s.run(ctx)
	}
	t.Cleanup(func() {
		for _, s := range r.subs {
			<-s.done // ctx ends with the test
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", r.logs())
		}
	})
	for _, s := range r.subs {
		r.wait(s.ready, s.name+" connecting")
	}
	return r
}

// logs returns the hubs' logs, without their debug lines and the errors of
// the publishes that failed (the report counts them).
func (r *haRun) logs() string {
	var b strings.Builder
	for i, h := range r.hubs {
		fmt.Fprintf(&b, "hub%d:\n", i)
		for _, l := range strings.Split(h.log(), "\n") {
			if l != "" && !strings.Contains(l, `"level":"DEBUG"`) && !strings.Contains(l, `"msg":"mercure: publish failed"`) {
				fmt.Fprintf(&b, "%s\n", l)
			}
		}
	}
	return b.String()
}

func (r *haRun) wait(c <-chan struct{}, what string) {
	r.t.Helper()
	select {
	case <-c:
	case <-r.ctx.Done():
		r.t.Fatalf("%s: timed out\n%s", what, r.logs())
	}
}

func (r *haRun) mark(what string) {
	r.mu.Lock()
	r.marks = append(r.marks, haMark{what, time.Now()})
	r.mu.Unlock()
	r.t.Logf("%s", what)
}

// publish starts n publishers, publisher p through hub p%3, each
// publishing one event every interval (or as soon as the previous one is
// answered, when that takes longer) until stopPublishers.
func (r *haRun) publish(n int, interval time.Duration) {
	for p := range n {
		hub := r.hubs[p%len(r.hubs)]
		r.pubs.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-r.stop:
					return
				case <-tick.C:
				}
				data := fmt.Sprintf("p%d-%d", p, i)
				ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
				start := time.Now()
				code, id, err := post(ctx, hub.base, r.token, url.Values{"topic": {haTopic}, "data": {data}})
				cancel()
				r.mu.Lock()
				r.sent = append(r.sent, haPub{data: data, start: start, end: time.Now(), ok: err == nil && code == http.StatusOK && id != ""})
				r.mu.Unlock()
			}
		})
	}
}

// acked waits until at least n more publishes were acknowledged.
func (r *haRun) acked(n int, what string) {
	r.t.Helper()
	count := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		k := 0
		for _, p := range r.sent {
			if p.ok {
				k++
			}
		}
		return k
	}
	target := count() + n
	pollUntil(r.t, what, func(context.Context) (bool, error) { return count() >= target, nil })
}

// finish stops the publishers, publishes the end marker and waits for
// every subscriber to receive it.
func (r *haRun) finish() {
	r.t.Helper()
	close(r.stop)
	r.pubs.Wait()
	pollUntil(r.t, "publishing the end marker", func(ctx context.Context) (bool, error) {
		code, _, err := post(ctx, r.hubs[0].base, r.token, url.Values{"topic": {haTopic}, "data": {clusterEnd}})
		return err == nil && code == http.StatusOK, err
	})
	for _, s := range r.subs {
		r.wait(s.done, s.name+" receiving the end marker")
	}
}

// haLog reads the whole log as the store holds it at the end.
func haLog(t *testing.T, st store.Store) []store.Event {
	t.Helper()
	defer st.Close()
	var evs []store.Event
	for e, err := range st.History(context.Background(), "", nil) {
		if err != nil {
			t.Fatalf("reading the log: %v", err)
		}
		evs = append(evs, e)
	}
	return evs
}

// haOutcome is what verify found.
type haOutcome struct {
	acked, ackedLost int // acknowledged publishes, and those not in the log
	delivered        int // events delivered to some subscriber and not in the log
	resets           int // resets, over all subscribers
}

// verify checks every subscriber's stream against the final log: one
// order, each event once, and no silent gap: between resets a subscriber
// receives a run of consecutive events of the log, the run after a reset
// starts right after the reset's head, an event the log lost is followed
// by a reset before any event of the log, and the last run ends at the
// end marker. It does not require the acknowledged events to be in the
// log: the caller decides (see haOutcome).
func (r *haRun) verify(final []store.Event) haOutcome {
	t := r.t
	t.Helper()
	idx := map[string]int{} // data -> index in final
	idIdx := map[string]int{}
	for i, e := range final {
		idx[e.Data] = i
		idIdx[e.ID] = i
	}
	var out haOutcome
	r.mu.Lock()
	attempted := map[string]bool{}
	for _, p := range r.sent {
		attempted[p.data] = true
		if p.ok {
			out.acked++
			if _, in := idx[p.data]; !in {
				out.ackedLost++
			}
		}
	}
	r.mu.Unlock()
	lostDelivered := map[string]bool{}
	for _, s := range r.subs {
		s.mu.Lock()
		evs, resets, serr, conns := slices.Clone(s.events), slices.Clone(s.resets), s.err, slices.Clone(s.conns)
		s.mu.Unlock()
		if serr != nil {
			t.Errorf("%s: %v (connections %q)", s.name, serr, conns)
			continue
		}
		out.resets += len(resets)
		seen := map[string]bool{}
		prev, lostSince := -1, "" // index in final of the last event of the run; a lost event received in it
		ri := 0
		for i, e := range evs {
			for ri < len(resets) && resets[ri].at == i {
				h, ok := idIdx[resets[ri].err.Head]
				if !ok && resets[ri].err.Head != "" {
					t.Errorf("%s: reset %v: its head is not in the log", s.name, resets[ri].err)
				}
				prev, lostSince = h, ""
				if !ok {
					prev = -1
				}
				ri++
			}
			if seen[e.Data] {
				t.Errorf("%s: %s received twice", s.name, e.Data)
			}
			seen[e.Data] = true
			if e.Data != clusterEnd && !attempted[e.Data] {
				t.Errorf("%s: received %q, never published", s.name, e.Data)
			}
			k, in := idx[e.Data]
			if !in {
				lostDelivered[e.Data] = true
				if lostSince == "" {
					lostSince = e.Data
				}
				continue
			}
			switch {
			case lostSince != "":
				t.Errorf("%s: received %s (position %d of the log) after %s, which the log lost, with no reset between: a silent renumbering", s.name, e.Data, k, lostSince)
			case k != prev+1:
				t.Errorf("%s: received %s (position %d of the log) after position %d: a silent gap", s.name, e.Data, k, prev)
			}
			prev = k
		}
		if len(evs) == 0 || evs[len(evs)-1].Data != clusterEnd {
			t.Errorf("%s: did not end with the end marker", s.name)
		}
		if len(resets) > 0 {
			t.Logf("%s: %d events, resets %v", s.name, len(evs), resets)
		}
	}
	out.delivered = len(lostDelivered)
	return out
}

// report logs the publish stall and the delivery latency around each
// mark: how long after it the first publish started after it was
// acknowledged, the longest wait of a publish that began within 10 s
// after it, and the latency from a publish's start to its delivery for
// the events published before the first mark, and within 10 s after
// each.
func (r *haRun) report() {
	t := r.t
	r.mu.Lock()
	defer r.mu.Unlock()
	start := map[string]time.Time{}
	for _, p := range r.sent {
		start[p.data] = p.start
	}
	type latency struct {
		at  time.Time
		d   time.Duration
		sub int
	}
	var lat []latency
	if os.Getenv("SLUICE_TEST_HA_LOGS") == "1" {
		t.Logf("%s", r.logs())
	}
	for si, s := range r.subs {
		s.mu.Lock()
		for i, e := range s.events {
			if st, ok := start[e.Data]; ok {
				lat = append(lat, latency{st, s.recv[i].Sub(st), si})
			}
		}
		s.mu.Unlock()
	}
	window := func(from, to time.Time) string {
		var ds []time.Duration
		perSub := make([]time.Duration, len(r.subs))
		for _, l := range lat {
			if !l.at.Before(from) && l.at.Before(to) {
				ds = append(ds, l.d)
				perSub[l.sub] = max(perSub[l.sub], l.d)
			}
		}
		if os.Getenv("SLUICE_TEST_HA_LOGS") == "1" {
			t.Logf("max delivery latency per subscriber: %v", perSub)
		}
		if len(ds) == 0 {
			return "no deliveries"
		}
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))].Round(100 * time.Microsecond) }
		return fmt.Sprintf("delivery p50 %v p99 %v max %v (%d)", q(0.5), q(0.99), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	}
	if len(r.marks) == 0 {
		return
	}
	t.Logf("before %q: %s", r.marks[0].what, window(time.Time{}, r.marks[0].at))
	for _, m := range r.marks {
		var firstOK time.Duration = -1
		var longest time.Duration
		failed := 0
		for _, p := range r.sent {
			if p.start.Before(m.at) || p.start.After(m.at.Add(10*time.Second)) {
				continue
			}
			if d := p.end.Sub(p.start); d > longest {
				longest = d
			}
			if !p.ok {
				failed++
			} else if firstOK < 0 {
				firstOK = p.end.Sub(m.at)
			}
		}
		t.Logf("after %q: first publish acknowledged %v later; longest publish %v; %d publishes failed within 10 s; %s",
			m.what, firstOK.Round(time.Millisecond), longest.Round(time.Millisecond), failed, window(m.at, m.at.Add(10*time.Second)))
	}
}

// verifyRedis checks the subscribers against the final log of the Redis
// store at dsn (verify), reports, and requires a reset of the subscribers
// wherever events they had received were lost (Redis replicates
// asynchronously: acknowledged events may be lost, as the caller decides).
func (r *haRun) verifyRedis(ctx context.Context, dsn, what string) haOutcome {
	t := r.t
	t.Helper()
	st, err := redisstore.Open(ctx, dsn, redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	out := r.verify(haLog(t, st))
	r.report()
	t.Logf("%s: %d publishes acknowledged, %d of them lost; %d events delivered and lost; %d resets",
		what, out.acked, out.ackedLost, out.delivered, out.resets)
	if out.delivered > 0 && out.resets == 0 {
		t.Errorf("%d delivered events were lost and no subscriber was reset", out.delivered)
	}
	return out
}

// TestHANATS: three hubs on an R3 stream of a three-server NATS cluster,
// publishers at a steady rate; the stream leader is killed (SIGKILL),
// later restarted, then a server that is not the leader is killed. Every
// acknowledged publish reaches every subscriber once, in one order, with
// no reset.
func TestHANATS(t *testing.T) {
	haGuard(t)
	nodes, urls := startNATSCluster(t, 3)
	const stream = "HA"
	dsn := urls + "?stream=" + stream + "&replicas=3"
	ctx, cancel := context.WithTimeout(context.Background(), 4*haHang)
	defer cancel()
	// The first Open creates the stream, once the cluster can place it.
	pollUntil(t, "creating the R3 stream", func(ctx context.Context) (bool, error) {
		st, err := natsstore.Open(ctx, dsn, natsstore.Config{})
		if err == nil {
			st.Close()
		}
		return err == nil, err
	})
	r := startHA(t, ctx, dsn)
	r.publish(3, 10*time.Millisecond)
	r.acked(300, "the first publishes")

	byName := map[string]*natsNode{}
	for _, n := range nodes {
		byName[n.name] = n
	}
	// The worst case: the stream leader is also the meta leader, so both
	// groups elect a leader again, and the hubs' followers recreate their
	// consumers only once the meta group has one.
	var meta string
	pollUntil(t, "finding the meta leader", func(ctx context.Context) (bool, error) {
		l, cur, err := metaCurrent(ctx, nodes)
		meta = l
		return err == nil && len(cur) == 3, err
	})
	var leader string
	pollUntil(t, "placing the stream leader on the meta leader "+meta, func(ctx context.Context) (bool, error) {
		l, cur, err := streamLeader(ctx, urls, stream)
		leader = l
		if err == nil && l != "" && l != meta && len(cur) == 2 {
			// Once the stream has a leader and current replicas: a
			// preferred peer must be current.
			err = moveStreamLeader(ctx, urls, stream, meta)
		}
		return err == nil && l == meta && byName[l] != nil, err
	})
	r.acked(100, "publishes after moving the stream leader")
	r.mark("SIGKILL the stream leader " + leader + ", the meta leader")
	_ = byName[leader].proc.Stop(syscall.SIGKILL)
	r.acked(300, "publishes after the leader's death")
	var newLeader string
	pollUntil(t, "a new leader", func(ctx context.Context) (bool, error) {
		l, _, err := streamLeader(ctx, urls, stream)
		newLeader = l
		return err == nil && l != "" && l != leader, err
	})
	r.mark("restart " + leader + " (the new leader is " + newLeader + ")")
	if err := byName[leader].proc.Start(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the restarted server catching up", func(ctx context.Context) (bool, error) {
		_, cur, err := streamLeader(ctx, urls, stream)
		if err != nil || !slices.Contains(cur, leader) {
			return false, err
		}
		// And in the meta group: else the next kill leaves it without a
		// quorum (no consumer, no stream update).
		_, mcur, err := metaCurrent(ctx, nodes)
		return err == nil && slices.Contains(mcur, leader), err
	})
	r.acked(300, "publishes after the restart")
	var follower string
	pollUntil(t, "finding a server that is not the leader", func(ctx context.Context) (bool, error) {
		l, cur, err := streamLeader(ctx, urls, stream)
		for _, c := range cur {
			if c != l {
				follower = c
			}
		}
		return err == nil && follower != "", err
	})
	// The store that reads the final log opens now: Open creates or
	// updates the stream, which needs the meta group's leader, and after
	// the next kill the meta group has been seen without one for minutes
	// (the stream, its leader and direct gets go on).
	octx, ocancel := context.WithTimeout(context.Background(), haHang)
	defer ocancel()
	st, err := natsstore.Open(octx, dsn, natsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r.mark("SIGKILL " + follower + ", not the leader")
	_ = byName[follower].proc.Stop(syscall.SIGKILL)
	r.acked(300, "publishes after the follower's death")
	r.finish()
	mctx, mcancel := context.WithTimeout(context.Background(), 2*time.Second)
	ml, mcur, merr := metaCurrent(mctx, nodes)
	mcancel()
	t.Logf("at the end, the meta group: leader %q, current %v (%v)", ml, mcur, merr)
	if os.Getenv("SLUICE_TEST_HA_LOGS") == "1" {
		for _, n := range nodes {
			b, _ := os.ReadFile(n.proc.Dir + "/nats.log")
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "leader") || strings.Contains(l, "[WRN]") {
					t.Logf("%s: %s", n.name, l)
				}
			}
		}
	}

	out := r.verify(haLog(t, st))
	r.report()
	t.Logf("NATS R3: %d publishes acknowledged, %d of them not in the log; %d events delivered and not in the log; %d resets",
		out.acked, out.ackedLost, out.delivered, out.resets)
	if out.ackedLost > 0 || out.delivered > 0 || out.resets > 0 {
		t.Errorf("an R3 stream lost events or reset subscribers: %+v\n%s", out, r.logs())
	}
}

// TestHARedisSentinel: three hubs on a Redis primary with two replicas and
// three Sentinels, publishers at a steady rate. The replicas are cut off
// for 300 ms (SIGSTOP, and the primary drops their links), as a network
// partition would, the primary is killed (SIGKILL) meanwhile, the replicas
// resume and the Sentinels promote one of them, which lacks what the
// primary took in during the partition. With wait=1 no acknowledged publish is lost (what was
// delivered and lost was never acknowledged: its subscribers get a
// reset); with wait=0 the acknowledged publishes of the stall are lost,
// counted, and every subscriber that had received one gets a reset, never
// a silent gap.
func TestHARedisSentinel(t *testing.T) {
	haGuard(t)
	for _, wait := range []int{1, 0} {
		t.Run(fmt.Sprintf("wait=%d", wait), func(t *testing.T) {
			ss := startSentinelSet(t, 2, 3)
			dsn := ss.dsn + "&prefix=ha:"
			if wait > 0 {
				dsn += fmt.Sprintf("&wait=%d&wait_timeout=2s", wait)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*haHang)
			defer cancel()
			r := startHA(t, ctx, dsn)
			r.publish(3, 10*time.Millisecond)
			r.acked(300, "the first publishes")

			r.mark("cut the replicas off (SIGSTOP, and the primary drops their links)")
			for _, rp := range ss.replicas {
				if err := rp.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			// What the primary sent before is in the stopped replicas'
			// socket buffers: it reaches them when they resume. What comes
			// after the links are dropped reaches no replica.
			if err := redisAt(t, ss.primary.Port).ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // the partition: publishes go on meanwhile
			r.mark("SIGKILL the primary")
			_ = ss.primary.Stop(syscall.SIGKILL)
			for _, rp := range ss.replicas {
				if err := rp.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			pollUntil(t, "a Sentinel naming a new primary", func(ctx context.Context) (bool, error) {
				p, err := ss.primaryPort(ctx, t)
				return err == nil && p != ss.primary.Port, err
			})
			r.mark("a replica is the new primary")
			r.acked(300, "publishes after the failover")
			r.finish()

			out := r.verifyRedis(ctx, dsn, fmt.Sprintf("Redis Sentinel, wait=%d", wait))
			if wait > 0 && out.ackedLost > 0 {
				t.Errorf("wait=%d lost %d acknowledged publishes", wait, out.ackedLost)
			}
		})
	}
}

// TestHARedisCluster: three hubs on a Redis Cluster of three primaries
// with a replica each, with a hash-tagged prefix; the primary of the
// prefix's slot is killed under load and its replica takes over. Nothing
// is delivered out of order, twice, or with a silent gap; acknowledged
// events the replica lacked (replication is asynchronous: wait=0 here)
// are counted.
func TestHARedisCluster(t *testing.T) {
	haGuard(t)
	nodes, base := startRedisCluster(t, 3)
	dsn := base + "?prefix=" + url.QueryEscape("{ha}:")
	ctx, cancel := context.WithTimeout(context.Background(), 4*haHang)
	defer cancel()
	r := startHA(t, ctx, dsn)
	r.publish(3, 10*time.Millisecond)
	r.acked(300, "the first publishes")

	slot, err := redisAt(t, nodes[0].Port).ClusterKeySlot(ctx, "{ha}:log").Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := func(ctx context.Context) (int, error) { // the port of the slot's primary
		for _, n := range nodes {
			shards, err := redisAt(t, n.Port).ClusterShards(ctx).Result()
			if err != nil {
				continue
			}
			for _, sh := range shards {
				for _, sr := range sh.Slots {
					if sr.Start > slot || slot > sr.End {
						continue
					}
					for _, node := range sh.Nodes {
						if node.Role == "master" && node.Health == "online" {
							return int(node.Port), nil
						}
					}
				}
			}
		}
		return 0, errors.New("no node answered")
	}
	oldPort, err := owner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Port == oldPort {
			r.mark(fmt.Sprintf("SIGKILL the primary of slot %d (port %d)", slot, oldPort))
			_ = n.Stop(syscall.SIGKILL)
		}
	}
	pollUntil(t, "the replica taking over the slot", func(ctx context.Context) (bool, error) {
		p, err := owner(ctx)
		return err == nil && p != oldPort, err
	})
	r.mark("the replica is the slot's primary")
	r.acked(300, "publishes after the failover")
	r.finish()

	r.verifyRedis(ctx, dsn, "Redis Cluster")
}

// The DSNs of highly available logs select their stores; a Cluster prefix
// without a hash tag is refused at start.
func TestServeHADSN(t *testing.T) {
	for _, dsn := range []string{
		"redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/0?master_name=m&wait=1",
		"rediss+sentinel://127.0.0.1:26379/0?master_name=m",
		"redis+cluster://127.0.0.1:7000,127.0.0.1:7001?prefix={sluice}:",
	} {
		if c := mustConfig(t, []string{"--jwt-key", "k", "--store", dsn}, nil); c.storeKind != "redis" {
			t.Errorf("--store %s: kind %q, want redis", dsn, c.storeKind)
		}
	}
	if c := mustConfig(t, []string{"--jwt-key", "k", "--store", "nats://n1:4222,nats://n2:4222?replicas=3&storage=memory"}, nil); c.storeKind != "nats" {
		t.Errorf("nats with replicas: kind %q", c.storeKind)
	}
	for _, dsn := range []string{"redis+cluster://127.0.0.1:7000?prefix=sluice:", "redis://h/0?wait=-1", "nats://h?replicas=0"} {
		var stderr strings.Builder
		if c, code := parseServeConfig([]string{"--jwt-key", "k", "--store", dsn}, env(nil), &stderr); c != nil || code != 2 {
			t.Errorf("--store %s accepted", dsn)
		}
	}
}
