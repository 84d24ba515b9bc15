package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Publish modes.
const (
	publishNone    = "none"
	publishURL     = "url"
	publishMercure = "mercure"
)

// newLoopbackClient returns an HTTP client that dials only addr, whatever
// the request's host resolves to, follows no redirects and uses no proxy:
// the requests go exactly where the loopback guard allowed.
func newLoopbackClient(addr string, conns int) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// publishTimeout bounds one publish request, from sending it to reading the
// whole response.
const publishTimeout = 10 * time.Second

// maxResponseLine bounds a line of a publish response's head.
const maxResponseLine = 8 << 10

// poster sends events to the server with POST requests over keep-alive
// HTTP/1.1 connections of its own (one per publisher, see pubConn): the
// request head is formatted once, each request is one write of reused
// buffers, and the response is parsed in place, so a publish costs the
// tool little more than its two system calls — net/http's client spent
// more CPU per request than the hub serving it, and with both on the same
// cores the tool bounded the publish rate it measured.
type poster struct {
	mode   string // publishURL or publishMercure
	url    string
	addr   string // ip:port to dial
	head   []byte // request line and headers, up to the Content-Length value
	prefix []byte // start of the body: "topic=…&data=" for Mercure
}

// newPoster returns the poster of mode to rawURL, dialling ep's address.
func newPoster(mode, rawURL string, ep endpoint, topic, token string) (*poster, error) {
	target := ep.url.RequestURI()
	for _, v := range []string{target, ep.url.Host, token} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("publish request field %q contains CR, LF or NUL", v)
		}
	}
	ctype := "text/plain; charset=utf-8"
	p := &poster{mode: mode, url: rawURL, addr: ep.addr.String()}
	if mode == publishMercure {
		ctype = "application/x-www-form-urlencoded"
		p.prefix = append(appendQueryEscape([]byte("topic="), topic), "&data="...)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-bench\r\nContent-Type: %s\r\n", target, ep.url.Host, ctype)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("Content-Length: ")
	p.head = b.Bytes()
	return p, nil
}

// appendQueryEscape appends s escaped as url.QueryEscape does.
func appendQueryEscape[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

// pubConn is one publisher's connection to the server, dialled on first use
// and again after an error or a response that closes it. It is not safe for
// concurrent use.
type pubConn struct {
	p    *poster
	conn net.Conn
	br   *bufio.Reader
	stop func() bool // unregisters the cancellation of the connection
	body []byte
	req  []byte
}

func (p *poster) conn() *pubConn { return &pubConn{p: p} }

// close closes the connection, if any.
func (c *pubConn) close() {
	if c.conn != nil {
		c.stop()
		c.conn.Close()
		c.conn = nil
	}
}

// post publishes data: one request, and its whole response.
func (c *pubConn) post(ctx context.Context, data []byte) error {
	var err error
	c.postAll(ctx, [][]byte{data}, func(e error) { err = e })
	return err
}

// refusedError is a publish the server refused for want of authorization
// (401 or 403): the run stops at the first one, since every other publish
// would be refused too.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// maxErrorBody bounds the body of an error response read for the message.
const maxErrorBody = 512

// dialError is a publish that failed before anything was sent: it did not
// reach the server, so it can be retried without publishing twice.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errClosedPipeline reports pipelined requests the server closed the
// connection without answering.
var errClosedPipeline = errors.New("publish: the server closed the connection before answering this pipelined request")

// postAll publishes each of data with one request, all sent in one write
// (HTTP/1.1 pipelining when there are several), then reads the responses
// in order, calling done with the outcome of each as soon as it is known.
func (c *pubConn) postAll(ctx context.Context, data [][]byte, done func(error)) {
	c.req = c.req[:0]
	for _, d := range data {
		c.body = append(c.body[:0], c.p.prefix...)
		if c.p.mode == publishMercure {
			c.body = appendQueryEscape(c.body, d)
		} else {
			c.body = append(c.body, d...)
		}
		c.req = append(c.req, c.p.head...)
		c.req = strconv.AppendInt(c.req, int64(len(c.body)), 10)
		c.req = append(c.req, "\r\n\r\n"...)
		c.req = append(c.req, c.body...)
	}
	fail := func(n int, err error) {
		c.close()
		for range n {
			done(err)
		}
	}
	if c.conn == nil {
		d := net.Dialer{Timeout: publishTimeout}
		conn, err := d.DialContext(ctx, "tcp", c.p.addr)
		if err != nil {
			fail(len(data), &dialError{fmt.Errorf("publish: %w", err)})
			return
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, maxResponseLine)
		} else {
			c.br.Reset(conn)
		}
		// Cancelling ctx interrupts a request in flight.
		c.stop = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	}
	err := c.conn.SetDeadline(time.Now().Add(publishTimeout))
	if err == nil {
		err = ctx.Err() // after the deadline is set: a cancellation from now on cuts the request
	}
	if err == nil {
		_, err = c.conn.Write(c.req)
	}
	if err != nil {
		fail(len(data), fmt.Errorf("publish: %w", err))
		return
	}
	for i := range data {
		keep, err := c.readResponse()
		done(err)
		if !keep { // an error status with its whole response read keeps it
			if err == nil {
				err = errClosedPipeline
			}
			fail(len(data)-1-i, err)
			return
		}
	}
}

