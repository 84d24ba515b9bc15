package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of the HTTP layer, matched with errors.Is on the *StatusError that
// carries them.
var (
	// ErrNotEventStream reports a successful response whose Content-Type is
	// not text/event-stream.
	ErrNotEventStream = errors.New("sse: response is not an event stream")
	// ErrRedirectWithoutLocation reports a redirect status with no Location
	// to follow.
	ErrRedirectWithoutLocation = errors.New("sse: redirect without a Location header")
)

// maxErrorBody bounds the part of an error response body kept in a
// StatusError.
const maxErrorBody = 4 << 10

// StatusError reports an HTTP response that does not open an event stream:
// a status other than 2xx, or a 2xx whose Content-Type is not
// text/event-stream (then Err is ErrNotEventStream). It is permanent unless
// the Client's Retryable says otherwise.
type StatusError struct {
	// StatusCode is the response status.
	StatusCode int
	// Header holds the response headers.
	Header http.Header
	// Body holds the start (up to 4 KiB) of the body of a non-2xx response,
	// where APIs explain the error.
	Body []byte
	// Err is ErrNotEventStream, ErrRedirectWithoutLocation, or nil for an
	// unexpected status.
	Err error
}

func (e *StatusError) Error() string {
	status := strconv.Itoa(e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		status += " " + text
	}
	switch {
	case errors.Is(e.Err, ErrNotEventStream):
		return fmt.Sprintf("%v: HTTP %s with Content-Type %q", e.Err, status, e.Header.Get("Content-Type"))
	case e.Err != nil:
		return fmt.Sprintf("%v (HTTP %s)", e.Err, status)
	default:
		return "sse: unexpected HTTP status " + status
	}
}

// Unwrap returns Err.
func (e *StatusError) Unwrap() error { return e.Err }

// RetryAfter returns the wait the response's Retry-After header asks for,
// in delay-seconds or as an HTTP date relative to now, and whether it had a
// valid one.
func (e *StatusError) RetryAfter(now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(e.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryMillis/1000))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// DefaultRetryable is the classification a Client uses when its Retryable is
// nil: 429 Too Many Requests and 503 Service Unavailable with a valid
// Retry-After are retried (after that long, by a stream that may send the
// request again: see Client.Connect); every other StatusError is
// permanent, as in browsers.
func DefaultRetryable(err *StatusError) bool {
	if err.StatusCode != http.StatusTooManyRequests && err.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	_, ok := err.RetryAfter(time.Now())
	return ok
}

// Client opens event streams over HTTP. The zero value is ready to use.
//
// Every request carries Accept: text/event-stream and Cache-Control:
// no-cache (unless the request sets them) and Last-Event-ID when the last
// event id in effect is not empty. Any method, header and body may be used
// (the POST streams of LLM APIs and MCP). Redirects are followed as the
// http.Client does (301, 302, 303, 307, 308; a 307 or 308 resends the
// method and body); a redirect without a Location is an error carrying
// ErrRedirectWithoutLocation.
//
// A 2xx response with Content-Type text/event-stream (parameters allowed)
// opens the stream; 204 No Content ends it cleanly (ErrDone); anything else
// is a *StatusError, permanent unless Retryable says otherwise. Network
// errors are retried (when the stream may reconnect: see Client.Connect).
type Client struct {
	// HTTPClient makes the requests. Nil means http.DefaultClient. Its
	// Timeout must be zero, or it would cut every long stream.
	HTTPClient *http.Client
	// Retryable decides whether a StatusError is retried rather than ending
	// the stream. Nil means DefaultRetryable.
	Retryable func(err *StatusError) bool
}

// Connect streams the events of req with a zero Client. See Client.Connect.
func Connect(ctx context.Context, req *http.Request, opts ...Option) iter.Seq2[Event, error] {
	var c Client
	return c.Connect(ctx, req, opts...)
}

