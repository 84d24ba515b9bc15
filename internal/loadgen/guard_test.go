package loadgen

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestResolveTargetLoopbackOnly(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:8080/.well-known/mercure?topic=a",
		"http://127.9.8.7/",
		"http://[::1]:9000/events",
		"http://[::ffff:127.0.0.1]:9000/",
		"http://localhost:8080/",
	} {
		ep, err := resolveTarget(t.Context(), u, false)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if !ep.addr.Addr().IsLoopback() {
			t.Errorf("%s resolved to %s", u, ep.addr)
		}
	}
	if ep, err := resolveTarget(t.Context(), "http://localhost:8080/", false); err == nil && !ep.addr.Addr().Is4() {
		t.Errorf("localhost resolved to %s, want IPv4 preferred", ep.addr)
	}
	for _, u := range []string{
		"http://10.0.0.1/",
		"http://192.0.2.7:8080/events",
		"http://[2001:db8::1]/",
		"http://0.0.0.0:8080/",
	} {
		if _, err := resolveTarget(t.Context(), u, false); !errors.Is(err, errNotLoopback) {
			t.Errorf("%s: %v, want refused as not loopback", u, err)
		}
		if _, err := resolveTarget(t.Context(), u, true); err != nil {
			t.Errorf("%s with --allow-remote: %v", u, err)
		}
	}
	for _, u := range []string{"https://127.0.0.1/", "127.0.0.1:80", "http:///x", "http://127.0.0.1:bad/"} {
		if _, err := resolveTarget(t.Context(), u, false); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestRunRefusesRemoteTargets(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "http://192.0.2.1/events", "--publish", "none"},
		{"--url", "http://127.0.0.1:1/events", "--publish", "url", "--publish-url", "http://192.0.2.1/publish"},
		{"--url", "http://127.0.0.1:1/events?topic=t", "--hub-pid", "1", "--hub-metrics", "http://192.0.2.1/metrics"},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(t.Context(), args, &stdout, &stderr)
		if code != exitFailed || !strings.Contains(stderr.String(), "loopback") || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q; want refused before any connection", args, code, stderr.String())
		}
	}
}
