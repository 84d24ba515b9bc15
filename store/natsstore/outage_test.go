package natsstore_test

import (
	"fmt"
	"os"
	"strconv"
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
		Open:    func(t *testing.T) store.Store { return open(t, url, cfg) },
		Signal:  sig,
		Down:    down,
		Timeout: hang,
	})
}
