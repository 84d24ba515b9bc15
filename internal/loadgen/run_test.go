package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRunBroadcastURL(t *testing.T) {
	_, srv := newBroadcaster(t)
	const subs, events = 50, 200
	rep, code, stderr := runJSON(t,
		"--url", srv.URL+"/events",
		"--publish", "url", "--publish-url", srv.URL+"/publish",
		"--subscribers", strconv.Itoa(subs), "--sources", "3",
		"--events", strconv.Itoa(events), "--rate", "2000",
		"--hub-pid", strconv.Itoa(os.Getpid()), "--hub-metrics", srv.URL+"/metrics")
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.Connected != subs || rep.SourceAddresses != 3 || rep.Scenario != "broadcast" {
		t.Errorf("connected %d from %d sources (%s), want %d from 3 (broadcast)", rep.Connected, rep.SourceAddresses, rep.Scenario, subs)
	}
	if rep.Published != events || rep.PublishErrors != 0 {
		t.Errorf("published %d with %d errors, want %d", rep.Published, rep.PublishErrors, events)
	}
	if rep.Deliveries != subs*events || rep.Expected != subs*events {
		t.Errorf("deliveries %d of %d expected, want %d", rep.Deliveries, rep.Expected, subs*events)
	}
	if rep.Missing != 0 || rep.Gaps != 0 || rep.Duplicates != 0 || rep.OutOfOrder != 0 || rep.OtherEvents != 0 || rep.Dropped != 0 {
		t.Errorf("anomalies: %+v", rep)
	}
	if rep.Comments != subs {
		t.Errorf("comments %d, want one per subscriber (%d)", rep.Comments, subs)
	}
	if rep.Latency == nil || rep.Latency.Count != subs*events || rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 {
		t.Errorf("latency %+v, want %d samples", rep.Latency, subs*events)
	}
	if rep.PostLatency == nil || rep.PostLatency.Count != events {
		t.Errorf("POST latency %+v, want %d samples", rep.PostLatency, events)
	}
	if rep.DeliveriesPerSec <= 0 || rep.PublishRate <= 0 {
		t.Errorf("deliveries/s %v, publish rate %v", rep.DeliveriesPerSec, rep.PublishRate)
	}
	// At 2000/s, the 200th event is due 199/2000 s after the first: the
	// rate is a ceiling the publishers keep to.
	if rep.PublishSeconds < 0.099 || rep.PublishRate > 2010 {
		t.Errorf("published in %.3fs at %.0f/s, want no faster than 2000/s", rep.PublishSeconds, rep.PublishRate)
	}
	h := rep.Hub
	if h == nil || h.RSSBefore <= 0 || h.RSSConnected <= 0 || h.RSSPeak < h.RSSBefore || h.CPUSeconds <= 0 {
		t.Fatalf("hub report %+v", h)
	}
	// The "hub" is this process: each subscriber adds a handler goroutine,
	// net/http's background reader for it, and a reader goroutine.
	if h.GoroutinesPerConn == nil || *h.GoroutinesPerConn < 2.5 || *h.GoroutinesPerConn > 3.5 {
		t.Errorf("goroutines per connection %v, want about 3", h.GoroutinesPerConn)
	}
	if rep.Client.CPUSeconds <= 0 || rep.Client.CPUPerDeliveryUS <= 0 || rep.Client.RSS <= 0 ||
		rep.Client.Reads < subs || rep.Client.Reads > subs*(events+1) || rep.Client.EventsPerRead <= 0 {
		t.Errorf("client report %+v", rep.Client)
	}
}

