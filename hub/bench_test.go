package hub

// Benchmarks. The network benchmarks run the hub in a separate process (this
// test binary re-executed with SLUICE_HUB_BENCH_SERVER=1, GOMAXPROCS from
// SLUICE_HUB_BENCH_PROCS, default 1) and the load client in the benchmark
// process, so the hub's CPU time and memory are measured on their own:
//
//	go test -run '^$' -bench . -benchtime 1x ./hub
//
// See BENCHMARKS.md for results.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_HUB_BENCH_SERVER") == "1" {
		benchServer()
		return
	}
	os.Exit(m.Run())
}

type benchStats struct {
	HeapInuse, StackInuse uint64
	Goroutines            int
	CPUNanos              int64
	Subscribers           int64
	Delivered             uint64
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchServer is the hub process: /events (the hub), /publish, /stats.
func benchServer() {
	if p, err := strconv.Atoi(os.Getenv("SLUICE_HUB_BENCH_PROCS")); err == nil {
		runtime.GOMAXPROCS(p)
	} else {
		runtime.GOMAXPROCS(1)
	}
	st := store.NewMemory(store.MemoryConfig{MaxEvents: 200_000, MaxBytes: 1 << 30})
	heartbeat, _ := time.ParseDuration(os.Getenv("SLUICE_HUB_BENCH_HEARTBEAT")) // 0: the default
	h, err := New(Config{Store: st, QueueEvents: 4096, QueueBytes: 16 << 20, Heartbeat: heartbeat})
	if err != nil {
		panic(err)
	}
	h.Publish(context.Background(), Message{Topics: []string{"seed"}, Event: sse.Event{Data: "seed"}})
	mux := http.NewServeMux()
	mux.Handle("GET /events", h)
	// The same connection held by a handler that does nothing: what net/http
	// itself costs per idle subscriber.
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		size, _ := strconv.Atoi(q.Get("size"))
		rate, _ := strconv.Atoi(q.Get("rate"))
		var tick *time.Ticker
		if rate > 0 {
			tick = time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
		}
		pad := strings.Repeat("x", max(size-20, 0))
		for range n {
			if tick != nil {
				<-tick.C
			}
			data := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + pad
			if _, err := h.Publish(r.Context(), Message{Topics: []string{q.Get("topic")}, Event: sse.Event{Data: data}}); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	})
	// The floor: connections that a loop writes each event to directly,
	// with no hub (BenchmarkLatencyFloor).
	var raw struct {
		sync.Mutex
		conns []net.Conn
	}
	mux.HandleFunc("GET /raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		c, _, err := rc.Hijack()
		if err != nil {
			panic(err)
		}
		raw.Lock()
		raw.conns = append(raw.conns, c)
		raw.Unlock()
	})
	mux.HandleFunc("POST /rawpublish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		size, _ := strconv.Atoi(q.Get("size"))
		rate, _ := strconv.Atoi(q.Get("rate"))
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		pad := strings.Repeat("x", max(size-20, 0))
		raw.Lock()
		defer raw.Unlock()
		for range n {
			<-tick.C
			ev := "data: " + strconv.FormatInt(time.Now().UnixNano(), 10) + " " + pad + "\n\n"
			for _, c := range raw.conns {
				if _, err := io.WriteString(c, ev); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
			}
		}
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		runtime.GC() // the first shrinks stacks grown during setup, the second once more
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := h.Stats()
		raw.Lock()
		s.Subscribers += int64(len(raw.conns))
		raw.Unlock()
		json.NewEncoder(w).Encode(benchStats{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse,
			Goroutines: runtime.NumGoroutine(), CPUNanos: cpuNanos(), Subscribers: s.Subscribers, Delivered: s.Delivered})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	io.Copy(io.Discard, os.Stdin) // until the parent goes away
}

type hubProc struct {
	addr string
	cmd  *exec.Cmd
	in   io.WriteCloser
}

func startHubProc(b *testing.B) *hubProc {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_HUB_BENCH_SERVER=1")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	p := &hubProc{addr: strings.TrimSpace(line), cmd: cmd, in: in}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	return p
}

