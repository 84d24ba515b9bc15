package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestDevKeyKeptAcrossRestarts: a development hub on a bolt store keeps
// its key beside the store (mode 0600), so that the tokens it handed out
// (the demo page's, the shell's $TOKEN) still work after a restart, and
// "sluice token" on the same store signs tokens it accepts.
func TestDevKeyKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	s, base, stop := startInProcess(t, "--store", "bolt:"+db)
	first := s.cfg.dev
	if first == nil || first.keyFile != db+".dev-key" || !first.keyCreated {
		t.Fatalf("development mode on bolt:%s: %+v, want the key created in %s.dev-key", db, first, db)
	}
	fi, err := os.Stat(first.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %#o, want 0600", fi.Mode().Perm())
	}
	if code, id := publishForm(t, base, first.publisherToken, url.Values{"topic": {"t"}, "data": {"1"}}); code != 200 {
		t.Fatalf("publish: %d %s", code, id)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	s, base, _ = startInProcess(t, "--store", "bolt:"+db)
	if s.cfg.dev.key != first.key || s.cfg.dev.keyCreated {
		t.Fatal("the restarted hub did not reuse the development key")
	}
	// The token of the first run still publishes.
	if code, body := publishForm(t, base, first.publisherToken, url.Values{"topic": {"t"}, "data": {"2"}}); code != 200 {
		t.Fatalf("publish with the token of the previous run: %d %s", code, body)
	}
	// So does one from "sluice token" on the same store, which says which
	// key it used.
	var out, errOut bytes.Buffer
	if code := tokenMain([]string{"--store", "bolt:" + db, "--publish", "*"}, env(nil), &out, &errOut); code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), first.keyFile) {
		t.Errorf("token's stderr %q does not name the key file", errOut.String())
	}
	if code, body := publishForm(t, base, strings.TrimSpace(out.String()), url.Values{"topic": {"t"}, "data": {"3"}}); code != 200 {
		t.Fatalf("publish with the token of sluice token: %d %s", code, body)
	}
	// SLUICE_STORE names the store as for serve.
	out.Reset()
	if code := tokenMain([]string{"--publish", "*"}, env(map[string]string{"SLUICE_STORE": "bolt:" + db}), &out, &errOut); code != 0 {
		t.Fatalf("token with SLUICE_STORE: exit %d: %s", code, errOut.String())
	}
	if code, body := publishForm(t, base, strings.TrimSpace(out.String()), url.Values{"topic": {"t"}, "data": {"4"}}); code != 200 {
		t.Fatalf("publish with the token of sluice token (SLUICE_STORE): %d %s", code, body)
	}
}

// TestDevKeyOnlyInDevMode: the key file is neither written nor read when a
// key is configured, and stores without a file of their own get a key for
// the run.
func TestDevKeyOnlyInDevMode(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	c := mustConfig(t, []string{"--store", "bolt:" + db, "--jwt-key", strings.Repeat("k", 32)}, nil)
	if c.dev != nil {
		t.Fatal("a configured key: want no development mode")
	}
	if _, err := os.Stat(db + devKeySuffix); !os.IsNotExist(err) {
		t.Fatalf("a configured key: the development key file was written (%v)", err)
	}
	// An existing key file is not used with a configured key: a token
	// signed with it is refused.
	dev := mustConfig(t, []string{"--store", "bolt:" + db}, nil).dev
	_, base, _ := startInProcess(t, "--store", "bolt:"+db, "--jwt-key", strings.Repeat("k", 32))
	if code, _ := publishForm(t, base, dev.publisherToken, url.Values{"topic": {"t"}, "data": {"x"}}); code != 401 {
		t.Errorf("a development token on a hub with a configured key: %d, want 401", code)
	}

	// Memory: a key for the run, no file.
	before, _ := os.ReadDir(".")
	a := mustConfig(t, []string{"--store", "memory"}, nil)
	b := mustConfig(t, []string{"--store", "memory"}, nil)
	if a.dev.key == b.dev.key || a.dev.keyFile != "" {
		t.Error("--store memory: want a new key each run, kept nowhere")
	}
	if after, _ := os.ReadDir("."); len(after) != len(before) {
		t.Errorf("--store memory wrote a file: %v, before %v", after, before)
	}
}

