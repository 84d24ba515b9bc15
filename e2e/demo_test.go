package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/mercure"
)

const chromiumPath = "/usr/bin/chromium"

// hangTimeout bounds every wait of the test: generous, so that a slow
// machine passes, and finite, so that a hang fails with a message.
const hangTimeout = 60 * time.Second

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s is missing: the browser tests must run in CI (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("%s not found: skipping the browser test (apt-get install chromium to run it)", chromiumPath)
	}
}

// buildSluice builds the sluice binary from the repository root.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback address with a port free at the time of
// the call; the hub is restarted on it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hubProc is one "sluice serve" process.
type hubProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan error
}

func (p *hubProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startHub starts the hub and waits until it listens.
func startHub(t *testing.T, bin string, args ...string) *hubProc {
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
	listening := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), `"msg":"sluice hub listening"`) {
				listening <- struct{}{}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-listening:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("sluice serve exited before listening: %v\n%s", err, p.log())
	case <-time.After(hangTimeout):
		t.Fatalf("sluice serve did not listen within %v\n%s", hangTimeout, p.log())
	}
	return p
}

// stop signals the hub and waits for it to exit.
func (p *hubProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("hub exited with %v after SIGTERM, want 0\n%s", err, p.log())
		}
	case <-time.After(hangTimeout):
		t.Fatalf("hub did not exit within %v of %v\n%s", hangTimeout, sig, p.log())
	}
}

// devToken returns a publisher token for the development hub on the bolt
// file db, from "sluice token" as the README shows.
func devToken(t *testing.T, bin, db string) string {
	t.Helper()
	cmd := exec.Command(bin, "token", "--store", "bolt:"+db, "--publish", "*")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice token: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// publish POSTs one update and returns its id, or the error.
func publish(base, token, topic, data string) (string, error) {
	form := url.Values{"topic": {topic}, "data": {data}}
	req, err := http.NewRequest(http.MethodPost, base+mercure.HubPath, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("publish: %s: %s", res.Status, b)
	}
	return string(b), nil
}

// startBrowser starts headless Chromium for the test and returns the
// context that drives it, bounded to a few minutes; the browser stops at
// the end of the test.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1100),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// Start the browser on a context without a deadline (its lifetime is
	// the context's), then bound the rest of the test.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pageWatcher returns the page's state (the JSON the expression js
// evaluates to, decoded into T) and a waitFor that polls it until cond
// holds, failing on a hang with the state and what more(), when not nil,
// adds.
func pageWatcher[T any](t *testing.T, ctx context.Context, js string, more func() string) (state func() T, waitFor func(what string, cond func(T) bool) T) {
	state = func() T {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("reading the page state: %v", err)
		}
		var s T
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			t.Fatalf("page state %q: %v", raw, err)
		}
		return s
	}
	return state, func(what string, cond func(T) bool) T {
		t.Helper()
		deadline := time.Now().Add(hangTimeout)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			s := state()
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				extra := ""
				if more != nil {
					extra = "\n" + more()
				}
				t.Fatalf("waited %v for %s; page state: %+v%s", hangTimeout, what, s, extra)
			}
			<-tick.C
		}
	}
}

