package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
)

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