func (p *hubProc) stats(b *testing.B) benchStats {
	resp, err := http.Get("http://" + p.addr + "/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var s benchStats
	json.NewDecoder(resp.Body).Decode(&s)
	return s
}

func (p *hubProc) publish(b *testing.B, topic string, n, size, rate int) {
	p.post(b, fmt.Sprintf("/publish?topic=%s&n=%d&size=%d&rate=%d", topic, n, size, rate))
}

func (p *hubProc) post(b *testing.B, path string) {
	resp, err := http.Post("http://"+p.addr+path, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// dial opens an HTTP/1.1 subscription, as browsers do (the hub takes the
// connection over once live), and returns the connection and its event
// stream, the chunked body decoded.
func (p *hubProc) dial(b *testing.B, topic string) (net.Conn, io.Reader) {
	conn, br := p.dialProto(b, "/events?topic="+topic, "HTTP/1.1")
	return conn, httputil.NewChunkedReader(br)
}

// dialProto sends GET path with proto ("HTTP/1.0": the body is the bare
// event stream; "HTTP/1.1": chunked, and the hub takes the connection
// over once live) and reads the response head.
func (p *hubProc) dialProto(b *testing.B, path, proto string) (net.Conn, *bufio.Reader) {
	var conn net.Conn
	var err error
	for range 50 {
		if conn, err = net.Dial("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // listen backlog full: retry
	}
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s %s\r\nHost: hub\r\n\r\n", path, proto)
	br := bufio.NewReaderSize(conn, 32<<10)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			return conn, br
		}
	}
}

// countEvents reads until n events ("\n\n") arrived.
func countEvents(r io.Reader, n int) error {
	buf := make([]byte, 64<<10)
	var prev byte
	for n > 0 {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' && prev == '\n' {
				n--
			}
			prev = c
		}
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// BenchmarkBroadcast: 1,000 subscribers, events of 100 bytes published as
// fast as possible; reports deliveries per second and the hub process's CPU
// per delivery.
func BenchmarkBroadcast(b *testing.B) {
	const subs, events, size = 1000, 2000, 100
	p := startHubProc(b)
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for range subs {
		conn, br := p.dial(b, "bcast")
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := countEvents(br, 1+events*b.N); err != nil { // priming + events
				errs <- err
			}
		}()
	}
	waitSubs(b, p, subs)
	before := p.stats(b)
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		p.publish(b, "bcast", events, size, 0)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	after := p.stats(b)
	deliveries := float64(subs * events * b.N)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(after.CPUNanos-before.CPUNanos)/deliveries, "hub-cpu-ns/delivery")
}

func waitSubs(b *testing.B, p *hubProc, n int) {
	for p.stats(b).Subscribers < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
}

// latency reads events whose data starts with the publish time.
func latency(br io.Reader, n int, out *[]time.Duration) error {
	r := sse.NewReader(br)
	for n > 0 {
		ev, err := r.Next()
		if err != nil {
			return err
		}
		if ev.Data == "" {
			continue // priming
		}
		ts, _, _ := strings.Cut(ev.Data, " ")
		sent, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		*out = append(*out, time.Duration(time.Now().UnixNano()-sent))
		n--
	}
	return nil
}

