package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/sse"
)

// maxHead bounds the status line and headers of a response.
const maxHead = 64 << 10

// target is where subscribers connect.
type target struct {
	addr string // ip:port to dial
	host string // the Host header
	path string // the request target: path and query
}

// buildRequest returns the GET request every subscriber sends.
func buildRequest(t target, authorization, lastEventID string) ([]byte, error) {
	for _, v := range []string{t.host, t.path, authorization, lastEventID} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("request field %q contains CR, LF or NUL", v)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: sluice-bench\r\n", t.path, t.host)
	if authorization != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", authorization)
	}
	if lastEventID != "" {
		fmt.Fprintf(&b, "Last-Event-ID: %s\r\n", lastEventID)
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// responseHead is what a subscriber needs of a response's status line and
// headers.
type responseHead struct {
	status        int
	statusLine    string
	contentType   string
	chunked       bool
	contentLength int64 // -1 when absent
}

// readHead reads a response's status line and headers from r. It returns
// them and the bytes read past them (the start of the body).
func readHead(r io.Reader) (responseHead, []byte, error) {
	buf := make([]byte, 0, 1024)
	end := -1
	for end < 0 {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxHead {
				return responseHead{}, nil, fmt.Errorf("response head over %d bytes", maxHead)
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		from := max(len(buf)-3, 0)
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf[from:], []byte("\n\r\n")); i >= 0 {
			end = from + i + 3
		}
		if i := bytes.Index(buf[from:], []byte("\n\n")); i >= 0 && (end < 0 || from+i+2 < end) {
			end = from + i + 2
		}
		if end < 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return responseHead{}, nil, fmt.Errorf("reading the response head: %w", err)
		}
	}
	h, err := parseHead(string(buf[:end]))
	if err != nil {
		return h, nil, err
	}
	return h, bytes.Clone(buf[end:]), nil
}

func parseHead(s string) (responseHead, error) {
	h := responseHead{contentLength: -1}
	lines := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	h.statusLine = strings.TrimSuffix(lines[0], "\r")
	proto, rest, _ := strings.Cut(h.statusLine, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 {
		return h, fmt.Errorf("malformed status line %q", h.statusLine)
	}
	h.status = status
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok {
			return h, fmt.Errorf("malformed header line %q", line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-type":
			h.contentType = value
		case "transfer-encoding":
			codings := strings.Split(strings.ToLower(value), ",")
			if last := strings.TrimSpace(codings[len(codings)-1]); last != "chunked" || len(codings) > 1 {
				return h, fmt.Errorf("unsupported Transfer-Encoding %q", value)
			}
			h.chunked = true
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return h, fmt.Errorf("malformed Content-Length %q", value)
			}
			h.contentLength = n
		}
	}
	return h, nil
}

// prefixReader returns the bytes of p, then reads from r.
type prefixReader struct {
	p []byte
	r io.Reader
}

func (r *prefixReader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		if r.p = r.p[n:]; len(r.p) == 0 {
			r.p = nil
		}
		return n, nil
	}
	return r.r.Read(b)
}

// countingReader counts the reads that return data: with one event per
// server write, one per event; with a server that batches, fewer.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		*c.n++
	}
	return n, err
}

// env is what all the subscribers of a run share. It is read-only once
// subscribers start, except for the atomic fields.
type env struct {
	start          time.Time // the run's clock: every timestamp is time since start
	mark           string    // marker(run)
	target         target
	request        []byte
	sources        []*net.TCPAddr // source addresses to cycle over; none to let the kernel pick
	connectTimeout time.Duration
	maxEventSize   int
	publishers     int
	countAll       bool // count untagged events as deliveries (no publisher)
	authorization  string
	// reconnect: a stream that ends before the run stops is resumed with
	// the id of the last event received, after reconnectDelay (doubled
	// after each failed attempt, up to maxReconnectDelay, with jitter).
	reconnect      bool
	reconnectDelay time.Duration

	stopping atomic.Bool  // set before the run closes connections
	dropped  atomic.Int64 // subscribers whose stream ended before stopping

	// killedAt is the run time at which the hub was killed (--restart-after),
	// 0 before; caughtUp counts the subscribers that have since received an
	// event published after it (restart.go).
	killedAt atomic.Int64
	caughtUp atomic.Int64
	// With --restart-after, publishers hold gate (read) while a request
	// is in flight, so that the hub is killed between two publishes and
	// every publish is either acknowledged or refused before it reached
	// the hub (and is then retried): none is in doubt. restarts counts the
	// restarts, so that publishers drop connections to the killed hub.
	restart  bool
	gate     sync.RWMutex
	restarts atomic.Int64
}