func TestRunMercure(t *testing.T) {
	b, srv := newBroadcaster(t)
	// Every event published at --rate 0 fits in a reader's queue: a reader
	// the race detector or a busy machine holds up is not cut off.
	b.queue = 1024
	sub := withQuery(srv.URL, "/.well-known/mercure", url.Values{"topic": {"bench"}})
	rep, code, stderr := runJSON(t, "--url", sub, "--token", b.token,
		"--subscribers", "20", "--events", "100", "--rate", "0", "--publishers", "4", "--size", "200")
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.PublishURL != srv.URL+"/.well-known/mercure" {
		t.Errorf("publish URL %q, want the subscribe URL without its query", rep.PublishURL)
	}
	if rep.Deliveries != 20*100 || rep.Missing != 0 || rep.Gaps != 0 || rep.Duplicates != 0 || rep.OutOfOrder != 0 {
		t.Errorf("report %+v, want 2000 deliveries and no anomalies", rep)
	}

	// Pipelined publishers: the same events, in each publisher's order.
	rep, code, stderr = runJSON(t, "--url", sub, "--token", b.token,
		"--subscribers", "5", "--events", "300", "--rate", "0", "--publishers", "3", "--pipeline", "8")
	if code != exitOK {
		t.Fatalf("--pipeline 8: exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.Pipeline != 8 || rep.Published != 300 || rep.PostLatency == nil || rep.PostLatency.Count != 300 ||
		rep.Deliveries != 5*300 || rep.Missing != 0 || rep.Gaps != 0 || rep.Duplicates != 0 || rep.OutOfOrder != 0 {
		t.Errorf("--pipeline 8: report %+v, want 300 publishes, 1500 deliveries and no anomalies", rep)
	}

	// A wrong token, or none: the first publish is refused and the run
	// stops there, saying what to do, without a report.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "wrong"}, "the --token given was refused"},
		{nil, "pass --token"},
	} {
		args := append([]string{"--url", sub, "--subscribers", "2", "--events", "1000", "--rate", "0"}, tc.args...)
		_, code, stderr := runJSON(t, args...)
		if code != exitFailed || !strings.Contains(stderr, "401 Unauthorized: bad token") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d, the 401 and %q", tc.args, code, stderr, exitFailed, tc.want)
		}
	}
	if n := b.refused.Load(); n != 2 {
		t.Errorf("%d refused publishes reached the server in 2 runs, want each stopped at its first refusal", n)
	}
}

// --subscribers 0 only publishes, and reports the hub's CPU (here, this
// process's) per publish. The hub's CPU time is read from /proc in clock
// ticks (10 ms): the run publishes enough to span many of them (100
// publishes took less than one, once).
func TestRunPublishOnly(t *testing.T) {
	b, srv := newBroadcaster(t)
	sub := withQuery(srv.URL, "/.well-known/mercure", url.Values{"topic": {"bench"}})
	rep, code, stderr := runJSON(t, "--url", sub, "--token", b.token, "--subscribers", "0",
		"--events", "3000", "--rate", "0", "--publishers", "4", "--hub-pid", strconv.Itoa(os.Getpid()))
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.Connected != 0 || rep.Published != 3000 || rep.PublishErrors != 0 || rep.Deliveries != 0 || rep.Expected != 0 || rep.Missing != 0 {
		t.Errorf("report %+v, want 3000 publishes and nothing expected", rep)
	}
	if rep.Hub == nil || rep.Hub.CPUPerPublishUS <= 0 || rep.Hub.CPUPerDeliveryUS != 0 || rep.Client.CPUPerPublishUS <= 0 {
		t.Errorf("hub %+v, client %+v: want a CPU per publish and none per delivery", rep.Hub, rep.Client)
	}
}

