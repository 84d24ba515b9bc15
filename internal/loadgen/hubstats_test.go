package loadgen

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProc(t *testing.T) {
	rss, err := parseVmRSS("Name:\tsluice\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t5\n")
	if err != nil || rss != 1234<<10 {
		t.Errorf("VmRSS %d, %v", rss, err)
	}
	if _, err := parseVmRSS("Name:\tzombie\n"); err == nil {
		t.Error("no VmRSS line: no error")
	}
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 5 0 100 1000 200"
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3800*time.Millisecond {
		t.Errorf("CPU %v, %v; want 3.8s", cpu, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("short stat: no error")
	}
	// This process, for real.
	s, err := readProc(os.Getpid())
	if err != nil || s.rss <= 0 {
		t.Errorf("readProc(self) = %+v, %v", s, err)
	}
}

func TestParseGoroutines(t *testing.T) {
	in := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines_total 7\ngo_goroutines 10042\ngo_threads 9\n"
	if n, err := parseGoroutines(strings.NewReader(in)); err != nil || n != 10042 {
		t.Errorf("got %d, %v; want 10042", n, err)
	}
	if n, err := parseGoroutines(strings.NewReader(`go_goroutines{job="hub"} 5e+03` + "\n")); err != nil || n != 5000 {
		t.Errorf("labelled sample: %d, %v", n, err)
	}
	if _, err := parseGoroutines(strings.NewReader("go_threads 9\n")); err == nil {
		t.Error("no go_goroutines: no error")
	}
}
