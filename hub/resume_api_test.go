package hub

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sse"
)

// cursorHook is a Subscription hook for a protocol that names its cursor
// "c" ("start": the whole history) and reports the resume outcome in the
// X-Outcome response header.
func cursorHook(r *http.Request) (Subscription, error) {
	q := r.URL.Query()
	sub := Subscription{Topics: q["topic"]}
	if c := q.Get("c"); c == "start" {
		sub.FromStart = true
	} else {
		sub.Cursor = c
	}
	sub.OnResume = func(h http.Header, res Resume) {
		h.Set("X-Outcome", fmt.Sprintf("%v|%s|%s", res.Replayed, res.Reset, res.Head))
	}
	return sub, nil
}

func TestSubscriptionCursor(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnvHooks(t, Config{}, h2, &hooks{sub: cursorHook})
		ids := []string{e.publish("a", "0"), e.publish("a", "1"), e.publish("a", "2")}
		head := ids[2]
		tests := []struct {
			name    string
			c       string // the hook's cursor parameter
			hdr     string // Last-Event-ID header
			prime   string // priming id expected, "" none
			first   string // first event expected after it
			outcome string
		}{
			{"cursor wins over the header", ids[0], ids[1], ids[0], ids[1], "true||"},
			{"from start wins over the header", "start", ids[2], "", ids[0], "true||"},
			{"header when no cursor", "", ids[1], ids[1], ids[2], "true||"},
			{"unknown", "never-issued", "", "", "reset", "false|unknown|" + head},
			{"none", "", "", head, "live", "false||" + head},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var hdr http.Header
				if tt.hdr != "" {
					hdr = http.Header{"Last-Event-Id": {tt.hdr}}
				}
				c := e.get("/events?"+url.Values{"topic": {"a"}, "c": {tt.c}}.Encode(), hdr)
				defer c.close()
				if got := c.resp.Header.Get("X-Outcome"); got != tt.outcome {
					t.Errorf("outcome %q, want %q", got, tt.outcome)
				}
				if tt.prime != "" {
					if id := c.primed(); id != tt.prime {
						t.Fatalf("primed with %s, want %s", id, tt.prime)
					}
				}
				if tt.first == "live" {
					tt.first = e.publish("a", "live")
				}
				switch ev := c.next(); tt.first {
				case "reset":
					if ev.Type != ResetEventType || ev.ID != head {
						t.Fatalf("got %+v, want a reset to %s", ev, head)
					}
				default:
					if ev.ID != tt.first {
						t.Fatalf("got %+v, want %s", ev, tt.first)
					}
				}
			})
		}
		for _, bad := range []string{"a\nb", strings.Repeat("x", DefaultMaxLastEventIDLen+1)} {
			c := e.get("/events?"+url.Values{"topic": {"a"}, "c": {bad}}.Encode(), nil)
			if c.resp.StatusCode != http.StatusBadRequest || c.resp.Header.Get("X-Outcome") != "" {
				t.Errorf("cursor %.10q: status %d, outcome %q", bad, c.resp.StatusCode, c.resp.Header.Get("X-Outcome"))
			}
			c.close()
		}
	})
}

// rawLines opens path and returns a reader of the response body's lines.
func (e *env) rawLines(path string, hdr http.Header) (*http.Response, func() string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	return resp, func() string {
		e.t.Helper()
		line, err := br.ReadString('\n')
		if err != nil {
			e.t.Fatalf("read: %v (after %q)", err, line)
		}
		return strings.TrimSuffix(line, "\n")
	}
}

func TestPrimingNone(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		e := newEnvHooks(t, Config{}, h2, &hooks{priming: PrimingNone, sub: cursorHook})
		expect := func(line func() string, want ...string) {
			t.Helper()
			for _, w := range want {
				if got := line(); got != w {
					t.Fatalf("line %q, want %q", got, w)
				}
			}
		}

		// An empty log and no cursor: the stream opens with ":" at once.
		resp, line := e.rawLines("/events?topic=a", nil)
		if resp.StatusCode != 200 || resp.Header.Get("X-Outcome") != "false||" {
			t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
		}
		expect(line, ":")
		first := e.publish("a", "x")
		expect(line, "id: "+first, "data: x", "")

		// A cursor: ":" then the history, without a priming event.
		second := e.publish("a", "y")
		_, line = e.rawLines("/events?topic=a&c="+url.QueryEscape(first), nil)
		expect(line, ":", "id: "+second, "data: y", "")

		// A reset: ":" then the reset event only.
		resp, line = e.rawLines("/events?topic=a&c=unknown", nil)
		if resp.Header.Get(ResetHeader) != sse.ResetUnknown {
			t.Fatalf("headers %v", resp.Header)
		}
		expect(line, ":")
		rd := sse.NewReader(strings.NewReader(line() + "\n" + line() + "\n" + line() + "\n\n"))
		if ev, err := rd.Next(); err != nil || ev.Type != ResetEventType || ev.ID != second {
			t.Fatalf("reset %+v, %v", ev, err)
		}
	})
}

func TestSubscriptionDeadline(t *testing.T) {
	protocols(t, func(t *testing.T, h2 bool) {
		fc := newFakeClock()
		var deadline time.Duration
		e := newEnvHooks(t, Config{Clock: fc, Heartbeat: -1, MaxLifetime: time.Hour, Retry: 250 * time.Millisecond, Jitter: func(time.Duration) time.Duration { return 0 }}, h2, &hooks{sub: func(r *http.Request) (Subscription, error) {
			return Subscription{Topics: r.URL.Query()["topic"], Deadline: fc.Now().Add(deadline)}, nil
		}})
		e.publish("a", "seed")

		deadline = time.Minute
		c := e.subscribe("", "a")
		c.primed()
		waitArmed(t, fc, 1)
		fc.Advance(59 * time.Second)
		id := e.publish("a", "still open")
		if ev := c.next(); ev.ID != id {
			t.Fatalf("got %+v", ev)
		}
		fc.Advance(time.Second)
		c.end()
		if r, ok := c.reader.Retry(); !ok || r != 250*time.Millisecond {
			t.Fatalf("retry %v %v", r, ok)
		}

		// A deadline already passed ends the stream as it opens.
		deadline = -time.Second
		c = e.subscribe("", "a")
		c.end()
		if _, ok := c.reader.Retry(); !ok {
			t.Fatal("no retry")
		}
	})
}
