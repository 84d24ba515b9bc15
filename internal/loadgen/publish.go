package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

// poster sends one event to the server.
type poster struct {
	mode   string // publishURL or publishMercure
	url    string
	topic  string // the Mercure topic
	token  string // bearer token, or ""
	client *http.Client
}

// post publishes data, using body as scratch space.
func (p *poster) post(ctx context.Context, data []byte, body *bytes.Buffer) error {
	body.Reset()
	ctype := "text/plain; charset=utf-8"
	if p.mode == publishMercure {
		ctype = "application/x-www-form-urlencoded"
		body.WriteString("topic=")
		body.WriteString(url.QueryEscape(p.topic))
		body.WriteString("&data=")
		body.WriteString(url.QueryEscape(string(data)))
	} else {
		body.Write(data)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	_, cerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: %s answered %s", p.url, resp.Status)
	}
	if cerr != nil {
		return fmt.Errorf("publish: reading the response: %w", cerr)
	}
	return nil
}

// publishPlan says what to publish.
type publishPlan struct {
	publishers int
	rate       float64       // events per second over all publishers; 0 for as fast as possible
	events     int64         // total events; 0 for no limit
	duration   time.Duration // publishing time, on the schedule and the clock; 0 for no limit
	size       int           // data size to pad to
}

// publishResult is what the publishers did.
type publishResult struct {
	attempted  int64
	errors     int64
	firstErr   error
	firstSend  time.Duration // run time of the first send
	lastSend   time.Duration // run time of the last send
	maxLag     time.Duration // how far behind schedule a send started, at worst
	postTimes  *histogram    // request round trips, ns
	perPubSent []int64       // sequence numbers used by each publisher
}

// publish runs plan.publishers goroutines that post events on a shared
// schedule (event i is due at i/rate after the start) until the plan's
// limits or ctx end it.
func publish(ctx context.Context, e *env, p *poster, plan publishPlan) *publishResult {
	res := &publishResult{postTimes: newHistogram(), perPubSent: make([]int64, plan.publishers), firstSend: -1}
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
				data         []byte
				body         bytes.Buffer
				first, last  time.Duration = -1, 0
				lag          time.Duration
				timer        = time.NewTimer(time.Hour)
				firstFailure error
			)
			timer.Stop()
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
			for {
				i := next.Add(1) - 1
				if plan.events > 0 && i >= plan.events {
					return
				}
				var due time.Duration
				if plan.rate > 0 {
					due = time.Duration(float64(i) * float64(time.Second) / plan.rate)
				} else {
					due = time.Since(t0)
				}
				// --duration bounds the schedule and the wall time: publishers
				// that fell behind stop at the end all the same.
				if plan.duration > 0 && (due >= plan.duration || time.Since(t0) >= plan.duration) {
					return
				}
				if wait := due - time.Since(t0); wait > 0 {
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
				lag = max(lag, time.Since(t0)-due)
				ts := e.now()
				if first < 0 {
					first = ts
				}
				last = ts
				data = appendPayload(data[:0], e.mark, pub, seq, int64(ts), plan.size)
				seq++
				attempts.Add(1)
				err := p.post(ctx, data, &body)
				res.postTimes.record(int64(e.now() - ts))
				if err != nil {
					failures.Add(1)
					if firstFailure == nil {
						firstFailure = err
					}
					if ctx.Err() != nil {
						// Stopped mid-request: the event may or may not be out.
						return
					}
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
