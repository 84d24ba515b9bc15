package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The hostile clients of --hostile N: anonymous connections beside the
// run, each doing one of the things an outside client may do to a Mercure
// hub to hurt the others, over and over until the run ends. They take turns
// in this order:
//
//   - selectors: a subscription with patterns as costly to match as the hub
//     admits (it starts with costlier ones and halves them on each 400),
//     distinct per connection, held open and read;
//   - slow body: a QUERY announcing a 1 KiB body sent one byte every half
//     second;
//   - churn: connections with 100 topic selectors, opened and closed ten
//     times a second (each one announced by subscription events when the
//     hub has them);
//   - cursors: connections with a bogus Last-Event-ID, ten a second, read
//     until the hub's answer arrives.
//
// They measure nothing of the hub's: the honest subscribers' figures, beside
// a run without them, tell what they cost.

var hostileKinds = []string{"selectors", "slow-body", "churn", "cursors"}

// HostileReport counts what the hostile clients did.
type HostileReport struct {
	Clients int `json:"clients"`
	// Per kind: connections opened, answered with a 4xx or 5xx status,
	// and ended by the hub while the client was still sending or reading.
	Kinds map[string]*HostileKind `json:"kinds"`
}

// HostileKind is one kind's counts.
type HostileKind struct {
	Clients     int    `json:"clients"`
	Connections int64  `json:"connections"`
	Refused     int64  `json:"refused"`
	CutByHub    int64  `json:"cut_by_hub"`
	Accepted    int64  `json:"accepted"`               // streams that opened (status 200)
	Selectors   string `json:"selectors,omitempty"`    // selectors: the costliest the hub accepted
	LastRefusal string `json:"last_refusal,omitempty"` // status line of the last refusal
}

type hostileCounters struct {
	connections, refused, cut, accepted atomic.Int64
	mu                                  sync.Mutex
	selectors, lastRefusal              string
}

// hostile runs the hostile clients until stop is closed.
type hostile struct {
	t        target // the hub path, without query
	counters map[string]*hostileCounters
	clients  map[string]int
	wg       sync.WaitGroup
	seq      atomic.Int64
}

// parseHostileKinds returns the kinds a --hostile-kinds list names.
func parseHostileKinds(list string) ([]string, error) {
	use := strings.Split(list, ",")
	for _, k := range use {
		if !slices.Contains(hostileKinds, k) {
			return nil, fmt.Errorf("--hostile-kinds: unknown kind %q (want %s)", k, strings.Join(hostileKinds, ", "))
		}
	}
	return use, nil
}

// newHostile returns n hostile clients of the kinds use, in turns.
func newHostile(sub target, n int, use []string) *hostile {
	path, _, _ := strings.Cut(sub.path, "?")
	h := &hostile{t: target{addr: sub.addr, host: sub.host, path: path},
		counters: make(map[string]*hostileCounters), clients: make(map[string]int)}
	for _, k := range hostileKinds {
		h.counters[k] = &hostileCounters{}
	}
	for i := range n {
		h.clients[use[i%len(use)]]++
	}
	return h
}

func (h *hostile) start(ctx context.Context, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	i := 0
	for _, kind := range hostileKinds {
		for range h.clients[kind] {
			h.wg.Add(1)
			go func(kind string, id int) {
				defer h.wg.Done()
				h.loop(ctx, kind, id)
			}(kind, i)
			i++
		}
	}
}

func (h *hostile) wait() { h.wg.Wait() }

func (h *hostile) report() *HostileReport {
	rep := &HostileReport{Kinds: make(map[string]*HostileKind)}
	for _, k := range hostileKinds {
		c := h.counters[k]
		c.mu.Lock()
		rep.Kinds[k] = &HostileKind{Clients: h.clients[k], Connections: c.connections.Load(), Refused: c.refused.Load(),
			CutByHub: c.cut.Load(), Accepted: c.accepted.Load(), Selectors: c.selectors, LastRefusal: c.lastRefusal}
		c.mu.Unlock()
		rep.Clients += h.clients[k]
	}
	return rep
}

// pause waits d, or less when ctx ends; it reports whether ctx is alive.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (h *hostile) loop(ctx context.Context, kind string, id int) {
	c := h.counters[kind]
	stars := 32 // selectors: halved on each refusal
	for ctx.Err() == nil {
		var err error
		switch kind {
		case "selectors":
			var refused bool
			refused, err = h.selectors(ctx, c, id, stars)
			if refused && stars > 1 {
				stars /= 2
				continue
			}
		case "slow-body":
			err = h.slowBody(ctx, c)
		case "churn":
			err = h.churn(ctx, c, id)
			if !pause(ctx, 100*time.Millisecond) {
				return
			}
		case "cursors":
			err = h.cursor(ctx, c)
			if !pause(ctx, 100*time.Millisecond) {
				return
			}
		}
		if err != nil && !pause(ctx, 50*time.Millisecond) {
			return
		}
	}
}

