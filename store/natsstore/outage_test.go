package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// TestRestartUnderLoad stops a nats-server -js of its own (gracefully, then
// with SIGKILL) under load and starts it again: see
// storetest.RestartUnderLoad.
func TestRestartUnderLoad(t *testing.T) {
	// The second outage outlasts the followers' heartbeats, so their
	// consumers fail to reset while the server is away.
	t.Run("SIGTERM", func(t *testing.T) { restartUnderLoad(t, syscall.SIGTERM, 0) })
	t.Run("SIGKILL", func(t *testing.T) { restartUnderLoad(t, syscall.SIGKILL, 3*time.Second) })
}

func restartUnderLoad(t *testing.T, sig syscall.Signal, down time.Duration) {
	// The nats-server scripts/services.sh runs (2.11+ where it could), or
	// the one on PATH.
	bin := os.Getenv("SLUICE_TEST_NATS_SERVER")
	if bin == "" {
		bin = "nats-server"
	}
	srv := storetest.StartProcess(t, bin, hang, func(port int, dir string) []string {
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir + "/js", "-l", dir + "/nats.log"}
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.Port)
	cfg := natsstore.Config{Stream: "SLUICE", MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AckTimeout: 2 * time.Second}
	storetest.RestartUnderLoad(t, storetest.RestartHarness{
		Server:  srv,
		Open:    func(t *testing.T) store.Store { return &settledHead{Store: open(t, url, cfg)} },
		Signal:  sig,
		Down:    down,
		Timeout: hang,
	})
}

// settledHead lets the appends of the harness's publishers that were
// canceled in flight land before Head answers, once no Append runs: the
// harness checks History against Head after stopping its publishers, and
// an Append canceled after its publish may still be stored (see
// Store.Append). From nats-server 2.11 on a stream stores what it receives
// asynchronously, so a stream info sent after a publish on the same
// connection can be answered before that publish is stored.
type settledHead struct {
	*natsstore.Store
	running atomic.Int64 // Appends in progress
}

func (s *settledHead) Append(ctx context.Context, e store.Event) (store.Event, error) {
	s.running.Add(1)
	defer s.running.Add(-1)
	return s.Store.Append(ctx, e)
}

func (s *settledHead) Head(ctx context.Context) (string, error) {
	if s.running.Load() == 0 {
		select {
		case <-natsstore.PublishesDone(s.Store):
		case <-ctx.Done():
		}
	}
	return s.Store.Head(ctx)
}

// A stream that comes back without the last events a Follow yielded (here
// restored from an older copy of the server's storage: same stream, same
// creation time, so the same epoch) ends the Follow with ErrUnknownID once
// it is back, instead of yielding the events appended next at the lost
// sequences as if they followed the lost ones.
func TestFollowLostEvents(t *testing.T) {
	bin := os.Getenv("SLUICE_TEST_NATS_SERVER")
	if bin == "" {
		bin = "nats-server"
	}
	var js string
	srv := storetest.StartProcess(t, bin, hang, func(port int, dir string) []string {
		js = filepath.Join(dir, "js")
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", js, "-l", filepath.Join(dir, "nats.log")}
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.Port)
	s := open(t, url, natsstore.Config{Stream: "LOST", MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	for i := range 3 {
		storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint("kept ", i)})
	}
	// The older copy: the server's storage with the 3 events.
	if err := srv.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	older := filepath.Join(t.TempDir(), "js")
	if err := os.CopyFS(older, os.DirFS(js)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	f := storetest.StartFollow(ctx, s, "")
	for i := range 5 {
		if i == 3 {
			for j := range 2 {
				storetest.MustAppend(t, s, store.Event{Data: fmt.Sprint("lost ", j)})
			}
		}
		if e := f.Next(t, hang); e.Pos != uint64(i+1) {
			t.Fatalf("Follow yielded position %d, want %d", e.Pos, i+1)
		}
	}

	if err := srv.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(js); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(js, os.DirFS(older)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The events appended next take sequences 4 to 6: the Follow, which
	// yielded 4 and 5 already, must not yield 6 as what comes after them.
	for i := range 3 {
		for {
			if _, err := s.Append(ctx, store.Event{Data: fmt.Sprint("new ", i)}); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("the store did not take appends again")
			}
			time.Sleep(10 * time.Millisecond) // the client reconnects to the restarted server
		}
	}
	if err := f.End(t, hang); !errors.Is(err, store.ErrUnknownID) {
		t.Fatalf("Follow after the stream lost events it yielded: %v, want ErrUnknownID", err)
	}
}