func TestRunSlowSubscribers(t *testing.T) {
	b, srv := newBroadcaster(t)
	rep, code, stderr := runJSON(t, "--url", srv.URL+"/events",
		"--publish", "url", "--publish-url", srv.URL+"/publish",
		"--subscribers", "20", "--slow", "4", "--events", "200", "--rate", "2000", "--size", "2048")
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	// The 16 that read get everything; the 4 that do not fill their
	// buffers, overflow their queues and are disconnected by the hub. (At
	// --rate 0 the publisher outpaces the readers too: each of the 20
	// connections takes 400 KiB in a few milliseconds, and a reader the
	// race detector or a busy machine holds up for 200 ms is cut off.)
	if rep.Deliveries != 16*200 || rep.Expected != 16*200 || rep.Missing != 0 {
		t.Errorf("deliveries %d of %d, missing %d; want 3200", rep.Deliveries, rep.Expected, rep.Missing)
	}
	b.mu.Lock()
	ended := b.ended
	b.mu.Unlock()
	if ended != 4 || rep.SlowClosedByHub != 4 {
		t.Errorf("the hub ended %d responses, the report says %d slow closed; want 4", ended, rep.SlowClosedByHub)
	}
}

func TestRunIdle(t *testing.T) {
	_, srv := newBroadcaster(t)
	start := time.Now()
	rep, code, stderr := runJSON(t, "--url", srv.URL+"/events", "--idle", "--subscribers", "30",
		"--ramp", "150", "--hold", "200ms", "--hub-pid", strconv.Itoa(os.Getpid()))
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.Scenario != "idle" || rep.Publish != publishNone || rep.Connected != 30 || rep.Comments != 30 {
		t.Errorf("report %+v", rep)
	}
	// 30 connections at 150/s take at least 29/150 s, then the hold.
	if rep.ConnectSeconds < 0.19 || rep.HoldSeconds < 0.2 || time.Since(start) < 390*time.Millisecond {
		t.Errorf("connect %.3fs, hold %.3fs: the ramp or the hold was not honoured", rep.ConnectSeconds, rep.HoldSeconds)
	}
	if rep.Hub == nil || rep.Hub.RSSConnected <= 0 || rep.Hub.GoroutinesBefore != nil {
		t.Errorf("hub report %+v, want RSS and no goroutine count", rep.Hub)
	}
}

func TestRunMaxDuration(t *testing.T) {
	_, srv := newBroadcaster(t)
	start := time.Now()
	rep, code, _ := runJSON(t, "--url", srv.URL+"/events", "--publish", "url", "--publish-url", srv.URL+"/publish",
		"--subscribers", "5", "--rate", "100", "--duration", "1m", "--max-duration", "300ms")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the run took %v with --max-duration 300ms", took)
	}
	if code != exitAnomalous || !rep.TimedOut {
		t.Errorf("exit %d, timed out %v; want 3 and true", code, rep.TimedOut)
	}
	if rep.Published == 0 || rep.Deliveries == 0 {
		t.Errorf("published %d, delivered %d before the deadline; want some", rep.Published, rep.Deliveries)
	}
}

func TestRunInterrupted(t *testing.T) {
	_, srv := newBroadcaster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Run(ctx, []string{"--url", srv.URL + "/events", "--idle", "--subscribers", "3", "--hold", "1m", "--json"}, &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	// The hold is a minute: a run that ignored the interruption would
	// last it out.
	if code != exitAnomalous || !rep.Interrupted || rep.TimedOut || time.Since(start) > 30*time.Second {
		t.Errorf("exit %d, interrupted %v, timed out %v after %v; want 3, true, false, promptly", code, rep.Interrupted, rep.TimedOut, time.Since(start))
	}
}

func TestRunConnectFailures(t *testing.T) {
	_, srv := newBroadcaster(t)
	// /nothing answers 404: every subscriber fails, and the report says why.
	rep, code, _ := runJSON(t, "--url", srv.URL+"/nothing", "--publish", "none", "--duration", "10ms", "--subscribers", "3")
	if code != exitAnomalous || rep.ConnectFailed != 3 || !strings.Contains(rep.ConnectError, "404") {
		t.Errorf("exit %d, %d failed (%q); want 3 and 404", code, rep.ConnectFailed, rep.ConnectError)
	}
}

func TestRunSubscribeOnlyCountsEvents(t *testing.T) {
	b, srv := newBroadcaster(t)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// Publish foreign events while the run counts them.
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				b.send([]byte("hello"))
			}
		}
	}()
	rep, code, stderr := runJSON(t, "--url", srv.URL+"/events", "--publish", "none", "--subscribers", "4", "--duration", "300ms")
	close(stop)
	<-done
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if rep.Deliveries < 4*10 || rep.OtherEvents != 0 || rep.Latency != nil || rep.DeliveriesPerSec <= 0 {
		t.Errorf("report %+v: want events counted, no latency", rep)
	}
}

