package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Every request gets an id: the X-Request-Id it came with (a proxy's) when
// that is a short token, else one of the hub's. It is sent back as
// X-Request-Id and added to every log line written with the request's
// context (the Mercure hub's debug lines on refused requests, the access
// log), so that a client's failed request can be found in the logs.

// requestIDHeader is the header that carries a request's id both ways.
const requestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an id taken from the request.
const maxRequestIDLen = 64

// requestIDKey is the context key of a request's id.
type requestIDKey struct{}

// requestIDs issues the hub's request ids: a random prefix for the process
// and a counter, so that issuing one costs no system call.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID reports whether an id from the request may be used as is:
// 1 to 64 letters, digits and ".-_:".
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

// requestIDHandler adds the request id of a log call's context to its
// record, as request_id.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// observe gives every request its id and, with --access-log, logs it once
// its handler returns.
func (s *hubServer) observe(next http.Handler) http.Handler {
	ids := newRequestIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = ids.next()
		}
		w.Header().Set(requestIDHeader, id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		if !s.cfg.accessLog {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		aw := &accessWriter{ResponseWriter: w}
		next.ServeHTTP(aw, r)
		status := aw.status
		if status == 0 {
			status = http.StatusOK
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("uri", clipLogged(redactedURI(r.URL))),
			slog.String("proto", r.Proto),
			slog.Int("status", status),
			slog.Int64("bytes", aw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
			slog.String("user_agent", clipLogged(r.UserAgent())),
			slog.String("referer", clipLogged(r.Referer())),
		}
		if aw.hijacked {
			// The hub took the connection over: the stream goes on.
			attrs = append(attrs, slog.Bool("streaming", true))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// maxLoggedValue bounds each value the access log takes from the request
// (uri, user_agent, referer): any client may send a megabyte of them
// (net/http's header limit), which a log handler writes up to six times
// over (JSON writes an invalid UTF-8 byte as \ufffd), so that one request
// could cost megabytes of log.
const maxLoggedValue = 2 << 10

// clipLogged returns s cut to maxLoggedValue bytes, not inside a UTF-8
// character, and marked with "…" where it was cut.
func clipLogged(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	n := maxLoggedValue
	for i := 1; i < utf8.UTFMax && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n] + "…"
}

// redactedURI is u's request URI with the values of the query parameters
// that may carry a token (authorization, access_token) replaced.
func redactedURI(u *url.URL) string {
	uri := u.RequestURI()
	if u.RawQuery == "" {
		return uri
	}
	path, _, _ := strings.Cut(uri, "?")
	params := strings.Split(u.RawQuery, "&")
	for i, p := range params {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil {
			switch strings.ToLower(name) {
			case "authorization", "access_token":
				params[i] = k + "=REDACTED"
			}
		}
	}
	return path + "?" + strings.Join(params, "&")
}

// accessWriter records the status and the bytes of a response for the
// access log. Through Unwrap the handlers reach what the ResponseWriter
// under it supports (deadlines, flushing); a hijack is noted, and the bytes
// written on the connection after it are not counted.
type accessWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the response (http.Flusher, for handlers that assert it).
func (w *accessWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes the connection over (http.Hijacker), noting it.
func (w *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap returns the ResponseWriter under w (http.ResponseController).
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
