// Command relayfloor measures the CPU a process spends to relay small
// messages from N upstream TCP connections to N downstream ones, one
// message per read and per write (50 messages/s per connection, as an LLM
// streams tokens): the floor under what a relaying hub spends per token,
// with no HTTP, no SSE parsing and no log. Run the load on one core and
// the relay on the other (BENCHMARKS.md, issue 17):
//
//	go build -o /tmp/relayfloor ./relayfloor   # in bench/
//	taskset -c 1 /tmp/relayfloor -mode load -n 5000 -secs 10 &
//	GOMAXPROCS=1 taskset -c 0 /tmp/relayfloor -mode relay -n 5000
package main

import (
	"bufio"
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
	mode := flag.String("mode", "load", "load or relay")
	n := flag.Int("n", 5000, "connections")
	rate := flag.Int("rate", 50, "messages/s per connection")
	secs := flag.Int("secs", 10, "seconds of messages")
	up := flag.String("up", "127.0.0.1:17001", "upstream address")
	down := flag.String("down", "127.0.0.1:17002", "downstream address")
	flag.Parse()
	msg := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"tok\"}}]}\n\n")
	switch *mode {
	case "load":
		lu, err := net.Listen("tcp", *up)
		if err != nil {
			panic(err)
		}
		ld, err := net.Listen("tcp", *down)
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
		for i := 0; i < *n; i++ {
			c, err := lu.Accept()
			if err != nil {
				panic(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(time.Second / time.Duration(*rate))
				defer t.Stop()
				for range *rate * *secs {
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
	case "relay":
		var wg sync.WaitGroup
		var msgs atomic.Int64
		conns := make([][2]net.Conn, *n)
		for i := range conns {
			u, err := net.Dial("tcp", *up)
			if err != nil {
				panic(err)
			}
			d, err := net.Dial("tcp", *down)
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
