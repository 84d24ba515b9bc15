// Command floor measures, on the machine it runs on, the least CPU and
// time two jobs of an SSE hub take with no HTTP, no SSE parsing, no log
// and no hub (BENCHMARKS.md, issues 15 and 17). Run the load on one core
// and the measured side on the other.
//
// Relaying tokens (-mode relay): 50-byte messages from N upstream TCP
// connections to N downstream ones, one goroutine per pair, a read and a
// flushed write per message, 50 messages/s per connection:
//
//	go build -o /tmp/floor ./floor   # in bench/
//	taskset -c 1 /tmp/floor -mode relay-load -n 5000 -secs 10 &
//	GOMAXPROCS=1 taskset -c 0 /tmp/floor -mode relay -n 5000
//
// One event to N subscribers (-mode fanout): one goroutine writes a
// message to each of N connections in a tight loop, once a second, while
// N readers in the load process wait for it:
//
//	taskset -c 1 /tmp/floor -mode fanout-load -n 19500 &
//	GOMAXPROCS=1 taskset -c 0 /tmp/floor -mode fanout -n 19500
//
// Answering a publish over HTTP (-mode publish): a net/http server with
// sluice serve's timeouts whose handler reads the body, sets two
// headers and writes a 12-byte id, the least a Mercure hub does per
// POST; drive it with sluice bench --subscribers 0 and read
// hub.cpu_per_publish_us:
//
//	GOMAXPROCS=1 taskset -c 0 /tmp/floor -mode publish &
//	taskset -c 1 sluice bench --url 'http://127.0.0.1:17004/.well-known/mercure?topic=bench' \
//	    --token x --hub-pid $! --subscribers 0 --rate 0 --publishers 4 --duration 5s --json
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cpu returns the CPU time the process has used.
func cpu() time.Duration {
	b, _ := os.ReadFile("/proc/self/stat")
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return time.Duration(u+s) * 10 * time.Millisecond
}

func main() {
	mode := flag.String("mode", "relay-load", "relay-load, relay, fanout-load, fanout or publish")
	n := flag.Int("n", 5000, "connections")
	rate := flag.Int("rate", 50, "relay: messages/s per connection")
	secs := flag.Int("secs", 10, "relay: seconds of messages")
	up := flag.String("up", "127.0.0.1:17001", "relay: upstream address")
	down := flag.String("down", "127.0.0.1:17002", "relay: downstream address")
	rounds := flag.Int("rounds", 5, "fanout: messages, one per second")
	addr := flag.String("addr", "127.0.0.1:17003", "fanout: the load's address; publish: the server's (default 127.0.0.1:17004)")
	flag.Parse()
	switch *mode {
	case "relay-load", "relay":
		relay(*mode == "relay", *n, *rate, *secs, *up, *down)
	case "fanout-load", "fanout":
		fanout(*mode == "fanout", *n, *rounds, *addr)
	case "publish":
		a := *addr
		if !isSet("addr") {
			a = "127.0.0.1:17004"
		}
		publish(a)
	default:
		fmt.Fprintf(os.Stderr, "floor: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
}

// relay runs the load (upstream writers and downstream readers) or,
// with measure, the relay between them.
func relay(measure bool, n, rate, secs int, up, down string) {
	msg := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"tok\"}}]}\n\n")
	if !measure {
		lu, err := net.Listen("tcp", up)
		if err != nil {
			panic(err)
		}
		ld, err := net.Listen("tcp", down)
		if err != nil {
			panic(err)
		}
		var got atomic.Int64
		go func() {
			for {
				c, err := ld.Accept()
				if err != nil {
					return
				}
				go func() {
					buf := make([]byte, 4096)
					for {
						k, err := c.Read(buf)
						if err != nil {
							return
						}
						got.Add(int64(k))
					}
				}()
			}
		}()
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			c, err := lu.Accept()
			if err != nil {
				panic(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(time.Second / time.Duration(rate))
				defer t.Stop()
				for range rate * secs {
					<-t.C
					if _, err := c.Write(msg); err != nil {
						return
					}
				}
				c.Close()
			}()
		}
		wg.Wait()
		time.Sleep(time.Second)
		fmt.Printf("load: received %d messages\n", got.Load()/int64(len(msg)))
	} else {
		var wg sync.WaitGroup
		var msgs atomic.Int64
		conns := make([][2]net.Conn, n)
		for i := range conns {
			u, err := net.Dial("tcp", up)
			if err != nil {
				panic(err)
			}
			d, err := net.Dial("tcp", down)
			if err != nil {
				panic(err)
			}
			conns[i] = [2]net.Conn{u, d}
		}
		start, c0 := time.Now(), cpu()
		for _, p := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := bufio.NewReaderSize(p[0], 4096)
				w := bufio.NewWriterSize(p[1], 4096)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						p[1].Close()
						return
					}
					if _, err := w.Write(line); err != nil {
						return
					}
					if len(line) == 1 { // the blank line ends a message: flush it
						if w.Flush() != nil {
							return
						}
						msgs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		el, c := time.Since(start), cpu()-c0
		m := msgs.Load()
		fmt.Printf("relay: %d messages in %v, CPU %v (%.2f cores), %.2f µs per message\n", m, el.Round(time.Millisecond), c, c.Seconds()/el.Seconds(), float64(c.Microseconds())/float64(m))
	}
}

// fanout runs the readers or, with measure, the writing loop.
func fanout(measure bool, n, rounds int, addr string) {
	msg := []byte("id: 42\ndata: {\"price\":101.25,\"symbol\":\"SLU\"}\n\n")
	if !measure {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			panic(err)
		}
		var got atomic.Int64
		var last atomic.Int64 // UnixNano of the last message read
		var wg sync.WaitGroup
		for range n {
			c, err := l.Accept()
			if err != nil {
				panic(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 512)
				have := 0
				for {
					k, err := c.Read(buf)
					if err != nil {
						return
					}
					for have += k; have >= len(msg); have -= len(msg) {
						got.Add(1)
						last.Store(time.Now().UnixNano())
					}
				}
			}()
		}
		for r := 0; r < rounds; r++ {
			want := int64((r + 1) * n)
			for got.Load() < want {
				time.Sleep(time.Millisecond)
			}
			fmt.Printf("load: round %d: %d messages, last read at %d\n", r, got.Load(), last.Load())
		}
		wg.Wait()
	} else {
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			conns[i] = c
		}
		time.Sleep(2 * time.Second) // the load's readers are parked
		for r := 0; r < rounds; r++ {
			c0, start := cpu(), time.Now()
			for _, c := range conns {
				if _, err := c.Write(msg); err != nil {
					panic(err)
				}
			}
			el, used := time.Since(start), cpu()-c0
			fmt.Printf("send: round %d: started at %d, %d writes in %v (%.2f µs each), CPU %v\n", r, start.UnixNano(), len(conns), el.Round(time.Microsecond), float64(el.Microseconds())/float64(len(conns)), used)
			time.Sleep(time.Second)
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// isSet reports whether the flag name was given.
func isSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// publish serves, on addr, the least a hub does for each publish POST:
// read the body, set two headers, write an id; with the timeouts of
// sluice serve's server (headers bounded, idle connections closed).
func publish(addr string) {
	var n atomic.Int64
	srv := &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Request-Id", "0123456789abcdef")
			w.WriteHeader(http.StatusOK)
			_, _ = fmt.Fprintf(w, "urn:%08d", n.Add(1)%100000000)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	fmt.Fprintf(os.Stderr, "floor: publish: serving on %s\n", addr)
	if err := srv.ListenAndServe(); err != nil {
		panic(err)
	}
}
