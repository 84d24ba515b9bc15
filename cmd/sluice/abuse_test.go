package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/loadgen"
	"github.com/sluicehq/sluice/mercure"
)

// The mixed abuse run's memory bounds, for the process (hub and load
// generator together): its peak RSS, and the heap left in use after a GC.
// The race detector multiplies memory; the figures of `sluice serve` alone
// are in SECURITY.md.
const (
	abuseRSSBound  = 384 << 20
	abuseHeapBound = 64 << 20
)

// TestAbuseBesideHonest is the abuse suite's mixed run: 20 anonymous
// hostile clients (the costliest selectors the hub admits, slow QUERY
// bodies, subscription churn with active subscriptions on, bogus cursors)
// beside 100 honest subscribers of `sluice serve` receiving 500 events/s.
// Every honest subscriber receives every event, once and in order; the
// hostile clients were served or refused as the hub's limits say; the log
// holds the updates only; the heap stays bounded. (Latency beside them is
// measured in BENCHMARKS.md, not asserted here.)
func TestAbuseBesideHonest(t *testing.T) {
	if testing.Short() {
		t.Skip("the mixed abuse run takes about 10 s")
	}
	const key = "abuse-suite-key-0123456789abcdef0123"
	s, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", key, "--anonymous", "--subscriptions",
		"--demo=false", "--read-timeout", "1s")
	tok, err := mercure.NewToken([]byte(key), "", []string{"*"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const events, subscribers = 2000, 100
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := loadgen.Run(ctx, []string{
		"--url", base + mercure.HubPath + "?topic=bench", "--token", tok,
		"--subscribers", strconv.Itoa(subscribers), "--rate", "500", "--events", strconv.Itoa(events), "--duration", "0",
		"--hostile", "20", "--drain", "30s", "--max-duration", "90s", "--json", "--hub-pid", strconv.Itoa(os.Getpid()),
	}, &stdout, &stderr)
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, report %q: %v; stderr: %s", code, stdout.String(), err, stderr.String())
	}
	if code != 0 {
		t.Fatalf("exit %d: the honest subscribers saw anomalies: missing %d, gaps %d, duplicates %d, out of order %d, dropped %d, connect failures %d, publish errors %d, drain timed out %v; stderr: %s",
			code, rep.Missing, rep.Gaps, rep.Duplicates, rep.OutOfOrder, rep.Dropped, rep.ConnectFailed, rep.PublishErrors, rep.DrainTimedOut, stderr.String())
	}
	if rep.Deliveries != events*subscribers {
		t.Fatalf("%d deliveries, want %d", rep.Deliveries, events*subscribers)
	}
	hr := rep.Hostile
	if hr == nil || hr.Clients != 20 {
		t.Fatalf("hostile report %+v", hr)
	}
	for kind, k := range hr.Kinds {
		t.Logf("hostile %s: %+v", kind, *k)
		if k.Connections == 0 {
			t.Errorf("hostile %s made no connection", kind)
		}
	}
	if k := hr.Kinds["selectors"]; k.Accepted == 0 {
		t.Error("the hub admitted no hostile selectors at all: the suite does not exercise matching")
	}
	if k := hr.Kinds["slow-body"]; k.CutByHub == 0 {
		t.Error("no slow body was cut off by the hub")
	}
	if k := hr.Kinds["churn"]; k.Accepted == 0 {
		t.Error("no churning subscription was accepted")
	}

	n := 0
	for _, err := range s.store.History(ctx, "", nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != events {
		t.Errorf("the log holds %d events, want the %d updates only", n, events)
	}
	if rep.Hub == nil {
		t.Fatal("no hub report")
	}
	t.Logf("process RSS: %.1f MiB before, peak %.1f MiB", float64(rep.Hub.RSSBefore)/(1<<20), float64(rep.Hub.RSSPeak)/(1<<20))
	if rep.Hub.RSSPeak > abuseRSSBound {
		t.Errorf("process RSS peaked at %d MiB, bound %d MiB", rep.Hub.RSSPeak>>20, abuseRSSBound>>20)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use after the run: %.1f MiB", float64(ms.HeapInuse)/(1<<20))
	if ms.HeapInuse > abuseHeapBound {
		t.Errorf("heap in use %d MiB after the run, bound %d MiB", ms.HeapInuse>>20, abuseHeapBound>>20)
	}
}

// TestServeLimitFlags: the limit flags reach the hub: a subscription over
// --max-selector-cost or --max-active-subscriptions is refused with 400,
// one within them is served.
func TestServeLimitFlags(t *testing.T) {
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", "k", "--anonymous", "--subscriptions",
		"--max-selector-cost", "6", "--max-active-subscriptions", "3")
	status := func(query string) int {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tpl := func(vars int) string {
		var b strings.Builder
		for i := range vars {
			fmt.Fprintf(&b, "{+v%d}", i)
		}
		return url.QueryEscape(b.String())
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"topic=" + tpl(2), http.StatusOK},
		{"topic=" + tpl(4), http.StatusBadRequest},
		{"topic=a&topic=b&topic=c", http.StatusOK},
		{"topic=a&topic=b&topic=c&topic=d", http.StatusBadRequest},
	} {
		if got := status(tt.query); got != tt.want {
			t.Errorf("?%s: status %d, want %d", tt.query, got, tt.want)
		}
	}
}

// TestServeLimitFlagsReachTheHub: each limit flag, on the command line or
// from its variable, sets its mercure.Config field; zero or a negative
// value is refused (the library would take it for "unset" and apply its
// default).
func TestServeLimitFlagsReachTheHub(t *testing.T) {
	field := map[string]func(mercure.Config) int{
		"max-body-size":            func(c mercure.Config) int { return int(c.MaxBodySize) },
		"max-publish-topics":       func(c mercure.Config) int { return c.MaxPublishTopics },
		"max-selectors":            func(c mercure.Config) int { return c.MaxMatchers },
		"max-topics":               func(c mercure.Config) int { return c.MaxTopicParams },
		"max-selector-len":         func(c mercure.Config) int { return c.MaxSelectorLen },
		"max-selector-cost":        func(c mercure.Config) int { return c.MaxSelectorCost },
		"max-pattern-bytes":        func(c mercure.Config) int { return c.MaxPatternBytes },
		"max-active-subscriptions": func(c mercure.Config) int { return c.MaxActiveSubscriptions },
		"max-token-size":           func(c mercure.Config) int { return c.MaxTokenSize },
		"selector-cache-size":      func(c mercure.Config) int { return c.SelectorCacheSize },
	}
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	(&limits{}).register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		get := field[f.Name]
		if get == nil {
			t.Errorf("--%s: not in this test's table", f.Name)
			return
		}
		base := []string{"--store", "memory", "--jwt-key", strings.Repeat("k", 32)}
		if got := get(mustConfig(t, append(base, "--"+f.Name, "77"), nil).mercureConfig(nil, discardLogger())); got != 77 {
			t.Errorf("--%s 77: the hub's field is %d", f.Name, got)
		}
		if got := get(mustConfig(t, base, map[string]string{envName(f.Name): "78"}).mercureConfig(nil, discardLogger())); got != 78 {
			t.Errorf("%s=78: the hub's field is %d", envName(f.Name), got)
		}
		for _, v := range []string{"0", "-1"} {
			var stderr strings.Builder
			if c, code := parseServeConfig(append(base, "--"+f.Name, v), env(nil), &stderr); c != nil || code != 2 ||
				!strings.Contains(stderr.String(), "--"+f.Name+": must be positive") {
				t.Errorf("--%s %s: exit %d, %q; want 2, saying it must be positive", f.Name, v, code, stderr.String())
			}
		}
	})
}
