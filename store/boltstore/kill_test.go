package boltstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
)

// killChildEnv, when set to a path, makes the test binary run killChild on
// that file instead of the tests; killRoundEnv numbers the run.
const (
	killChildEnv = "BOLTSTORE_KILL_CHILD"
	killRoundEnv = "BOLTSTORE_KILL_ROUND"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path, os.Getenv(killRoundEnv))
		os.Exit(3) // unreachable: killChild runs until it is killed
	}
	os.Exit(m.Run())
}

// killChild appends from 8 goroutines until it is killed, writing one line
// per acknowledged append: worker, sequence, position, id. Event data is
// "r<round>-w<worker>-<sequence>".
func killChild(path, round string) {
	s, err := Open(path, Config{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				e := store.Event{Topics: []string{"kill"}, Data: fmt.Sprintf("r%s-w%d-%d", round, w, i)}
				if i%2 == 0 {
					e.Topics = append(e.Topics, killChannel(w))
				}
				if i%5 == 0 {
					e.ID = fmt.Sprintf("c-%s-%d-%d", round, w, i)
				}
				got, err := s.Append(context.Background(), e)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				line := fmt.Sprintf("%d %d %d %s\n", w, i, got.Pos, got.ID)
				mu.Lock()
				_, err = os.Stdout.WriteString(line) // one write(2) per line
				mu.Unlock()
				if err != nil {
					os.Exit(2)
				}
			}
		}()
	}
	select {}
}

// killChannel is the channel of worker w, to which it sends every other
// event.
func killChannel(w int) string { return fmt.Sprintf("%skill/w%d", store.ChannelPrefix, w) }

type ack struct {
	round, w, i int
	pos         uint64
	id          string
}

// runAndKill runs killChild on path, SIGKILLs it once it has acknowledged
// n appends, and returns every append it acknowledged before dying.
func runAndKill(t *testing.T, path string, round, n int) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path, fmt.Sprintf("%s=%d", killRoundEnv, round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var acks []ack
	r := bufio.NewReader(out)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break // a partial last line was never acknowledged to anyone
		}
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("child wrote %q", line)
		}
		w, _ := strconv.Atoi(f[0])
		i, _ := strconv.Atoi(f[1])
		pos, _ := strconv.ParseUint(f[2], 10, 64)
		acks = append(acks, ack{round, w, i, pos, f[3]})
		if len(acks) == n && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements (%v): %s", len(acks), err, stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("child did not die of SIGKILL: %v: %s", err, stderr.String())
	}
	return acks
}

// TestKill9 kills a process that appends concurrently, twice, and checks
// that every acknowledged event is in the reopened file exactly once, in
// order, and that the file is sound.
func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	var acks []ack
	var lastPos uint64 // the last position before this round
	for round := range 2 {
		a := runAndKill(t, path, round, 300)
		t.Logf("round %d: %d appends acknowledged before SIGKILL", round, len(a))
		acks = append(acks, a...)

		s, err := Open(path, Config{})
		if err != nil {
			t.Fatalf("reopen after SIGKILL: %v", err)
		}
		check(t, s)
		var evs []store.Event
		for e, err := range s.History(context.Background(), "", nil) {
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		byData := map[string]store.Event{}
		next := map[[2]int]int{} // (round, worker) -> next sequence number
		for k, e := range evs {
			if k > 0 && e.Pos != evs[k-1].Pos+1 {
				t.Fatalf("log not contiguous: Pos %d after %d", e.Pos, evs[k-1].Pos)
			}
			if _, dup := byData[e.Data]; dup {
				t.Fatalf("event %q is in the log twice", e.Data)
			}
			byData[e.Data] = e
			var r, w, i int
			if _, err := fmt.Sscanf(e.Data, "r%d-w%d-%d", &r, &w, &i); err != nil {
				t.Fatalf("unexpected event %q", e.Data)
			}
			// A worker appends one event at a time: its events are in
			// the log in order, with no hole.
			if i != next[[2]int{r, w}] {
				t.Fatalf("event %q at Pos %d; want sequence %d of that worker next", e.Data, e.Pos, next[[2]int{r, w}])
			}
			next[[2]int{r, w}]++
			if r == round && e.Pos <= lastPos {
				t.Fatalf("round %d event %q at Pos %d, not after the previous run's last %d", round, e.Data, e.Pos, lastPos)
			}
		}
		var lastCustom ack
		for _, a := range acks {
			e, ok := byData[fmt.Sprintf("r%d-w%d-%d", a.round, a.w, a.i)]
			if !ok {
				t.Fatalf("acknowledged event r%d-w%d-%d (Pos %d, id %s) is missing after SIGKILL", a.round, a.w, a.i, a.pos, a.id)
			}
			if e.Pos != a.pos || e.ID != a.id {
				t.Fatalf("acknowledged event %q: Pos %d id %s in the log, acknowledged as Pos %d id %s", e.Data, e.Pos, e.ID, a.pos, a.id)
			}
			if strings.HasPrefix(a.id, "c-") && a.pos > lastCustom.pos {
				lastCustom = a
			}
		}
		// Ids acknowledged before the crash work as cursors after it.
		for e, err := range s.History(context.Background(), lastCustom.id, nil) {
			if err != nil || e.Pos != lastCustom.pos+1 {
				t.Fatalf("History(%q) after SIGKILL starts with Pos %d, %v; want %d", lastCustom.id, e.Pos, err, lastCustom.pos+1)
			}
			break
		}
		// Each worker's channel keeps exactly its events in the log.
		for w := range 8 {
			var want []store.Event
			for _, e := range evs {
				if slices.Contains(e.Topics, killChannel(w)) {
					want = append(want, e)
				}
			}
			var got []store.Event
			for e, err := range s.Kept(context.Background(), killChannel(w), "") {
				if err != nil {
					t.Fatalf("Kept(%s) after SIGKILL: %v", killChannel(w), err)
				}
				got = append(got, e)
			}
			if len(got) != len(want) {
				t.Fatalf("Kept(%s) after SIGKILL: %d events; the log has %d", killChannel(w), len(got), len(want))
			}
			for k := range got {
				if got[k].Pos != want[k].Pos || got[k].Data != want[k].Data || got[k].ID != want[k].ID {
					t.Fatalf("Kept(%s) after SIGKILL: event %d is %+v; the log has %+v", killChannel(w), k, got[k], want[k])
				}
			}
		}
		lastPos = evs[len(evs)-1].Pos
		s.Close()
	}
}
