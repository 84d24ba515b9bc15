package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// pkgDir is the package's source directory; the tests run in a
// temporary directory instead (TestMain), so that what a hub writes beside
// its default store (./sluice.db, ./sluice.db.dev-key) never lands in the
// source tree.
var pkgDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	if pkgDir, err = os.Getwd(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	work, err := os.MkdirTemp("", "sluice-cmd-cwd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if err := os.Chdir(work); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	return code
}

// built is the sluice binary, built once per test run by buildSluice.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildSluice returns the sluice binary, building it on the first call.
func buildSluice(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary: skipped in -short mode")
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-cmd-test-")
		if err != nil {
			built.err = err
			return
		}
		built.dir, built.bin = dir, filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", built.bin, ".")
		cmd.Dir = pkgDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// hubProc is a "sluice serve" child process.
type hubProc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	mu   sync.Mutex
	logs strings.Builder
	done chan error // the result of Wait
}

func (p *hubProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startHubProc starts "sluice serve --log-format json args..." and waits
// for it to log its address (with --addr 127.0.0.1:0, a free port).
func startHubProc(t *testing.T, bin string, args ...string) *hubProc {
	t.Helper()
	p := &hubProc{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--log-format", "json"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "sluice hub listening" {
				addr <- rec.Addr
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.done:
		p.done <- err
		t.Fatalf("sluice serve exited before listening: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice serve did not listen within 30s\n%s", p.log())
	}
	return p
}

// stop sends sig and waits for the process to exit.
func (p *hubProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice serve did not exit within 30s of %v\n%s", sig, p.log())
		return nil
	}
}

// post publishes form to the hub at base and returns the status and body
// (the event's id on success). It is safe to call from any goroutine.
func post(ctx context.Context, base, token string, form url.Values) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+mercure.HubPath, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func publishForm(t *testing.T, base, token string, form url.Values) (int, string) {
	t.Helper()
	code, body, err := post(context.Background(), base, token, form)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// sharedStores are the stores several hubs share, with the variable
// naming the test server of each (scripts/services.sh sets them).
var sharedStores = []struct{ kind, env string }{
	{"redis", "SLUICE_TEST_REDIS_URL"},
	{"nats", "SLUICE_TEST_NATS_URL"},
}

// sharedStoreDSN returns a --store DSN on the test server of kind ("redis"
// or "nats") with a log of its own (a unique Redis key prefix or NATS
// stream), deleted when t ends. Without the server the test skips, or
// fails when CI=true or SLUICE_REQUIRE_SERVICES=1.
func sharedStoreDSN(t *testing.T, kind string) string {
	t.Helper()
	dsn := uniqueDSN(t, kind, "sluice_cmd_test_")
	t.Cleanup(func() { deleteSharedStore(t, kind, dsn) })
	return dsn
}

// uniqueDSN returns a DSN on the test server of kind ("redis" or "nats")
// naming a log of its own: a Redis key prefix or NATS stream made of
// prefix and random hex. Without the server's URL it skips, or fails
// under CI=true or SLUICE_REQUIRE_SERVICES=1.
func uniqueDSN(tb testing.TB, kind, prefix string) string {
	tb.Helper()
	var envName string
	for _, s := range sharedStores {
		if s.kind == kind {
			envName = s.env
		}
	}
	if envName == "" {
		tb.Fatalf("unknown shared store %q", kind)
	}
	u := os.Getenv(envName)
	if u == "" {
		if os.Getenv("CI") == "true" || os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("%s is not set (required: CI=true or SLUICE_REQUIRE_SERVICES=1): source scripts/services.sh", envName)
		}
		tb.Skipf("%s is not set: run `source scripts/services.sh` (or `make test`)", envName)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	param := "prefix=" + name + ":"
	if kind == "nats" {
		param = "stream=" + name
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + param
}

// deleteSharedStore deletes the log of a sharedStoreDSN.
func deleteSharedStore(t *testing.T, kind, dsn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	switch kind {
	case "redis":
		var st *redisstore.Store
		if st, err = redisstore.Open(ctx, dsn, redisstore.Config{}); err == nil {
			err = st.Delete(ctx)
			_ = st.Close()
		}
	case "nats":
		var st *natsstore.Store
		if st, err = natsstore.Open(ctx, dsn, natsstore.Config{}); err == nil {
			err = st.Delete(ctx)
			_ = st.Close()
		}
	}
	if err != nil {
		t.Logf("cleanup: deleting the %s log: %v", kind, err)
	}
}
