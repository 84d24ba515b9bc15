package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ, which
// Linux fixes at 100 on every architecture it exposes to user space).
const clockTicks = 100

// procSample is one reading of a process's resources.
type procSample struct {
	rss int64         // resident set size, bytes
	cpu time.Duration // user + system CPU time
}

// readProc reads the RSS and CPU time of process pid from /proc.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("reading the hub's memory: %w", err)
	}
	if s.rss, err = parseVmRSS(string(status)); err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("reading the hub's CPU time: %w", err)
	}
	if s.cpu, err = parseStatCPU(string(stat)); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return s, nil
}

// readProcState returns the state letter of /proc/PID/stat ('Z' for a
// process that exited and was not reaped yet).
func readProcState(pid int) (byte, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return stat[i+2], nil
}

// parseVmRSS returns the VmRSS line of /proc/PID/status in bytes.
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed VmRSS line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed VmRSS line %q: %w", strings.TrimSpace(line), err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line (a zombie process?)")
}

// parseStatCPU returns utime+stime from /proc/PID/stat.
func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("malformed stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// hubWatcher samples the hub process: on demand, and every interval in the
// background to find its peak RSS.
type hubWatcher struct {
	pid     int
	metrics string // Prometheus text endpoint, or ""
	client  *http.Client

	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

// setPID follows another hub process from now on (after a restart).
func (w *hubWatcher) setPID(pid int) {
	w.mu.Lock()
	w.pid = pid
	w.mu.Unlock()
}

// sample reads the hub's resources now and updates the peak.
func (w *hubWatcher) sample() (procSample, error) {
	w.mu.Lock()
	pid := w.pid
	w.mu.Unlock()
	s, err := readProc(pid)
	if err == nil {
		w.mu.Lock()
		w.peak = max(w.peak, s.rss)
		w.mu.Unlock()
	}
	return s, err
}

// watch samples the RSS every interval until halt is called.
func (w *hubWatcher) watch(interval time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.sample()
			case <-w.stop:
				return
			}
		}
	}()
}

// halt stops the background sampling and returns the peak RSS seen.
func (w *hubWatcher) halt() int64 {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// goroutines scrapes the hub's go_goroutines gauge from its Prometheus
// metrics endpoint.
func (w *hubWatcher) goroutines(ctx context.Context) (int64, error) {
	if w.metrics == "" {
		return 0, errors.New("no --hub-metrics endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.metrics, nil)
	if err != nil {
		return 0, fmt.Errorf("hub metrics: %w", err)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("hub metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("hub metrics: %s returned %s", w.metrics, resp.Status)
	}
	n, err := parseGoroutines(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("hub metrics %s: %w", w.metrics, err)
	}
	return n, nil
}

// parseGoroutines finds the go_goroutines sample in a Prometheus text
// exposition.
func parseGoroutines(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "go_goroutines")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest != "" && rest[0] == '{' {
			j := strings.IndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("malformed go_goroutines sample %q", line)
		}
		return int64(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no go_goroutines metric")
}