// maxReconnectDelay bounds the wait between two reconnection attempts.
const maxReconnectDelay = 2 * time.Second

// now returns the time since the run started.
func (e *env) now() time.Duration { return time.Since(e.start) }

// shard is a part of the run's shared counters: subscribers are spread over
// a few shards so that their atomic additions rarely share a cache line.
type shard struct {
	latency *histogram
	unique  atomic.Int64 // unique tagged events received (or all events with countAll)
}

// subscriber is one raw-TCP SSE connection.
type subscriber struct {
	id    int
	slow  bool // stops reading once connected
	shard *shard

	mu     sync.Mutex
	conn   net.Conn
	closed bool

	// Written by the subscriber's goroutine; read once it has ended.
	connected  bool
	connErr    error
	dropErr    error // why the stream ended before the run stopped
	events     int64 // events received with the run's tag, duplicates included
	unique     int64
	other      int64 // events without the run's tag
	comments   int64
	reads      int64 // reads from the connection that returned data
	holes      int64
	dups       int64
	late       int64
	lastRecv   time.Duration
	tracks     []seqTrack
	slowClosed bool          // a slow subscriber found its connection closed by the server
	lastID     string        // the last event id received: the cursor to resume from
	reconnects int64         // streams resumed (--reconnect)
	resumedAt  time.Duration // run time of the last resumed stream's response head
	caughtUpAt time.Duration // run time of the first event published after the hub was killed
}

// errStopped reports a connection that completed after the run stopped.
var errStopped = errors.New("run stopped")

// setConn records c as the subscriber's connection, or closes it and
// reports false when the run has already closed the subscriber.
func (s *subscriber) setConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conn = c
	return true
}

// close closes the subscriber's connection, now or as soon as it exists.
func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
}

// run connects, calls connected (whether or not that worked), and then
// reads events until the connection ends. A slow subscriber instead waits
// for stop and probes whether the server closed its connection.
func (s *subscriber) run(ctx context.Context, e *env, connected func(), stop <-chan struct{}) {
	s.tracks = make([]seqTrack, e.publishers)
	body, err := s.connect(ctx, e)
	if err != nil {
		s.close() // a connection that got as far as the response head
		s.connErr = err
		connected()
		return
	}
	s.connected = true
	connected()
	if s.slow {
		<-stop
		s.slowClosed = s.probeClosed(body)
		s.close()
		return
	}
	for {
		s.read(e, body)
		if !e.reconnect || e.stopping.Load() {
			return
		}
		if body = s.resume(ctx, e, stop); body == nil {
			return
		}
	}
}