// readResponse reads one response to a POST: its head (after any 1xx
// interim responses) and its body, delimited by Content-Length, chunked
// coding or the end of the connection. It reports whether the connection
// can carry another request, and an error unless the status is 2xx.
func (c *pubConn) readResponse() (keepAlive bool, err error) {
	for {
		line, err := c.line()
		if err != nil {
			return false, fmt.Errorf("publish: reading the response: %w", err)
		}
		proto, rest, _ := bytes.Cut(line, []byte(" "))
		code, _, _ := bytes.Cut(rest, []byte(" "))
		status, aerr := strconv.Atoi(string(code))
		if !bytes.HasPrefix(proto, []byte("HTTP/1.")) || aerr != nil || len(code) != 3 {
			return false, fmt.Errorf("publish: malformed status line %q", line)
		}
		statusText := ""
		if status/100 != 2 {
			statusText = string(rest)
		}
		keep := string(proto) == "HTTP/1.1"
		length, chunked := int64(-1), false
		for {
			h, err := c.line()
			if err != nil {
				return false, fmt.Errorf("publish: reading the response head: %w", err)
			}
			if len(h) == 0 {
				break
			}
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return false, fmt.Errorf("publish: malformed header line %q", h)
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 {
					return false, fmt.Errorf("publish: malformed Content-Length %q", value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				if !bytes.EqualFold(value, []byte("chunked")) {
					return false, fmt.Errorf("publish: unsupported Transfer-Encoding %q", value)
				}
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					switch tok = bytes.TrimSpace(tok); {
					case bytes.EqualFold(tok, []byte("close")):
						keep = false
					case bytes.EqualFold(tok, []byte("keep-alive")) && string(proto) == "HTTP/1.0":
						keep = true
					}
				}
			}
		}
		if status >= 100 && status < 200 {
			continue // interim response: the final one follows
		}
		why := ""
		switch {
		case status == 204 || status == 304:
		case chunked:
			err = c.discardChunked()
		case length >= 0:
			if status/100 != 2 && length <= maxErrorBody {
				// An error's short body says what was wrong.
				var b []byte
				if b, err = c.br.Peek(int(length)); err == nil {
					why = strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
				}
			}
			if err == nil {
				_, err = c.br.Discard(int(length))
			}
		default: // delimited by the end of the connection
			_, err = io.Copy(io.Discard, c.br)
			keep = false
		}
		if err != nil {
			return false, fmt.Errorf("publish: reading the response body: %w", err)
		}
		if status/100 != 2 {
			// Not the reason phrase again ("401 Unauthorized: Unauthorized").
			_, reason, _ := strings.Cut(statusText, " ")
			if why = strings.TrimPrefix(strings.TrimPrefix(why, reason), ": "); why != "" {
				statusText += ": " + why
			}
			if status == 401 || status == 403 {
				return keep, &refusedError{fmt.Sprintf("publish: %s answered %s", c.p.url, statusText)}
			}
			return keep, fmt.Errorf("publish: %s answered %s", c.p.url, statusText)
		}
		return keep, nil
	}
}

