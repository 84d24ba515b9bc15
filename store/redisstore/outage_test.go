package redisstore_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/redisstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// TestRestartUnderLoad kills a redis-server of its own with SIGKILL under
// load and starts it again: see storetest.RestartUnderLoad. Every write is
// fsynced before it is acknowledged, so nothing acknowledged may be lost.
func TestRestartUnderLoad(t *testing.T) {
	srv := storetest.StartProcess(t, "redis-server", hang, func(port int, dir string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
			"--daemonize", "no", "--logfile", dir + "/redis.log"}
	})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port)
	cfg := redisstore.Config{Prefix: "sluice:", MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, BlockTimeout: 200 * time.Millisecond}
	storetest.RestartUnderLoad(t, storetest.RestartHarness{
		Server:  srv,
		Open:    func(t *testing.T) store.Store { return open(t, url, cfg) },
		Signal:  os.Kill,
		Timeout: hang,
	})
}
