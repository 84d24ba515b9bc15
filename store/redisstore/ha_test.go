package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// startRedis starts a redis-server of the test's own, with no persistence
// but an explicit SAVE, and with args appended (--replicaof ...).
func startRedis(t *testing.T, args ...string) *storetest.Process {
	return storetest.StartProcess(t, "redis-server", hang, func(port int, dir string) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--logfile", dir + "/redis.log"}, args...)
	})
}

func portClient(t *testing.T, port int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// With wait=N an append is acknowledged only once N replicas have it: with
// no replica it fails with ErrNotReplicated after wait_timeout (the event
// is on the primary nonetheless); with one, it succeeds and the replica
// holds the event when Append returns.
func TestWaitReplicas(t *testing.T) {
	primary := startRedis(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0?wait=1&wait_timeout=200ms", primary.Port)
	s := open(t, url, redisstore.Config{})
	ctx := context.Background()

	_, err := s.Append(ctx, store.Event{Data: "alone"})
	if !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("Append with wait=1 and no replica: %v, want ErrNotReplicated", err)
	}
	if got, err := storetest.History(t, s, ""); err != nil || len(got) != 1 || got[0].Data != "alone" {
		t.Fatalf("History after the unreplicated append = %v, %v; want the event (it is on the primary)", got, err)
	}

	replica := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	rc := portClient(t, replica.Port)
	hangCtx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	// The replica's initial sync: until the primary sees it online, WAIT
	// counts no ack.
	pc := portClient(t, primary.Port)
	for {
		info, err := pc.Info(hangCtx, "replication").Result()
		if err == nil && strings.Contains(info, "state=online") {
			break
		}
		if hangCtx.Err() != nil {
			t.Fatalf("the replica did not sync: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's state
	}
	// A WAIT timeout that a loaded machine (the whole suite under -race on
	// 2 cores) cannot miss: it bounds nothing here.
	s = open(t, fmt.Sprintf("redis://127.0.0.1:%d/0?wait=1&wait_timeout=10s", primary.Port), redisstore.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 { // concurrent appends share batches, and their WAIT
		wg.Go(func() {
			e, err := s.Append(ctx, store.Event{Data: fmt.Sprint("replicated ", i)})
			if err != nil {
				errs <- err
				return
			}
			// Acknowledged: the replica has it already.
			n, err := rc.XRange(ctx, "sluice:log", "-", "+").Result()
			if err != nil || !hasEntry(n, e.Pos) {
				errs <- fmt.Errorf("event %d (pos %d) acknowledged but not on the replica: %v", i, e.Pos, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func hasEntry(msgs []redis.XMessage, pos uint64) bool {
	suffix := "-" + strconv.FormatUint(pos, 10)
	for _, m := range msgs {
		if len(m.ID) > len(suffix) && m.ID[len(m.ID)-len(suffix):] == suffix {
			return true
		}
	}
	return false
}

// steppedClock returns a clock that moves on by step at every call, from
// start: every append gets a millisecond of its own.
func steppedClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

// A log that comes back without the last events a Follow yielded (as
// after a failover to a replica that lacked them: here, a restart from an
// older snapshot, with the same epoch) ends the Follow with ErrUnknownID,
// and a cursor of a lost event is unknown even once its position holds
// another event: never a silent gap, never a renumbered log. The appending
// clocks disagree (one far behind, one ahead), as hubs' clocks may, so
// that the stream ids of the new events do not reveal the loss by
// themselves.
func TestLostEvents(t *testing.T) {
	srv := startRedis(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port)
	t0 := time.Now()
	a := open(t, url, redisstore.Config{Now: steppedClock(t0, time.Second), MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, BlockTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	f := storetest.StartFollow(ctx, a, "")
	var evs []store.Event
	for i := range 3 {
		evs = append(evs, storetest.MustAppend(t, a, store.Event{Data: fmt.Sprint("kept ", i)}))
	}
	if err := portClient(t, srv.Port).Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		evs = append(evs, storetest.MustAppend(t, a, store.Event{Data: fmt.Sprint("lost ", i)}))
	}
	for i := range evs {
		if got := f.Next(t, hang); got.ID != evs[i].ID {
			t.Fatalf("Follow yielded %s, want %s", got.ID, evs[i].ID)
		}
	}
	lostCursor := evs[4].ID

	if err := srv.Stop(os.Kill); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil { // loads the snapshot: 3 events
		t.Fatal(err)
	}
	if err := f.End(t, hang); !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf("Follow after the log lost the events it yielded: %v, want ErrUnknownID", err)
	}

	// A clock an hour behind appends at the last retained millisecond
	// (positions 4 and 5, ids below the lost ones); one an hour ahead
	// appends position 6, right after the lost cursor's position.
	behind := open(t, url, redisstore.Config{Now: func() time.Time { return t0.Add(-time.Hour) }})
	for i := range 2 {
		if e := storetest.MustAppend(t, behind, store.Event{Data: fmt.Sprint("new ", i)}); e.Pos != uint64(4+i) {
			t.Fatalf("new event %d at position %d, want %d", i, e.Pos, 4+i)
		}
	}
	ahead := open(t, url, redisstore.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
	storetest.MustAppend(t, ahead, store.Event{Data: "new 2"})
	if got, err := storetest.History(t, a, lostCursor); !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf("History from a lost event's id = %d events, %v; want ErrUnknownID", len(got), err)
	}
	if _, err := a.Resolve(ctx, lostCursor); !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf("Resolve(a lost event's id) = %v, want ErrUnknownID", err)
	}
	// What was not lost still resumes.
	if got, err := storetest.History(t, a, evs[2].ID); err != nil || len(got) != 3 || got[0].Data != "new 0" {
		t.Fatalf("History from the last kept event = %v, %v", got, err)
	}
}

// Under Redis Cluster the keys of the kept channels share the log's slot
// (the prefix's hash tag), so the append script, which names them all, and
// Kept run there: a one-node cluster refuses keys of several slots in one
// script (CROSSSLOT) as a bigger one does.
func TestKeptCluster(t *testing.T) {
	srv := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := portClient(t, srv.Port)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's state
	}
	url := fmt.Sprintf("redis+cluster://127.0.0.1:%d?prefix={kept}:", srv.Port)
	a := open(t, url, redisstore.Config{KeepPerChannel: 5})
	b := open(t, url, redisstore.Config{KeepPerChannel: 5})
	start := storetest.MustAppend(t, a, store.Event{Topics: []string{"public"}})
	chs := []string{store.ChannelPrefix + "a", store.ChannelPrefix + "b", store.ChannelPrefix + "c"}
	var wg sync.WaitGroup
	for i, s := range []*redisstore.Store{a, b, a, b} {
		wg.Go(func() {
			for j := range 10 {
				if _, err := s.Append(ctx, store.Event{Topics: chs, Data: fmt.Sprint(i, "/", j)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, ch := range chs {
		for _, s := range []*redisstore.Store{a, b} {
			got, err := storetest.KeptEvents(t, s, ch, "")
			if err != nil || len(got) != 5 {
				t.Fatalf("Kept(%q, \"\") = %d events, %v; want 5", ch, len(got), err)
			}
			if rest, err := storetest.KeptEvents(t, s, ch, got[1].ID); err != nil || len(rest) != 3 {
				t.Fatalf("Kept(%q, the second kept) = %d events, %v; want 3", ch, len(rest), err)
			}
			if _, err := storetest.KeptEvents(t, s, ch, start.ID); !errors.Is(err, store.ErrExpired) {
				t.Fatalf("Kept(%q, start) = %v, want ErrExpired", ch, err)
			}
		}
	}
	if err := a.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}