// pageState is window.sluiceDemo.
type pageState struct {
	Events []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"events"`
	State       string `json:"state"`
	Reconnects  int    `json:"reconnects"`
	LastEventID string `json:"lastEventId"`
}

// TestDemoPageResumesAcrossRestarts follows the README's quick start: a
// hub in development mode (no key) on a bolt file, the demo page opened in
// headless Chromium, which subscribes to "demo" by itself with the
// development subscriber token (its "subscribe with a token" box ticked).
// The hub is stopped with SIGTERM (drain), then SIGKILL (crash), and
// started again each time on the same bolt file and port while events are
// published before, between and after, with a token from "sluice token";
// the page reconnects with its last event id. A last restart follows the
// removal of the development key file: the hub has a new key, refuses the
// page's token with 401, and the page fetches fresh tokens and resumes.
// The page ends with every event exactly once, in order.
func TestDemoPageResumesAcrossRestarts(t *testing.T) {
	needChromium(t)
	bin := buildSluice(t)
	addr := freePort(t)
	base := "http://" + addr
	db := filepath.Join(t.TempDir(), "sluice.db")
	args := []string{"--addr", addr, "--store", "bolt:" + db, "--heartbeat", "1s"}
	hub := startHub(t, bin, args...)
	token := devToken(t, bin, db)

	ctx := startBrowser(t)

	_, waitFor := pageWatcher[pageState](t, ctx, `JSON.stringify(window.sluiceDemo)`, func() string {
		conn, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("conn-log").innerText`))
		return "connection log:\n" + conn + "\nhub log:\n" + hub.log()
	})
	subToken := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("sub-use-token").checked ? document.getElementById("sub-token").value : ""`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// The page subscribes by itself, with the token.
	const topic = "demo"
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the demo page: %v", err)
	}
	waitFor("the page to subscribe by itself", func(s pageState) bool { return s.State == "open" })
	firstSubToken := subToken()
	if firstSubToken == "" {
		t.Fatal(`the "subscribe with a token" box is not ticked, or holds no token`)
	}

	var ids, datas []string
	pub := func(n int) {
		t.Helper()
		for range n {
			data := fmt.Sprintf("event %d", len(ids))
			id, err := publish(base, token, topic, data)
			if err != nil {
				t.Fatalf("publishing %q: %v", data, err)
			}
			ids, datas = append(ids, id), append(datas, data)
		}
	}
	received := func(n int) func(pageState) bool {
		return func(s pageState) bool { return len(s.Events) >= n }
	}

	pub(10) // before
	waitFor("the first events", received(len(ids)))

	rounds := []struct {
		sig    syscall.Signal
		newKey bool // remove the development key: the hub starts with another
	}{{syscall.SIGTERM, false}, {syscall.SIGKILL, false}, {syscall.SIGTERM, true}}
	for round, r := range rounds {
		hub.stop(t, r.sig)
		if _, err := publish(base, token, topic, "lost"); err == nil {
			t.Fatal("a publish to a stopped hub succeeded")
		}
		waitFor("the page to notice the hub is gone", func(s pageState) bool { return s.State != "open" })
		if r.newKey {
			if err := os.Remove(db + ".dev-key"); err != nil {
				t.Fatal(err)
			}
		}
		hub = startHub(t, bin, args...)
		if r.newKey {
			old := token
			if token = devToken(t, bin, db); token == old {
				t.Fatal("the hub kept its key though its key file was removed")
			}
		}
		pub(10) // while the page reconnects
		waitFor(fmt.Sprintf("the page to reconnect after restart %d (%v)", round+1, r.sig),
			func(s pageState) bool { return s.State == "open" && s.Reconnects >= round+1 })
		pub(10) // after
		waitFor(fmt.Sprintf("every event after restart %d (%v)", round+1, r.sig), received(len(ids)))
	}
	if subToken() == firstSubToken {
		t.Error("the page kept the token of the old key: it cannot have subscribed with a token since")
	}

	// A last event after everything: any duplicate or stray event would
	// arrive before it.
	pub(1)
	s := waitFor("the final event", received(len(ids)))
	if len(s.Events) != len(ids) {
		t.Fatalf("the page received %d events, want %d", len(s.Events), len(ids))
	}
	for i, e := range s.Events {
		if e.ID != ids[i] || e.Data != datas[i] || e.Type != "message" {
			t.Fatalf("event %d: got %s %q (%s), want %s %q; all: %+v", i, e.ID, e.Data, e.Type, ids[i], datas[i], s.Events)
		}
	}
	if s.LastEventID != ids[len(ids)-1] || s.Reconnects < len(rounds) {
		t.Errorf("last event id %q reconnects %d, want %q and at least %d", s.LastEventID, s.Reconnects, ids[len(ids)-1], len(rounds))
	}

	if path := os.Getenv("SLUICE_E2E_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
