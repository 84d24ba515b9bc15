package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
)

// buildSluice builds the sluice binary into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary: skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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
// for it to log its address.
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

// TestRestartDurability publishes, kills the hub with SIGKILL, starts it
// again on the same bolt file and resumes from an early id: every later
// event arrives once, in order, then live events follow. A SIGTERM then
// drains the hub: the stream ends with a retry and the process exits 0.
func TestRestartDurability(t *testing.T) {
	bin := buildSluice(t)
	db := filepath.Join(t.TempDir(), "sluice.db")
	const key = "restart-test-secret"
	args := []string{"--addr", "127.0.0.1:0", "--store", "bolt:" + db, "--jwt-key", key, "--anonymous"}
	token, err := mercure.NewToken([]byte(key), "", []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	const n = 50
	hub := startHubProc(t, bin, args...)
	ids := make([]string, n)
	for i := range n {
		code, id := publishForm(t, hub.base, token, url.Values{"topic": {"durable"}, "data": {fmt.Sprint("event ", i)}})
		if code != 200 || id == "" {
			t.Fatalf("publish %d: %d %q", i, code, id)
		}
		ids[i] = id
	}
	if err := hub.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("a SIGKILLed hub exited cleanly")
	}

	hub = startHubProc(t, bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const from = 9
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hub.base+mercure.HubPath+"?topic=durable", nil)
	req.Header.Set("Last-Event-ID", ids[from])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("resume: status %d", res.StatusCode)
	}
	rd := sse.NewReader(res.Body)
	next, stopIter := iterPull(rd.All())
	defer stopIter()
	expect := func(id, data string) {
		t.Helper()
		e, err := next()
		if err != nil {
			t.Fatalf("want %s %q, got error %v", id, data, err)
		}
		if (id != "" && e.ID != id) || e.Data != data || e.Type != "message" {
			t.Fatalf("got %s %q (%s), want %s %q", e.ID, e.Data, e.Type, id, data)
		}
	}
	for i := from + 1; i < n; i++ {
		expect(ids[i], fmt.Sprint("event ", i))
	}
	for i := n; i < n+5; i++ {
		code, id := publishForm(t, hub.base, token, url.Values{"topic": {"durable"}, "data": {fmt.Sprint("event ", i)}})
		if code != 200 {
			t.Fatalf("live publish %d: %d", i, code)
		}
		expect(id, fmt.Sprint("event ", i))
	}

	if err := hub.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit status 0\n%s", err, hub.log())
	}
	if e, err := next(); err == nil && e.Data != "" {
		t.Fatalf("after the drain: unexpected event %+v", e)
	}
	if _, ok := rd.Retry(); !ok {
		t.Error("the drained stream carried no retry field")
	}
	if !strings.Contains(hub.log(), `"msg":"stopped"`) {
		t.Errorf("no drain in the log:\n%s", hub.log())
	}
}
