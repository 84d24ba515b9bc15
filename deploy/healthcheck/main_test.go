package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestCheck: 0 for a 200, 1 with the reason for anything else.
func TestCheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"unavailable","reason":"store: closed"}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	vars := map[string]string{"SLUICE_ADDR": ":" + port}
	var stderr bytes.Buffer
	if code := check(context.Background(), nil, env(vars), &stderr); code != 0 {
		t.Fatalf("ready hub: exit %d: %s", code, stderr.String())
	}
	status = http.StatusServiceUnavailable
	if code := check(context.Background(), nil, env(vars), &stderr); code != 1 || !strings.Contains(stderr.String(), "store: closed") {
		t.Fatalf("unready hub: exit %d: %q, want 1 with the reason", code, stderr.String())
	}
	srv.Close()
	if code := check(context.Background(), []string{srv.URL + "/healthz"}, env(nil), &stderr); code != 1 {
		t.Fatalf("no hub: exit %d, want 1", code)
	}
}

// TestCheckTLS: with SLUICE_TLS_CERT the check uses https to loopback and
// accepts the hub's certificate, which names another host.
func TestCheckTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var stderr bytes.Buffer
	if code := check(context.Background(), nil, env(map[string]string{"SLUICE_ADDR": "0.0.0.0:" + port, "SLUICE_TLS_CERT": "/etc/cert.pem"}), &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:8080/healthz"},
		{map[string]string{"SLUICE_ADDR": ":9000"}, "http://127.0.0.1:9000/healthz"},
		{map[string]string{"SLUICE_ADDR": "[::]:9000", "SLUICE_TLS_CERT": "c"}, "https://127.0.0.1:9000/healthz"},
	} {
		if got, _, err := target(nil, env(tc.vars)); err != nil || got != tc.want {
			t.Errorf("%v: %q %v, want %q", tc.vars, got, err, tc.want)
		}
	}
	if _, _, err := target(nil, env(map[string]string{"SLUICE_ADDR": "nocolon"})); err == nil {
		t.Error("a bad SLUICE_ADDR accepted")
	}
}
