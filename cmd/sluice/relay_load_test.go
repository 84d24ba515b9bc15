package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
)

// TestRelayLoad measures one "sluice serve" process relaying many answers
// at once (issue 17's "relays in flight on one hub" and "memory per idle
// relay"). It runs only when SLUICE_RELAY_LOAD is set, to the number of
// relays (say 5000):
//
//	SLUICE_RELAY_LOAD=5000 go test -run TestRelayLoad -v -timeout 10m ./cmd/sluice/
//
// SLUICE_RELAY_LOAD_RATE (tokens/s per answer, default 50) and
// SLUICE_RELAY_LOAD_SECONDS (an answer's length, default 10) shape the
// answers. The fake upstream and the readers run in this process, on the
// same cores as the hub; the hub is measured from /proc.
//
// Idle: every relay is started (POST /relay/fake, its reader connected)
// while the upstream has answered its headers and sends nothing: the
// hub's memory and goroutines per relay. Streaming: every relay's upstream
// then sends its tokens at the rate, each token carrying when it was sent;
// every reader must get every token exactly once, in order, and the end.
// It reports the hub's CPU and memory, and the tokens' delay from the
// upstream's write to the reader's read.
func TestRelayLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_RELAY_LOAD"))
	if n <= 0 {
		t.Skip("SLUICE_RELAY_LOAD is not set: the relay load measurement runs on demand")
	}
	rate := envInt("SLUICE_RELAY_LOAD_RATE", 50)
	seconds := envInt("SLUICE_RELAY_LOAD_SECONDS", 10)
	tokens := rate * seconds
	const key = "relay-load-key-at-least-256-bits-long!!!"

	start := make(chan struct{}) // closed: the answers start streaming
	var headers sync.WaitGroup
	headers.Add(n)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		headers.Done()
		select {
		case <-start:
		case <-r.Context().Done():
			return
		}
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		buf := make([]byte, 0, 64)
		for i := range tokens {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
			buf = append(buf[:0], "data: "...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
			buf = append(buf, "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}))
	up.Config.ErrorLog = nil
	up.Start()
	defer func() {
		up.CloseClientConnections()
		up.Close()
	}()

	bin := buildSluice(t)
	args := []string{"--addr", "127.0.0.1:0", "--store", "memory", "--jwt-key", key,
		"--relay", "fake=" + up.URL, "--relay-max-inflight", strconv.Itoa(n + 10),
		"--history-size", strconv.Itoa(n * (tokens + 10)), "--max-lifetime", "0"}
	pprofAddr := os.Getenv("SLUICE_RELAY_LOAD_PPROF") // a loopback address: the hub's heap profile when idle is kept
	if pprofAddr != "" {
		args = append(args, "--pprof", pprofAddr)
	}
	hub := startHubProc(t, bin, args...)
	pid := hub.cmd.Process.Pid
	tok := relayToken(t, key, "fake")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}

	base := hubSample(t, pid, hub.base)
	t.Logf("hub at rest: %s", base)

	type result struct {
		got    int
		dup    bool
		order  bool
		err    error
		delays []time.Duration
	}
	results := make([]result, n)
	var connected sync.WaitGroup
	connected.Add(n)
	var readers sync.WaitGroup
	var failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second*6+2*time.Minute) // a hang guard
	defer cancel()
	for i := range n {
		readers.Add(1)
		go func() {
			defer readers.Done()
			res := &results[i]
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hub.base+"/relay/fake", strings.NewReader(`{"prompt":"hi"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			connected.Done()
			if err != nil {
				res.err = err
				failed.Add(1)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				res.err = fmt.Errorf("status %d", resp.StatusCode)
				failed.Add(1)
				return
			}
			res.order = true
			res.delays = make([]time.Duration, 0, tokens/10+1)
			rd := sse.NewReader(bufio.NewReaderSize(resp.Body, 4096))
			for {
				ev, err := rd.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						res.err = err
						failed.Add(1)
					}
					return
				}
				k, sent, _ := strings.Cut(ev.Data, " ")
				ki, _ := strconv.Atoi(k)
				switch {
				case ki < res.got:
					res.dup = true
				case ki > res.got:
					res.order = false
				}
				if ki%10 == 0 { // a sample of the delays
					ns, _ := strconv.ParseInt(sent, 10, 64)
					res.delays = append(res.delays, time.Since(time.Unix(0, ns)))
				}
				res.got++
			}
		}()
	}
	connected.Wait()
	headers.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d relays failed to start", f, n)
	}
	idle := hubSample(t, pid, hub.base)
	t.Logf("hub with %d idle relays, each with its reader: %s", n, idle)
	if pprofAddr != "" {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		path := filepath.Join(os.TempDir(), "sluice-relay-idle.heap")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("the hub's heap profile with the relays idle: %s", path)
	}
	t.Logf("per idle relay: %.1f KiB RSS, %.1f KiB heap in use, %.2f goroutines",
		float64(idle.rss-base.rss)/1024/float64(n), float64(idle.heap-base.heap)/1024/float64(n),
		float64(idle.goroutines-base.goroutines)/float64(n))

	began := time.Now()
	close(start)
	// The hub's CPU over the answers' middle, when every one streams.
	time.Sleep(time.Duration(seconds) * time.Second / 5)
	mid, selfMid := hubSample(t, pid, hub.base), procCPU(t, os.Getpid())
	midAt := time.Now()
	time.Sleep(time.Duration(seconds) * time.Second * 3 / 5)
	late, selfLate := hubSample(t, pid, hub.base), procCPU(t, os.Getpid())
	window := time.Since(midAt).Seconds()
	cpu, selfCPU := (late.cpu-mid.cpu).Seconds()/window, (selfLate-selfMid).Seconds()/window
	readers.Wait()
	took := time.Since(began)
	peak := hubSample(t, pid, hub.base)

	var all []time.Duration
	complete, short, dups, disorder := 0, 0, 0, 0
	var errs []string
	for _, r := range results {
		all = append(all, r.delays...)
		switch {
		case r.err != nil:
			errs = append(errs, r.err.Error())
		case r.got == tokens && !r.dup && r.order:
			complete++
		case r.got != tokens:
			short++
		}
		if r.dup {
			dups++
		}
		if !r.order {
			disorder++
		}
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)]
	}
	t.Logf("%d relays × %d tokens at %d/s (%d tokens/s in all): all ended %v after the start (an answer lasts %ds)",
		n, tokens, rate, n*rate, took.Round(time.Millisecond), seconds)
	t.Logf("CPU while all stream: hub %.2f cores, this process (upstream and readers) %.2f cores; hub memory at the end: %s", cpu, selfCPU, peak)
	t.Logf("token delay, upstream write to reader read: p50 %v p99 %v max %v",
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	t.Logf("answers complete exactly once and in order: %d of %d (short %d, duplicates %d, out of order %d, errors %d)",
		complete, n, short, dups, disorder, len(errs))
	if complete != n {
		if len(errs) > 3 {
			errs = errs[:3]
		}
		t.Fatalf("%d of %d answers incomplete; errors: %v\nhub log:\n%s", n-complete, n, errs, lastLines(hub.log(), 20))
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// hubStats is a sample of a hub process.
type hubStats struct {
	rss, hwm   int64 // bytes
	heap       int64 // Go heap in use, bytes
	goroutines int64
	cpu        time.Duration // user + system
}

func (s hubStats) String() string {
	return fmt.Sprintf("RSS %.1f MiB (peak %.1f MiB), heap in use %.1f MiB, %d goroutines, CPU %v",
		float64(s.rss)/(1<<20), float64(s.hwm)/(1<<20), float64(s.heap)/(1<<20), s.goroutines, s.cpu.Round(time.Millisecond))
}

// hubSample reads the process pid's memory and CPU from /proc, and its Go
// heap and goroutines from the hub's /metrics at base.
func hubSample(t *testing.T, pid int, base string) hubStats {
	t.Helper()
	var s hubStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				s.rss = kb << 10
			} else {
				s.hwm = kb << 10
			}
		}
	}
	s.cpu = procCPU(t, pid)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heap = int64(x)
		case "go_goroutines":
			s.goroutines = int64(x)
		}
	}
	return s
}

// procCPU returns the user and system CPU time of the process pid.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
