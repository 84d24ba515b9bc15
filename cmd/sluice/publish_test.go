package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
)

func runPublishT(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := publishMain(context.Background(), args, env(vars), strings.NewReader(stdin), &stdout, &stderr)
	return code, strings.TrimSpace(stdout.String()), stderr.String()
}

// subscribe opens a stream on the hub and returns a function reading its
// next event.
func subscribe(t *testing.T, base, query, token string) func() sse.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+mercure.HubPath+"?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	next, stop := iterPull(sse.NewReader(res.Body).All())
	t.Cleanup(stop)
	return func() sse.Event {
		t.Helper()
		e, err := next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		return e
	}
}

func TestPublishAndTokenAgainstServe(t *testing.T) {
	const key = "cli-test-secret"
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", key, "--anonymous")

	// A subscriber token for private updates, minted by "sluice token".
	var out, errOut bytes.Buffer
	if code := tokenMain([]string{"--subscribe", "news", "--ttl", "1h"}, env(map[string]string{"SLUICE_JWT_KEY": key}), &out, &errOut); code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut.String())
	}
	subToken := strings.TrimSpace(out.String())
	next := subscribe(t, base, "topic=news", subToken)

	// --jwt-key mints the publisher token; the base URL gets the hub path.
	code, id, stderr := runPublishT(t, nil, "", "--hub", base, "--topic", "news", "--data", "line 1\nline 2",
		"--id", "custom-1", "--type", "headline", "--private", "--jwt-key", key)
	if code != 0 || id != "custom-1" {
		t.Fatalf("publish: exit %d id %q: %s", code, id, stderr)
	}
	if e := next(); e.ID != "custom-1" || e.Type != "headline" || e.Data != "line 1\nline 2" {
		t.Fatalf("got %+v", e)
	}

	// A token from "sluice token --publish", the full hub URL from the
	// environment, data from standard input.
	out.Reset()
	if code := tokenMain([]string{"--jwt-key", key, "--publish", "news"}, env(nil), &out, &errOut); code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut.String())
	}
	vars := map[string]string{"SLUICE_HUB": base + mercure.HubPath, "SLUICE_TOKEN": strings.TrimSpace(out.String())}
	code, id, stderr = runPublishT(t, vars, "from stdin", "--topic", "news", "--data", "-")
	if code != 0 || id == "" {
		t.Fatalf("publish with SLUICE_TOKEN: exit %d: %s", code, stderr)
	}
	if e := next(); e.ID != id || e.Data != "from stdin" {
		t.Fatalf("got %+v, want %s", e, id)
	}

	// The token grants "news" only.
	code, _, stderr = runPublishT(t, vars, "", "--topic", "sports", "--data", "x")
	if code != 1 || !strings.Contains(stderr, "403") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("publish outside the token's topics: exit %d, stderr %q; want 1 and one line naming 403", code, stderr)
	}
	// A wrong key.
	code, _, stderr = runPublishT(t, nil, "", "--hub", base, "--topic", "news", "--data", "x", "--jwt-key", "wrong")
	if code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("publish with a wrong key: exit %d, stderr %q; want 1 naming 401", code, stderr)
	}
}

func TestPublishUnreachableHub(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := runPublishT(t, nil, "", "--hub", "http://"+addr, "--topic", "t", "--data", "x", "--token", "tok")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "sluice publish: ") {
		t.Errorf("unreachable hub: exit %d, stderr %q; want 1 and one line", code, stderr)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "t", "--data", "x", "--token", "k"}, "--hub is required"},
		{[]string{"--hub", "http://h", "--data", "x", "--token", "k"}, "--topic"},
		{[]string{"--hub", "http://h", "--topic", "t", "--token", "k"}, "--data is required"},
		{[]string{"--hub", "http://h", "--topic", "t", "--data", "x"}, "--token or --jwt-key"},
		{[]string{"--hub", "http://h", "--topic", "t", "--data", "x", "--token", "a", "--jwt-key", "b"}, "not both"},
		{[]string{"--hub", "ftp://h", "--topic", "t", "--data", "x", "--token", "a"}, "http or https"},
		{[]string{"--hub", "http://h", "--topic", "t", "--data", "x", "--jwt-key", "@/nonexistent"}, "reading key"},
		{[]string{"--hub", "http://h", "--topic", "t", "--data", "x", "--token", "a", "extra"}, "unexpected argument"},
	} {
		code, _, stderr := runPublishT(t, nil, "", tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("publish %q: exit %d, stderr %q; want 2 with %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("file-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := tokenMain([]string{"--jwt-key", "@" + keyFile, "--publish", "a,b", "--subscribe", "*", "--ttl", "0"}, env(nil), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// The token verifies with the key and grants what was asked: publish to
	// "a" through a hub keyed with the file's secret.
	_, base, _ := startInProcess(t, "--store", "memory", "--jwt-key", "file-secret")
	code, id := publishForm(t, base, strings.TrimSpace(out.String()), map[string][]string{"topic": {"b"}, "data": {"x"}})
	if code != 200 || id == "" {
		t.Errorf("publishing with the minted token: %d %q", code, id)
	}

	// --relay alone mints a relay grant (serve --relay checks it with the
	// subscriber key; TestServeRelay covers the serving side).
	out.Reset()
	if code := tokenMain([]string{"--jwt-key", "k", "--relay", "chat,image"}, env(nil), &out, &errOut); code != 0 {
		t.Fatalf("--relay: exit %d: %s", code, errOut.String())
	}
	parts := strings.Split(strings.TrimSpace(out.String()), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Mercure map[string][]string }
	if err := json.Unmarshal(payload, &claims); err != nil || !slices.Equal(claims.Mercure["relay"], []string{"chat", "image"}) || claims.Mercure["publish"] != nil {
		t.Fatalf("--relay token claims %s: %v", payload, err)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "bolt:" + filepath.Join(t.TempDir(), "none.db"), "--publish", "a"}, "--jwt-key"},
		{[]string{"--jwt-key", "k"}, "at least one"},
		{[]string{"--jwt-key", "k", "--publish", "a", "--jwt-alg", "RS256"}, "invalid key"},
		{[]string{"--jwt-key", "k", "--publish", "a", "--ttl", "-1s"}, "--ttl"},
		{[]string{"--jwt-key", "@/nonexistent", "--publish", "a"}, "reading key"},
	} {
		errOut.Reset()
		if code := tokenMain(tt.args, env(nil), io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("token %q: exit %d, stderr %q; want 2 with %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}