// line reads one line of a response head or of chunked framing, without
// its line break. The slice is valid until the next read.
func (c *pubConn) line() ([]byte, error) {
	l, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("a line over %d bytes", c.br.Size())
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

// discardChunked reads a chunked body to its end.
func (c *pubConn) discardChunked() error {
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		hexSize, _, _ := bytes.Cut(l, []byte(";"))
		size, err := strconv.ParseUint(string(bytes.TrimSpace(hexSize)), 16, 62)
		if err != nil {
			return errChunked
		}
		if size == 0 {
			for { // trailer fields, then the empty line
				l, err := c.line()
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(size)); err != nil {
			return err
		}
		if l, err := c.line(); err != nil || len(l) != 0 {
			if err == nil {
				err = errChunked
			}
			return err
		}
	}
}

// publishPlan says what to publish.
type publishPlan struct {
	publishers int
	rate       float64       // events per second over all publishers; 0 for as fast as possible
	events     int64         // total events; 0 for no limit
	duration   time.Duration // publishing time, on the schedule and the clock; 0 for no limit
	size       int           // data size to pad to
	pipeline   int           // requests a publisher sends before reading their responses (1: no pipelining)
	// window, when positive, holds the publishers while that many events
	// are published and not yet delivered to every reading subscriber
	// (estimated as published − deliveries / readers); delivered reports
	// the deliveries so far.
	window    int64
	readers   int64
	delivered func() int64
}

// publishResult is what the publishers did.
type publishResult struct {
	attempted  int64
	errors     int64
	firstErr   error
	refused    error         // the first publish refused for want of authorization, which stopped them all
	firstSend  time.Duration // run time of the first send
	lastSend   time.Duration // run time of the last send
	maxLag     time.Duration // how far behind schedule a send started, at worst
	postTimes  *histogram    // request round trips, ns
	perPubSent []int64       // sequence numbers used by each publisher
}

// publish runs plan.publishers goroutines that post events on a shared
// schedule (event i is due at i/rate after the start) until the plan's
// limits or ctx end it, or the server refuses a publish for want of
// authorization.
func publish(ctx context.Context, e *env, p *poster, plan publishPlan) *publishResult {
	res := &publishResult{postTimes: newHistogram(), perPubSent: make([]int64, plan.publishers), firstSend: -1}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var refused sync.Once
	var (
		next     atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
		attempts atomic.Int64
		failures atomic.Int64
	)
	t0 := time.Now()
	for pub := range plan.publishers {
		wg.Go(func() {
			var (
				seq          int64
				data                       = make([][]byte, max(plan.pipeline, 1))
				conn                       = p.conn()
				first, last  time.Duration = -1, 0
				lag          time.Duration
				timer        = time.NewTimer(time.Hour)
				firstFailure error
				gen          int64 // e.restarts when conn was dialled
			)
			timer.Stop()
			defer conn.close()
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				res.perPubSent[pub] = seq
				if first >= 0 && (res.firstSend < 0 || first < res.firstSend) {
					res.firstSend = first
				}
				res.lastSend = max(res.lastSend, last)
				res.maxLag = max(res.maxLag, lag)
				if firstFailure != nil && res.firstErr == nil {
					res.firstErr = firstFailure
				}
			}()
			// due returns when event i is due, and whether the plan's
			// limits let it be sent at all.
			due := func(i int64) (time.Duration, bool) {
				if plan.events > 0 && i >= plan.events {
					return 0, false
				}
				d := time.Since(t0)
				if plan.rate > 0 {
					d = time.Duration(float64(i) * float64(time.Second) / plan.rate)
				}
				// --duration bounds the schedule and the wall time: publishers
				// that fell behind stop at the end all the same.
				if plan.duration > 0 && (d >= plan.duration || time.Since(t0) >= plan.duration) {
					return 0, false
				}
				return d, true
			}
			for {
				i := next.Add(1) - 1
				at, ok := due(i)
				if !ok {
					return
				}
				if wait := at - time.Since(t0); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						timer.Stop()
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				for plan.window > 0 && plan.readers > 0 && attempts.Load()-plan.delivered()/plan.readers >= plan.window {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(20 * time.Microsecond)
				}
				lag = max(lag, time.Since(t0)-at)
				// With --pipeline, the events already due go with this one.
				n := 1
				for n < len(data) {
					j := next.Load()
					at, ok := due(j)
					if !ok || at > time.Since(t0) {
						break
					}
					if next.CompareAndSwap(j, j+1) {
						n++
					}
				}
				if e.restart {
					e.gate.RLock()
					if g := e.restarts.Load(); g != gen {
						conn.close() // to the killed hub
						gen = g
					}
				}
				ts := e.now()
				if first < 0 {
					first = ts
				}
				last = ts
				for k := range n {
					data[k] = appendPayload(data[k][:0], e.mark, pub, seq, int64(ts), plan.size)
					seq++
				}
				attempts.Add(int64(n))
				outcome := func(err error) {
					res.postTimes.record(int64(e.now() - ts))
					if err != nil {
						failures.Add(1)
						if firstFailure == nil {
							firstFailure = err
						}
						if re := (*refusedError)(nil); errors.As(err, &re) {
							refused.Do(func() {
								mu.Lock()
								res.refused = err
								mu.Unlock()
								stop()
							})
						}
					}
				}
				for {
					// With --restart-after, a publish that did not reach the
					// hub (it is down) is sent again, with the same send
					// time, until the hub is back or the run ends.
					unsent := false
					conn.postAll(ctx, data[:n], func(err error) {
						if de := (*dialError)(nil); e.restart && ctx.Err() == nil && errors.As(err, &de) {
							unsent = true
							return
						}
						outcome(err)
					})
					if !unsent {
						break
					}
					select {
					case <-time.After(20 * time.Millisecond):
						continue
					case <-ctx.Done():
					}
					for range n {
						outcome(context.Cause(ctx))
					}
					break
				}
				if e.restart {
					e.gate.RUnlock()
				}
				if ctx.Err() != nil {
					// Stopped mid-request: the events may or may not be out.
					return
				}
			}
		})
	}
	wg.Wait()
	res.attempted, res.errors = attempts.Load(), failures.Load()
	if res.firstSend < 0 {
		res.firstSend = 0
	}
	return res
}