// resume reconnects a stream that ended, with the id of the last event
// received as Last-Event-ID, until it works or the run stops. It returns
// the new body, or nil when the run stopped first (the subscriber then
// counts as dropped).
func (s *subscriber) resume(ctx context.Context, e *env, stop <-chan struct{}) io.Reader {
	delay := e.reconnectDelay
	for {
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
		if e.stopping.Load() || ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
		s.mu.Unlock()
		body, err := s.connect(ctx, e)
		if err == nil {
			s.reconnects++
			s.resumedAt = e.now()
			// The drop was counted when the stream ended: it is over.
			s.dropErr = nil
			e.dropped.Add(-1)
			return body
		}
		if errors.Is(err, errStopped) {
			return nil
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// connect dials, sends the request and reads the response head. It returns
// the decoded body.
func (s *subscriber) connect(ctx context.Context, e *env) (io.Reader, error) {
	d := net.Dialer{Timeout: e.connectTimeout}
	if len(e.sources) > 0 {
		d.LocalAddr = e.sources[s.id%len(e.sources)]
	}
	if s.slow {
		d.Control = tinyReceiveBuffer
	}
	req := e.request
	if s.lastID != "" {
		var err error
		if req, err = buildRequest(e.target, e.authorization, s.lastID); err != nil {
			return nil, fmt.Errorf("subscriber %d: %w", s.id, err)
		}
	}
	conn, err := d.DialContext(ctx, "tcp", e.target.addr)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", s.id, err)
	}
	if !s.setConn(conn) {
		return nil, errStopped
	}
	// Cancelling ctx (the run's end) interrupts the request and the wait
	// for the response head.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })()
	if err := conn.SetDeadline(time.Now().Add(e.connectTimeout)); err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", s.id, err)
	}
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("subscriber %d: sending the request: %w", s.id, err)
	}
	head, rest, err := readHead(conn)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", s.id, err)
	}
	if head.status != 200 {
		return nil, fmt.Errorf("subscriber %d: %s", s.id, head.statusLine)
	}
	if mt, _, _ := strings.Cut(head.contentType, ";"); !strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
		return nil, fmt.Errorf("subscriber %d: Content-Type %q is not text/event-stream", s.id, head.contentType)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", s.id, err)
	}
	var body io.Reader = &countingReader{r: conn, n: &s.reads}
	if len(rest) > 0 {
		body = &prefixReader{p: rest, r: body}
	}
	switch {
	case head.chunked:
		body = &chunkedReader{r: body}
	case head.contentLength >= 0:
		body = io.LimitReader(body, head.contentLength)
	}
	return body, nil
}

// read parses events from body until it ends.
func (s *subscriber) read(e *env, body io.Reader) {
	rd := sse.NewReader(body)
	rd.MaxEventSize = e.maxEventSize
	rd.OnComment = func(string) { s.comments++ }
	for {
		ev, err := rd.Next()
		if err != nil {
			if !e.stopping.Load() {
				if err == io.EOF {
					err = errors.New("the server ended the stream")
				}
				s.dropErr = fmt.Errorf("subscriber %d: %w", s.id, err)
				e.dropped.Add(1)
			}
			return
		}
		if ev.ID != "" {
			s.lastID = ev.ID
		}
		s.handle(e, ev.Data, e.now())
	}
}

// handle accounts for one event received at now.
func (s *subscriber) handle(e *env, data string, now time.Duration) {
	s.lastRecv = now
	pub, seq, ts, ok := parsePayload(data, e.mark)
	if !ok || pub >= len(s.tracks) {
		s.other++
		if e.countAll {
			s.shard.unique.Add(1)
		}
		return
	}
	s.events++
	if k := e.killedAt.Load(); k > 0 && s.caughtUpAt == 0 && ts >= k && s.reconnects > 0 {
		// Published after the kill, to the new hub: everything before it
		// in the log has reached this subscriber (or shows as a gap).
		s.caughtUpAt = now
		e.caughtUp.Add(1)
	}
	a := s.tracks[pub].see(seq)
	s.holes += a.holes
	if a.dup {
		s.dups++
	}
	if a.late {
		s.late++
	}
	if a.unique {
		s.unique++
		s.shard.unique.Add(1)
		s.shard.latency.record(int64(now) - ts)
	}
}

// probeClosed reports whether the server has ended a slow subscriber's
// response: by closing the connection, or by ending the body and keeping
// the connection for another request. It enlarges the receive buffer and
// reads (discarding) what the server had queued, looking for the end: it
// comes after the server's unsent data, which can be megabytes. It gives up
// when nothing arrives for 200 ms, or after 3 s in all.
func (s *subscriber) probeClosed(body io.Reader) bool {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return false
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 20) // best effort: only speeds the drain up
	}
	buf := make([]byte, 64<<10)
	end := time.Now().Add(3 * time.Second)
	for {
		deadline := time.Now().Add(200 * time.Millisecond)
		if deadline.After(end) {
			deadline = end
		}
		if c.SetReadDeadline(deadline) != nil {
			return false
		}
		_, err := body.Read(buf)
		if err == nil {
			continue
		}
		// Any other error (the end of the body, a closed or reset
		// connection, a body cut off mid-chunk) ends the response.
		var ne net.Error
		return !errors.As(err, &ne) || !ne.Timeout()
	}
}
