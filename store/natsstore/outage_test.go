package natsstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
)

// natsServer is a nats-server -js child process this test owns, so that it
// can stop and restart it.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// startNATS starts a nats-server with JetStream of its own on a free
// loopback port, with its store in a temp dir.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		if servicesRequired() {
			t.Fatal("nats-server is not installed (required: CI=true or SLUICE_REQUIRE_SERVICES=1)")
		}
		t.Skip("nats-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	n := &natsServer{t: t, port: port, dir: t.TempDir()}
	n.start()
	t.Cleanup(func() { n.stop(os.Kill) })
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	n.cmd = exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir+"/js", "-l", n.dir+"/nats.log")
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("starting nats-server: %v", err)
	}
	deadline := time.Now().Add(hang)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server did not listen on %d: %v", n.port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port a child process opens
	}
}

// stop sends sig and waits for the server to exit.
func (n *natsServer) stop(sig os.Signal) {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(sig)
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// TestRestartUnderLoad stops NATS (gracefully, then with SIGKILL) while
// publishers append through store A and two other stores follow, then
// starts it again: publishes fail during the outage and Head reports it,
// the followers keep going, and in the end every acknowledged event reaches
// every follower exactly once, in log order.
func TestRestartUnderLoad(t *testing.T) {
	// The second outage outlasts the followers' heartbeats, so their
	// consumers fail to reset while the server is away.
	t.Run("SIGTERM", func(t *testing.T) { restartUnderLoad(t, syscall.SIGTERM, 0) })
	t.Run("SIGKILL", func(t *testing.T) { restartUnderLoad(t, syscall.SIGKILL, 3*time.Second) })
}

func restartUnderLoad(t *testing.T, sig syscall.Signal, down time.Duration) {
	srv := startNATS(t)
	cfg := natsstore.Config{Stream: "SLUICE", MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AckTimeout: 2 * time.Second}
	a := open(t, srv.url(), cfg)
	b := open(t, srv.url(), cfg)
	c := open(t, srv.url(), cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 3*hang)
	defer cancel()

	type followed struct {
		mu  sync.Mutex
		evs []store.Event
		err error
	}
	fol := []*followed{{}, {}}
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	var fwg sync.WaitGroup
	for i, s := range []store.Store{b, c} {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for e, err := range s.Follow(fctx, "") {
				fol[i].mu.Lock()
				if err != nil {
					fol[i].err = err
				} else {
					fol[i].evs = append(fol[i].evs, e)
				}
				fol[i].mu.Unlock()
			}
		}()
	}

	var acked sync.Map // data -> store.Event
	var nAcked, nFailed atomic.Int64
	pctx, stopPublish := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for w := range 4 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := 0; pctx.Err() == nil; i++ {
				data := fmt.Sprintf("w%d-%d", w, i)
				e, err := a.Append(pctx, store.Event{Topics: []string{"t"}, Data: data})
				if err != nil {
					if pctx.Err() == nil {
						nFailed.Add(1)
						time.Sleep(5 * time.Millisecond) // pace retries against a dead server
					}
					continue
				}
				acked.Store(data, e)
				nAcked.Add(1)
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(hang)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (acked %d, failed %d)", what, nAcked.Load(), nFailed.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("500 acknowledged appends", func() bool { return nAcked.Load() >= 500 })

	srv.stop(sig)
	waitFor("appends to fail", func() bool { return nFailed.Load() >= 10 })
	hctx, hcancel := context.WithTimeout(ctx, time.Second)
	if _, err := a.Head(hctx); err == nil {
		t.Fatal("Head succeeded while NATS was down; readiness must report the outage")
	}
	hcancel()
	if down > 0 {
		select { // the length of the outage, a parameter of the scenario
		case <-time.After(down):
		case <-ctx.Done():
		}
	}
	before := nAcked.Load()
	srv.start()
	for _, s := range []store.Store{a, b, c} {
		waitFor("Head to succeed again on every store", func() bool {
			hctx, hcancel := context.WithTimeout(ctx, time.Second)
			defer hcancel()
			_, err := s.Head(hctx)
			return err == nil
		})
	}
	waitFor("500 more acknowledged appends", func() bool { return nAcked.Load() >= before+500 })
	stopPublish()
	pwg.Wait()
	t.Logf("acknowledged %d appends; %d failed during the outage", nAcked.Load(), nFailed.Load())

	head, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := history(t, c, "")
	if err != nil || len(all) == 0 || all[len(all)-1].ID != head {
		t.Fatalf("History after the restart: %d events, %v; want up to the head %q", len(all), err, head)
	}
	last := all[len(all)-1].Pos
	for i, f := range fol {
		waitFor(fmt.Sprintf("follower %d to reach the head", i), func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.err != nil || len(f.evs) > 0 && f.evs[len(f.evs)-1].Pos >= last
		})
	}
	stopFollow()
	fwg.Wait()

	for i, f := range fol {
		if f.err != nil {
			t.Fatalf("follower %d ended with %v; an outage must not end a Follow", i, f.err)
		}
		seen := map[string]bool{}
		for k, e := range f.evs {
			if k > 0 && e.Pos != f.evs[k-1].Pos+1 {
				t.Fatalf("follower %d: Pos %d after %d: a gap or a repeat", i, e.Pos, f.evs[k-1].Pos)
			}
			if seen[e.Data] {
				t.Fatalf("follower %d: %q delivered twice", i, e.Data)
			}
			seen[e.Data] = true
			if k < len(all) && (all[k].ID != e.ID || all[k].Data != e.Data) {
				t.Fatalf("follower %d: event %d is %q, the log has %q", i, k, e.Data, all[k].Data)
			}
		}
		missing := 0
		acked.Range(func(k, v any) bool {
			if !seen[k.(string)] {
				missing++
			}
			return true
		})
		if missing > 0 {
			t.Fatalf("follower %d: %d acknowledged events were never delivered", i, missing)
		}
	}
	byID := map[string]store.Event{}
	for _, e := range all {
		byID[e.ID] = e
	}
	acked.Range(func(k, v any) bool {
		e := v.(store.Event)
		if got, ok := byID[e.ID]; !ok || got.Data != e.Data || got.Pos != e.Pos {
			t.Errorf("acknowledged %q at Pos %d (%s) is not in the log as acknowledged", e.Data, e.Pos, e.ID)
			return false
		}
		return true
	})
}
