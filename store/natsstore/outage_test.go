package natsstore_test

import (
	"context"
	"fmt"
	"os"
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