// TestDevKeyErrors: "sluice token" without a key says where it looked; a
// damaged key file is refused with what to do.
func TestDevKeyErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no key file", []string{"--store", "bolt:" + db, "--publish", "*"}, "no development key at " + db + devKeySuffix},
		{"memory store", []string{"--store", "memory", "--publish", "*"}, "keeps no development key"},
		{"bad store", []string{"--store", "postgres://x", "--publish", "*"}, "unsupported store DSN"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := tokenMain(tt.args, env(nil), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, errOut.String(), tt.want)
		}
	}

	if err := os.WriteFile(db+devKeySuffix, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if c, code := parseServeConfig([]string{"--store", "bolt:" + db}, env(nil), &stderr); c != nil || code != 2 ||
		!strings.Contains(stderr.String(), "delete the file") {
		t.Errorf("a 5-byte development key: exit %d, %q; want 2 saying to delete it", code, stderr.String())
	}
}

// TestShortHMACKeyWarns: an HMAC secret shorter than its algorithm's hash
// (RFC 7518 §3.2) is accepted with a warning that says what to use; a long
// enough one, or the development key, gets none.
func TestShortHMACKeyWarns(t *testing.T) {
	for _, tc := range []struct {
		args []string
		warn string // "" for none
	}{
		{[]string{"--jwt-key", "secret"}, "--jwt-key: this HS256 secret is 6 bytes, shorter than the 32 bytes RFC 7518 requires"},
		{[]string{"--jwt-key", strings.Repeat("k", 32)}, ""},
		{[]string{"--jwt-key", strings.Repeat("k", 32), "--jwt-alg", "HS512"}, "this HS512 secret is 32 bytes, shorter than the 64"},
		{[]string{"--publisher-jwt-key", strings.Repeat("k", 32), "--subscriber-jwt-key", "short"}, "--subscriber-jwt-key: this HS256 secret is 5 bytes"},
		{[]string{"--store", "memory"}, ""}, // development mode
		{[]string{"--store", "memory", "--jwt-alg", "HS512"}, ""},
	} {
		c := mustConfig(t, tc.args, nil)
		got := strings.Join(c.warnings, "\n")
		if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
			t.Errorf("%q: warnings %q, want %q", tc.args, got, tc.warn)
		}
	}
	var out, errOut bytes.Buffer
	if code := tokenMain([]string{"--jwt-key", "secret", "--publish", "*"}, env(nil), &out, &errOut); code != 0 ||
		!strings.Contains(errOut.String(), "sluice token: warning: --jwt-key: this HS256 secret is 6 bytes") {
		t.Errorf("token with a short key: exit %d, stderr %q", code, errOut.String())
	}
}

// TestDevKeyCreatedOnce: hubs starting at once on one store agree on one
// key: the file appears whole, once, mode 0600, and leaves nothing beside
// it.
func TestDevKeyCreatedOnce(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		path := filepath.Join(dir, "h.db"+devKeySuffix)
		const n = 8
		keys, created := make([]string, n), make([]bool, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				var err error
				if keys[i], _, created[i], err = loadOrCreateDevKey(path); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if slices.ContainsFunc(keys, func(k string) bool { return k != keys[0] }) || len(keys[0]) != 2*devKeyBytes {
			t.Fatalf("round %d: keys %q, want one key of %d characters", round, keys, 2*devKeyBytes)
		}
		if c := slices.Index(created, true); c < 0 || slices.Index(created[c+1:], true) >= 0 {
			t.Fatalf("round %d: created %v, want one creator", round, created)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("round %d: %v beside the key, want the key file only", round, entries)
		}
		if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
			t.Fatalf("round %d: %v, %v; want mode 0600", round, fi.Mode(), err)
		}
	}
}

// TestDevKeyReadableByOthers: a key file others may read (a copy, an edit
// with another umask) still serves, with a warning from the hub and from
// "sluice token" that says how to fix it.
func TestDevKeyReadableByOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	db := filepath.Join(t.TempDir(), "h.db")
	key := mustConfig(t, []string{"--store", "bolt:" + db}, nil).dev.key
	if err := os.Chmod(db+devKeySuffix, 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustConfig(t, []string{"--store", "bolt:" + db}, nil)
	if c.dev.key != key || !strings.Contains(strings.Join(c.warnings, "\n"), "readable by other users (mode 0644): chmod 600 it") {
		t.Errorf("key kept %v, warnings %q; want the key and a warning", c.dev.key == key, c.warnings)
	}
	var out, errOut bytes.Buffer
	if code := tokenMain([]string{"--store", "bolt:" + db, "--publish", "*"}, env(nil), &out, &errOut); code != 0 ||
		!strings.Contains(errOut.String(), "sluice token: warning: the development key "+db+devKeySuffix+" is readable by other users") {
		t.Errorf("token: exit %d, stderr %q; want 0 and the warning", code, errOut.String())
	}
}