func percentiles(b *testing.B, all []time.Duration) {
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(pct(0.5), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-µs")
}

// latencyRun: subs reading subscribers (plus stalled ones that never
// read), events published at rate per second; publish-to-receive
// percentiles over all deliveries.
func latencyRun(b *testing.B, subs, stalled, events, rate int) {
	latencyOf(b, subs, stalled, events, rate, false)
}

// latencyOf is latencyRun through the hub, or with floor through a loop
// in the hub's process that writes each event to every connection itself.
func latencyOf(b *testing.B, subs, stalled, events, rate int, floor bool) {
	p := startHubProc(b)
	dial := func() (net.Conn, io.Reader) {
		if floor {
			return p.dialProto(b, "/raw", "HTTP/1.0")
		}
		return p.dial(b, "lat")
	}
	for range stalled {
		conn, _ := dial()
		defer conn.Close()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []time.Duration
	for range subs {
		conn, br := dial()
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, events*b.N) // no growth (and GC) while measuring
			if err := latency(br, events*b.N, &mine); err != nil {
				b.Error(err)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	waitSubs(b, p, subs+stalled)
	b.ResetTimer()
	for range b.N {
		if floor {
			p.post(b, fmt.Sprintf("/rawpublish?n=%d&size=100&rate=%d", events, rate))
		} else {
			p.publish(b, "lat", events, 100, rate)
		}
	}
	wg.Wait()
	b.StopTimer()
	percentiles(b, all)
	s := p.stats(b)
	b.ReportMetric(float64(s.HeapInuse+s.StackInuse)/(1<<20), "hub-MiB")
}

// BenchmarkLatency: 100 subscribers × 1,000 events/s.
func BenchmarkLatency(b *testing.B) { latencyRun(b, 100, 0, 2000, 1000) }

// BenchmarkLatencyFloor: BenchmarkLatency's load (100 subscribers × 1,000
// events/s, the same client) with the hub replaced by a loop that writes
// each event to every connection: the latency this machine gives before
// any hub work, the floor under BenchmarkLatency.
func BenchmarkLatencyFloor(b *testing.B) { latencyOf(b, 100, 0, 2000, 1000, true) }

// BenchmarkLatencyStalled: 1,000 subscribers at 1,000 events/s, without
// and with one subscriber that never reads.
func BenchmarkLatencyStalled(b *testing.B) {
	b.Run("AllReading", func(b *testing.B) { latencyRun(b, 1000, 0, 2000, 1000) })
	b.Run("OneStalled", func(b *testing.B) { latencyRun(b, 999, 1, 2000, 1000) })
}

// BenchmarkIdle: hub-process memory and goroutines per idle subscriber, at
// 10,000 subscribers (SLUICE_HUB_BENCH_IDLE changes the count), for the hub
// and, as a baseline, for a handler that only holds the connection open.
func BenchmarkIdle(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_HUB_BENCH_IDLE")); err == nil {
		n = v
	}
	for _, path := range []string{"/events?topic=idle", "/plain"} {
		b.Run(map[bool]string{true: "Hub", false: "PlainHandler"}[path != "/plain"], func(b *testing.B) {
			p := startHubProc(b)
			before := p.stats(b)
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				conn, _ := p.dialProto(b, path, "HTTP/1.1") // as browsers connect
				conns = append(conns, conn)
			}
			if path != "/plain" {
				waitSubs(b, p, n)
			}
			after := p.detached(b, before, n)
			mem := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
			b.ReportMetric(mem/float64(n)/1024, "KiB/subscriber")
			b.ReportMetric((float64(after.StackInuse)-float64(before.StackInuse))/float64(n)/1024, "stack-KiB/subscriber")
			b.ReportMetric(float64(after.Goroutines-before.Goroutines)/float64(n), "goroutines/subscriber")
			if path == "/plain" {
				return
			}
			// Once each stream has written (events, as heartbeats do), its
			// stack holds what the write path took.
			p.publish(b, "idle", 3, 100, 0)
			for deadline := time.Now().Add(30 * time.Second); after.Delivered < before.Delivered+uint64(3*n) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				after = p.stats(b)
			}
			written := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
			b.ReportMetric(written/float64(n)/1024, "KiB/subscriber-written")
			b.ReportMetric((float64(after.StackInuse)-float64(before.StackInuse))/float64(n)/1024, "stack-KiB/subscriber-written")
		})
	}
}

// detached waits until the hijacked streams of n subscribers have moved to
// goroutines of their own (a goroutine each beyond before), and returns
// the stats then.
func (p *hubProc) detached(b *testing.B, before benchStats, n int) benchStats {
	s := p.stats(b)
	for deadline := time.Now().Add(10 * time.Second); s.Goroutines-before.Goroutines > n+n/100 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		s = p.stats(b)
	}
	return s
}