// dial opens a connection that ctx closes.
func (h *hostile) dial(ctx context.Context, c *hostileCounters) (net.Conn, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.t.addr)
	if err != nil {
		return nil, nil, err
	}
	c.connections.Add(1)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

// send writes a GET (or QUERY with a body length) and reads the status.
func (h *hostile) request(ctx context.Context, c *hostileCounters, method, query string, hdr string) (net.Conn, *bufio.Reader, int, func(), error) {
	conn, done, err := h.dial(ctx, c)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	req := method + " " + h.t.path
	if query != "" {
		req += "?" + query
	}
	req += " HTTP/1.1\r\nHost: " + h.t.host + "\r\nAccept: text/event-stream\r\n" + hdr + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		done()
		return nil, nil, 0, nil, err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		done()
		c.cut.Add(1)
		return nil, nil, 0, nil, err
	}
	status, _ := strconv.Atoi(strings.Fields(line + " 0 0")[1])
	if status >= 400 {
		c.refused.Add(1)
		c.mu.Lock()
		c.lastRefusal = strings.TrimSpace(line)
		c.mu.Unlock()
	} else if status == 200 {
		c.accepted.Add(1)
	}
	return conn, br, status, done, nil
}

// selectors subscribes with two URL patterns of stars leading wildcards and
// a template of adjacent variables, each distinct, and reads the stream
// until the hub ends it. It reports whether the hub refused them.
func (h *hostile) selectors(ctx context.Context, c *hostileCounters, id, stars int) (bool, error) {
	n := h.seq.Add(1)
	q := url.Values{}
	for j := range 2 {
		q.Add("match_urlpattern", "*://*/"+strings.Repeat("*", stars)+fmt.Sprintf("/x%d-%d-%d", id, n, j))
	}
	var tpl strings.Builder
	for v := range max(stars/3, 1) {
		fmt.Fprintf(&tpl, "{+v%d}", v)
	}
	fmt.Fprintf(&tpl, "/y%d-%d", id, n)
	q.Add("topic", tpl.String())
	_, br, status, done, err := h.request(ctx, c, "GET", q.Encode(), "")
	if err != nil {
		return false, err
	}
	defer done()
	if status == 400 {
		return true, nil
	}
	c.mu.Lock()
	c.selectors = fmt.Sprintf("2 URL patterns of %d leading stars and a template of %d adjacent variables", stars, max(stars/3, 1))
	c.mu.Unlock()
	_, err = io.Copy(io.Discard, br)
	if ctx.Err() == nil {
		c.cut.Add(1)
	}
	return false, err
}

// slowBody sends a QUERY whose body trickles in until the hub gives up.
func (h *hostile) slowBody(ctx context.Context, c *hostileCounters) error {
	conn, done, err := h.dial(ctx, c)
	if err != nil {
		return err
	}
	defer done()
	req := "QUERY " + h.t.path + " HTTP/1.1\r\nHost: " + h.t.host +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1024\r\n\r\ntopic="
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	closed := make(chan struct{})
	go func() { // the hub's answer, or the end of the connection
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	for i := 0; i < 1024-6; i++ {
		select {
		case <-closed:
			if ctx.Err() == nil {
				c.cut.Add(1)
			}
			return nil
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{'x'}); err != nil {
			if ctx.Err() == nil {
				c.cut.Add(1)
			}
			return nil
		}
	}
	<-closed
	return nil
}

// churn opens a subscription with 100 topics and closes it once it is
// open.
func (h *hostile) churn(ctx context.Context, c *hostileCounters, id int) error {
	q := url.Values{}
	n := h.seq.Add(1)
	for j := range 100 {
		q.Add("topic", fmt.Sprintf("https://churn.example/%d/%d/%d", id, n, j))
	}
	_, _, _, done, err := h.request(ctx, c, "GET", q.Encode(), "")
	if err != nil {
		return err
	}
	done()
	return nil
}

// cursor subscribes with a bogus Last-Event-ID and reads the start of the
// stream (the hub's reset) before leaving.
func (h *hostile) cursor(ctx context.Context, c *hostileCounters) error {
	id := fmt.Sprintf("bogus-%x", rand.Uint64())
	_, br, status, done, err := h.request(ctx, c, "GET", "topic=bench", "Last-Event-ID: "+id+"\r\n")
	if err != nil {
		return err
	}
	defer done()
	if status == 200 {
		for { // the headers, then the first event
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.HasPrefix(line, "data:") {
				return nil
			}
		}
	}
	return nil
}
