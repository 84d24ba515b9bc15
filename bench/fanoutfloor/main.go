// Command fanoutfloor measures the least it takes to deliver one small
// message to N subscriber connections on this machine: one goroutine
// writes it to every connection in a loop (no hub, no queue, no goroutine
// per subscriber), and a load process on the other core reads them all.
// It reports the sender's loop time and CPU, and when the last reader got
// it: the floor under a hub's "one event to N subscribers" (BENCHMARKS.md,
// issue 15):
//
//	go build -o /tmp/fanoutfloor ./fanoutfloor   # in bench/
//	taskset -c 1 /tmp/fanoutfloor -mode load -n 19500 &
//	GOMAXPROCS=1 taskset -c 0 /tmp/fanoutfloor -mode send -n 19500
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func cpu() time.Duration {
	b, _ := os.ReadFile("/proc/self/stat")
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return time.Duration(u+s) * 10 * time.Millisecond
}

func main() {
	mode := flag.String("mode", "load", "load or send")
	n := flag.Int("n", 19500, "connections")
	rounds := flag.Int("rounds", 5, "messages, one per second")
	addr := flag.String("addr", "127.0.0.1:17003", "the load's address")
	flag.Parse()
	msg := []byte("id: 42\ndata: {\"price\":101.25,\"symbol\":\"SLU\"}\n\n")
	switch *mode {
	case "load":
		l, err := net.Listen("tcp", *addr)
		if err != nil {
			panic(err)
		}
		var got atomic.Int64
		var last atomic.Int64 // UnixNano of the last message read
		var wg sync.WaitGroup
		for range *n {
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
		for r := 0; r < *rounds; r++ {
			want := int64((r + 1) * *n)
			for got.Load() < want {
				time.Sleep(time.Millisecond)
			}
			fmt.Printf("load: round %d: %d messages, last read at %d\n", r, got.Load(), last.Load())
		}
		wg.Wait()
	case "send":
		conns := make([]net.Conn, *n)
		for i := range conns {
			c, err := net.Dial("tcp", *addr)
			if err != nil {
				panic(err)
			}
			conns[i] = c
		}
		time.Sleep(2 * time.Second) // the load's readers are parked
		for r := 0; r < *rounds; r++ {
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