// BenchmarkStackAfterBurst: the stack each idle subscriber holds after a
// burst (1,000 subscribers each sent 1 MiB at once, in 4 KiB events, and
// reading it at once), with 1 s heartbeats: a stream whose stack grew in
// the burst (writes that waited, allocations that helped the garbage
// collector) moves to a fresh goroutine at its next heartbeat
// (conn.restack). Reported: the stack per subscriber idle, right after
// the burst, and two heartbeats later.
func BenchmarkStackAfterBurst(b *testing.B) {
	const n, size, events = 1000, 4 << 10, 256
	b.Setenv("SLUICE_HUB_BENCH_HEARTBEAT", "1s")
	for range b.N {
		p := startHubProc(b)
		before := p.stats(b)
		conns := make([]net.Conn, 0, n)
		for range n {
			conn, _ := p.dialProto(b, "/events?topic=burst", "HTTP/1.1")
			conns = append(conns, conn)
		}
		waitSubs(b, p, n)
		idle := p.detached(b, before, n)
		// delivered waits until every subscriber has m more events.
		delivered := func(m int) benchStats {
			s := p.stats(b)
			for deadline := time.Now().Add(60 * time.Second); s.Delivered < idle.Delivered+uint64(m*n) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				s = p.stats(b)
			}
			return s
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.CopyN(io.Discard, c, size*events)
			}()
		}
		p.publish(b, "burst", events, size, 0)
		wg.Wait()
		burst := delivered(events)
		time.Sleep(2500 * time.Millisecond) // two heartbeats
		after := p.stats(b)
		perSub := func(s benchStats) float64 { return (float64(s.StackInuse) - float64(before.StackInuse)) / n / 1024 }
		b.ReportMetric(perSub(idle), "stack-KiB/subscriber-idle")
		b.ReportMetric(perSub(burst), "stack-KiB/subscriber-burst")
		b.ReportMetric(perSub(after), "stack-KiB/subscriber-after")
		b.ReportMetric(float64(after.Goroutines-before.Goroutines)/n, "goroutines/subscriber")
		for _, c := range conns {
			c.Close()
		}
	}
}

// discardWriter is a ResponseWriter that counts events instead of writing:
// BenchmarkDispatch measures the engine alone (dispatch, queues, batching,
// wake-ups), without the network.
type discardWriter struct {
	hdr    http.Header
	mu     sync.Mutex
	events int
	want   int
	done   chan struct{}
}

func (w *discardWriter) Header() http.Header { return w.hdr }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Flush()              {}
func (w *discardWriter) Write(p []byte) (int, error) {
	n := bytes.Count(p, []byte("\n\n"))
	w.mu.Lock()
	w.events += n
	if w.events >= w.want && w.done != nil {
		close(w.done)
		w.done = nil
	}
	w.mu.Unlock()
	return len(p), nil
}

// BenchmarkDispatch: one event to 1,000 in-process subscribers per
// iteration; ns/op is per event, so per delivery it is ns/op / 1000.
func BenchmarkDispatch(b *testing.B) {
	const subs = 1000
	st := store.NewMemory(store.MemoryConfig{MaxEvents: 1 << 20, MaxBytes: 1 << 30})
	defer st.Close()
	h, _ := New(Config{Store: st, Heartbeat: -1, QueueEvents: 1 << 16, QueueBytes: 1 << 30, Logger: quietLoggerB()})
	ctx, cancel := context.WithCancel(context.Background())
	var ws []*discardWriter
	var wg sync.WaitGroup
	for range subs {
		w := &discardWriter{hdr: http.Header{}, want: b.N, done: make(chan struct{})}
		ws = append(ws, w)
		req, _ := http.NewRequestWithContext(ctx, "GET", "/events?topic=a", nil)
		wg.Add(1)
		go func() { defer wg.Done(); h.ServeHTTP(w, req) }()
	}
	for h.Subscribers() < subs {
		time.Sleep(time.Millisecond)
	}
	ev := sse.Event{Data: strings.Repeat("x", 100)}
	c0 := cpuNanos()
	b.ResetTimer()
	for range b.N {
		h.Publish(ctx, Message{Topics: []string{"a"}, Event: ev})
	}
	for _, w := range ws {
		w.mu.Lock()
		d := w.done
		w.mu.Unlock()
		if d != nil {
			<-d
		}
	}
	b.StopTimer()
	deliveries := float64(b.N * subs)
	b.ReportMetric(float64(cpuNanos()-c0)/deliveries, "cpu-ns/delivery")
	cancel()
	wg.Wait()
	h.Shutdown(context.Background())
}

func quietLoggerB() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
