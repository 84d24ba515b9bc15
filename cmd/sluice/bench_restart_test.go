package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/loadgen"
	"github.com/sluicehq/sluice/mercure"
)

// TestBenchRestartStorm: sluice bench --restart-after SIGKILLs a real hub
// on bolt while events are being published and starts it again on the
// same file and address; its subscribers (--reconnect) resume with their
// Last-Event-ID and get every event exactly once, and the report says how
// long the storm took. This is the measurement of issue 15's reconnect
// storm, at a size a test can afford.
func TestBenchRestartStorm(t *testing.T) {
	bin := buildSluice(t)
	const key = "bench-restart-key-0123456789abcdef012"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"--addr", addr, "--store", "bolt:" + filepath.Join(t.TempDir(), "storm.db"), "--jwt-key", key,
		"--anonymous", "--demo=false"}
	hub := startHubProc(t, bin, args...)
	tok, err := mercure.NewToken([]byte(key), "", []string{"*"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	restart := "exec " + bin
	for _, a := range append([]string{"serve"}, args...) {
		restart += " '" + a + "'"
	}
	const events, subscribers = 600, 20
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := loadgen.Run(ctx, []string{
		"--url", hub.base + mercure.HubPath + "?topic=bench", "--token", tok,
		"--subscribers", strconv.Itoa(subscribers), "--rate", "300", "--events", strconv.Itoa(events), "--duration", "0",
		"--restart-after", "500ms", "--restart-cmd", restart, "--hub-pid", strconv.Itoa(hub.cmd.Process.Pid),
		"--drain", "30s", "--max-duration", "90s", "--json",
	}, &stdout, &stderr)
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, report %q: %v; stderr: %s", code, stdout.String(), err, stderr.String())
	}
	rs := rep.Restart
	if rs != nil && rs.PID > 0 {
		t.Cleanup(func() { _ = syscall.Kill(rs.PID, syscall.SIGKILL) })
	}
	if code != 0 || rs == nil || rs.Error != "" {
		t.Fatalf("exit %d, restart %+v: missing %d, gaps %d, duplicates %d, out of order %d, publish errors %d; stderr: %s",
			code, rs, rep.Missing, rep.Gaps, rep.Duplicates, rep.OutOfOrder, rep.PublishErrors, stderr.String())
	}
	if rep.Deliveries != events*subscribers || rep.Missing+rep.Duplicates+rep.OutOfOrder+rep.Gaps != 0 {
		t.Fatalf("%d deliveries (want %d), missing %d, duplicates %d, out of order %d, gaps %d",
			rep.Deliveries, events*subscribers, rep.Missing, rep.Duplicates, rep.OutOfOrder, rep.Gaps)
	}
	if rs.CaughtUp != subscribers || rs.Reconnections < subscribers || rs.PID == hub.cmd.Process.Pid {
		t.Fatalf("restart report %+v: want all %d caught up, each reconnected, a new hub", rs, subscribers)
	}
	t.Logf("storm: resumed %.2fs, caught up %.2fs after the kill", rs.ResumedSeconds, rs.CaughtUpSeconds)
}