// Connect streams the events of req with the given options. Whether and how
// it reconnects depends on the method and the options:
//
//   - GET: like a browser's EventSource (see Stream), req is sent again
//     after every clean end of the stream, dropped connection and retryable
//     failure, with Last-Event-ID, after the server's retry; 204 No Content
//     ends it.
//   - Any other method (the POST of an LLM API or of an MCP call): req is
//     sent once. The server ending the stream ends the iteration without an
//     error; a connection that breaks ends it with ErrConnectionLost; a
//     failed request with its error (even one that a GET would retry).
//   - WithResume(f): once req has opened a stream, every reconnection —
//     after a drop, and after a clean end — sends f(lastEventID) instead of
//     req, for any method: the POST→GET resumption of MCP's streamable
//     HTTP transport. f's requests are retried like a GET's; 204 (or f
//     returning ErrDone) ends the stream.
//   - WithResend: req is sent again whatever its method, as by EventSource.
//   - WithOneShot: one request and no reconnection, whatever the method.
//
// A Last-Event-ID header set on req is the last event id of the first
// request (WithLastEventID overrides it); later requests carry the stream's
// own. The context of req is replaced by ctx. If req has a body and no
// GetBody, the body is read first (so that a 307 or 308 redirect can send
// it again).
func (c *Client) Connect(ctx context.Context, req *http.Request, opts ...Option) iter.Seq2[Event, error] {
	if id := req.Header.Get("Last-Event-ID"); id != "" {
		opts = append([]Option{WithLastEventID(id)}, opts...)
	}
	cfg := newStreamConfig(opts)
	resent := req.Method == "" || req.Method == http.MethodGet || cfg.resend
	switch {
	case cfg.oneShot:
	case resent:
		cfg.reconnect = reconnectAlways
	case cfg.resume != nil:
		cfg.reconnect = reconnectOpened
	default:
		cfg.reconnect = reconnectNever
	}
	first, err := c.ConnectFunc(req)
	if err != nil {
		return func(yield func(Event, error) bool) { yield(Event{}, err) }
	}
	return stream(ctx, first, c.resumeFunc(cfg.resume), &cfg)
}

// ConnectFunc returns a ConnectFunc that sends req, for use with Stream,
// which sends it again on every reconnection whatever its method (Connect
// applies the rules of methods and WithResume). If req has a body and no
// GetBody, the body is read now so that it can be sent on every attempt.
func (c *Client) ConnectFunc(req *http.Request) (ConnectFunc, error) {
	getBody := req.GetBody
	if req.Body != nil && req.Body != http.NoBody && getBody == nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sse: reading the request body: %w", err)
		}
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req = req.Clone(req.Context())
		req.Body, req.GetBody, req.ContentLength = http.NoBody, getBody, int64(len(b))
	}
	return func(ctx context.Context, lastEventID string) (io.ReadCloser, error) {
		r := req.Clone(ctx)
		if getBody != nil {
			body, err := getBody()
			if err != nil {
				return nil, Permanent(fmt.Errorf("sse: request body: %w", err))
			}
			r.Body, r.GetBody = body, getBody
		}
		r.Header.Del("Last-Event-ID")
		return c.send(r, lastEventID)
	}, nil
}

// resumeFunc returns a ConnectFunc that sends the request resume makes for
// the last event id, or nil when resume is nil.
func (c *Client) resumeFunc(resume func(lastEventID string) (*http.Request, error)) ConnectFunc {
	if resume == nil {
		return nil
	}
	return func(ctx context.Context, lastEventID string) (io.ReadCloser, error) {
		r, err := resume(lastEventID)
		switch {
		case errors.Is(err, ErrDone):
			return nil, err
		case err != nil:
			return nil, Permanent(fmt.Errorf("sse: resuming after %q: %w", lastEventID, err))
		case r == nil:
			return nil, Permanent(fmt.Errorf("sse: resuming after %q: the resume function returned no request", lastEventID))
		}
		return c.send(r.Clone(ctx), lastEventID)
	}
}

// send sends r, adding the stream's headers, and returns the body of the
// event stream it opens. Last-Event-ID is set to lastEventID unless r sets
// one.
func (c *Client) send(r *http.Request, lastEventID string) (io.ReadCloser, error) {
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "text/event-stream")
	}
	if r.Header.Get("Cache-Control") == "" {
		r.Header.Set("Cache-Control", "no-cache")
	}
	if lastEventID != "" && r.Header.Get("Last-Event-ID") == "" {
		r.Header.Set("Last-Event-ID", lastEventID)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(r)
	if err != nil {
		if resp != nil {
			// The redirect policy refused to go on: retrying would meet
			// the same refusal.
			return nil, Permanent(err)
		}
		return nil, err
	}
	if err := c.check(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

// check classifies a response: nil when it opens an event stream.
func (c *Client) check(resp *http.Response) error {
	code := resp.StatusCode
	if code == http.StatusNoContent {
		return fmt.Errorf("%w (HTTP 204 No Content)", ErrDone)
	}
	se := &StatusError{StatusCode: code, Header: resp.Header}
	if code >= 200 && code < 300 {
		mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err == nil && mt == "text/event-stream" {
			return nil
		}
		se.Err = ErrNotEventStream
	} else {
		se.Body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if code >= 300 && code < 400 && resp.Header.Get("Location") == "" {
			se.Err = ErrRedirectWithoutLocation
		}
	}
	retryable := c.Retryable
	if retryable == nil {
		retryable = DefaultRetryable
	}
	if retryable(se) {
		return se
	}
	return Permanent(se)
}
