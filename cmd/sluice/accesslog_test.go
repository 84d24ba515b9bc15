package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/ssetest"

	"github.com/sluicehq/sluice/mercure"
)

// syncBuffer collects a server's log lines.
type syncBuffer = ssetest.Buffer

// logLines returns the JSON log lines written to s so far.
func logLines(t *testing.T, s *syncBuffer) []map[string]any {
	t.Helper()
	text := s.String()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, len(text)+1) // a line of any length
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitLine waits (a hang guard) for a log line for which match is true.
func waitLine(t *testing.T, s *syncBuffer, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(hang); ; time.Sleep(5 * time.Millisecond) {
		for _, l := range logLines(t, s) {
			if match(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %s in:\n%s", what, s)
		}
	}
}

// startLogged starts a hub whose JSON logs go to the returned buffer.
func startLogged(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	c := mustConfig(t, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...), nil)
	logs := &syncBuffer{}
	s, err := newServer(c, c.newLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + s.ln.Addr().String(), logs
}

// TestAccessLogAndRequestIDs: with --access-log each request is logged in
// the usual fields, tokens in the query redacted; every request has an id,
// sent back as X-Request-Id and on the hub's log lines about it (the
// debug line saying why it was refused); durations are strings in JSON.
func TestAccessLogAndRequestIDs(t *testing.T) {
	base, logs := startLogged(t, "--store", "memory", "--jwt-key", strings.Repeat("k", 32),
		"--anonymous", "--access-log", "--log-level", "debug")

	bad := strings.Repeat("x", 50)
	req, _ := http.NewRequest(http.MethodGet, base+mercure.HubPath+"?topic=a&authorization="+bad, nil)
	req.Header.Set("X-Request-Id", "proxy-id.42")
	req.Header.Set("User-Agent", "access-log-test")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("X-Request-Id") != "proxy-id.42" {
		t.Fatalf("status %d, X-Request-Id %q; want 401 and the request's id", res.StatusCode, res.Header.Get("X-Request-Id"))
	}
	refused := waitLine(t, logs, "refusing the request", func(l map[string]any) bool { return l["msg"] == "mercure: request refused" })
	if refused["request_id"] != "proxy-id.42" || refused["level"] != "DEBUG" || !strings.Contains(refused["reason"].(string), "malformed") {
		t.Errorf("refusal logged as %v, want debug with the request id and the reason", refused)
	}
	access := waitLine(t, logs, "for the refused request", func(l map[string]any) bool { return l["msg"] == "request" && l["status"] == 401.0 })
	want := map[string]any{"method": "GET", "uri": mercure.HubPath + "?topic=a&authorization=REDACTED", "proto": "HTTP/1.1",
		"request_id": "proxy-id.42", "user_agent": "access-log-test", "level": "INFO"}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access log %s = %v, want %v", k, access[k], v)
		}
	}
	if d, ok := access["duration"].(string); !ok {
		t.Errorf("duration %v (%T), want a string such as \"1.2ms\"", access["duration"], access["duration"])
	} else if _, err := time.ParseDuration(d); err != nil {
		t.Errorf("duration %q: %v", d, err)
	}
	if strings.Contains(logs.String(), bad) {
		t.Error("the token reached the logs")
	}

	// Ids the hub makes: for a request without one, or with one unfit to log.
	seen := map[string]bool{}
	for _, hdr := range []string{"", "a b", strings.Repeat("x", 65)} {
		req, _ := http.NewRequest(http.MethodGet, base+"/livez", nil)
		if hdr != "" {
			req.Header.Set("X-Request-Id", hdr)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		id := res.Header.Get("X-Request-Id")
		if !validRequestID(id) || id == hdr || seen[id] {
			t.Errorf("X-Request-Id %q for a request with %q: want a new id of the hub's", id, hdr)
		}
		seen[id] = true
	}

	// An event stream is logged once live, and says it goes on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?topic=a", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line := waitLine(t, logs, "for the stream", func(l map[string]any) bool {
		return l["msg"] == "request" && l["status"] == 200.0 && strings.HasPrefix(l["uri"].(string), mercure.HubPath)
	})
	if line["streaming"] != true {
		t.Errorf("stream logged as %v, want streaming=true", line)
	}
	if id := res.Header.Get("X-Request-Id"); id == "" || id != line["request_id"] {
		t.Errorf("stream's X-Request-Id %q, logged as %v: want the id, on both", id, line["request_id"])
	}
}

// TestLogDurationsAreStrings: JSON logs write durations as Go does ("10s"),
// not as nanoseconds.
func TestLogDurationsAreStrings(t *testing.T) {
	c := mustConfig(t, []string{"--store", "memory", "--log-format", "json"}, nil)
	var b syncBuffer
	c.newLogger(&b).Info("x", "timeout", 10*time.Second)
	if l := logLines(t, &b); len(l) != 1 || l[0]["timeout"] != "10s" {
		t.Errorf("logged %v, want timeout \"10s\"", l)
	}
}

// TestAccessLogBoundedPerRequest: what a client sends is clipped in the
// access log, so that a request of a megabyte of headers (net/http's
// limit), in bytes the JSON log escapes sixfold, costs kilobytes of log,
// not megabytes.
func TestAccessLogBoundedPerRequest(t *testing.T) {
	base, logs := startLogged(t, "--store", "memory", "--jwt-key", strings.Repeat("k", 32), "--access-log")
	junk := strings.Repeat("\x80", 256<<10)
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET /livez?q=" + junk + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: é" + junk +
		"\r\nReferer: " + junk + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(hang))
	if res, err := io.ReadAll(nc); err != nil || !strings.HasPrefix(string(res), "HTTP/1.1 200") {
		t.Fatalf("response %.40q, %v", res, err)
	}
	l := waitLine(t, logs, "for the request", func(l map[string]any) bool { return l["msg"] == "request" })
	if n := len(logs.String()); n > 48<<10 {
		t.Errorf("a request of %d KiB was logged in %d KiB, want at most 48", len(req)>>10, n>>10)
	}
	for _, k := range []string{"uri", "user_agent", "referer"} {
		if v, _ := l[k].(string); !strings.HasSuffix(v, "…") {
			t.Errorf("%s %.40q…: want it clipped, ending with …", k, v)
		}
	}
	if ua, _ := l["user_agent"].(string); !strings.HasPrefix(ua, "é") || !strings.HasPrefix(l["uri"].(string), "/livez?q=") {
		t.Errorf("uri %.20q, user_agent %.20q: want their starts kept", l["uri"], ua)
	}
}