func TestRunText(t *testing.T) {
	_, srv := newBroadcaster(t)
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), []string{"--url", srv.URL + "/events", "--publish", "url", "--publish-url", srv.URL + "/publish",
		"--subscribers", "3", "--events", "10", "--rate", "1000", "--hub-pid", strconv.Itoa(os.Getpid())}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"3 of 3 connected", "10 events", "30 of 30 expected", "missing 0, gaps 0", "latency", "p99", "hub pid", "per connection", "client"} {
		mustContain(t, out, want)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--url", "http://127.0.0.1:1/?topic=a", "--subscribers", "-1"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--subscribers", "0", "--idle"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--subscribers", "0", "--publish", "none"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--subscribers", "0", "--window", "4"},
		{"--url", "http://127.0.0.1:1/", "--slow", "200"},
		{"--url", "http://127.0.0.1:1/", "--publish", "carrier-pigeon"},
		{"--url", "http://127.0.0.1:1/", "--publish", "url"},
		{"--url", "http://127.0.0.1:1/"}, // mercure without a topic
		{"--url", "http://127.0.0.1:1/?topic=a", "--events", "0", "--duration", "0"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--idle", "--publish", "mercure"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--sources", "300"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--pipeline", "0"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--publishers", "1025"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--publishers", "1024", "--subscribers", "20000"},
		{"--url", "http://127.0.0.1:1/?topic=a", "extra"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--window", "-1"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--hostile", "-1"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--hostile", "4", "--hostile-kinds", "selectors,bogus"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--hostile-kinds", ""},
		{"--url", "http://127.0.0.1:1/?topic=a", "--reconnect-delay", "0"},
		{"--url", "http://127.0.0.1:1/?topic=a", "--restart-after", "1s"},                   // no --hub-pid, no --restart-cmd
		{"--url", "http://127.0.0.1:1/?topic=a", "--restart-after", "1s", "--hub-pid", "1"}, // no --restart-cmd
		{"--url", "http://127.0.0.1:1/?topic=a", "--restart-cmd", "true"},                   // no --restart-after
		{"--url", "http://127.0.0.1:1/?topic=a", "--restart-after", "1s", "--hub-pid", "1", "--restart-cmd", "true", "--idle"},
	} {
		var stderr bytes.Buffer
		if code := Run(t.Context(), args, new(bytes.Buffer), &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	var stderr bytes.Buffer
	if code := Run(t.Context(), []string{"--help"}, new(bytes.Buffer), &stderr); code != exitOK || !strings.Contains(stderr.String(), "--subscribers") && !strings.Contains(stderr.String(), "-subscribers") {
		t.Errorf("--help: exit %d, output %q", code, stderr.String())
	}
}

// A run with --window reports it and completes with every event
// delivered, published as fast as the subscribers take them
// (TestPublishWindow checks the hold itself).
func TestRunWindow(t *testing.T) {
	_, srv := newBroadcaster(t)
	const subs, events = 20, 300
	rep, code, stderr := runJSON(t,
		"--url", srv.URL+"/events",
		"--publish", "url", "--publish-url", srv.URL+"/publish",
		"--subscribers", strconv.Itoa(subs), "--publishers", "4",
		"--events", strconv.Itoa(events), "--rate", "0", "--window", "8")
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s, report: %+v", code, stderr, rep)
	}
	if rep.Window != 8 || rep.Deliveries != subs*events {
		t.Errorf("window %d, deliveries %d, want 8 and %d", rep.Window, rep.Deliveries, subs*events)
	}
}
