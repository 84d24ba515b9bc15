package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ServicesRequired reports whether a missing server must fail the tests
// rather than skip them: it does when the environment sets CI=true or
// SLUICE_REQUIRE_SERVICES=1, so that CI runs them for real.
func ServicesRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SLUICE_REQUIRE_SERVICES") == "1"
}

// Unavailable skips t because a service it needs is missing, as msg says,
// or fails it when [ServicesRequired].
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if ServicesRequired() {
		t.Fatal(msg + " (required: CI=true or SLUICE_REQUIRE_SERVICES=1)")
	}
	t.Skip(msg)
}

// UniqueName returns the last max characters of t's name, with every
// character other than an ASCII letter or digit made '_', then sep and
// random hex digits: a name for a log no other test run uses.
func UniqueName(t testing.TB, sep string, max int) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > max {
		name = name[len(name)-max:]
	}
	return name + sep + hex.EncodeToString(b[:])
}

// Process is a server child process a test owns, listening on a loopback
// port, with its data in a temp dir. It implements [Server].
type Process struct {
	Port int    // the loopback port it listens on
	Dir  string // its data directory, removed when the test ends

	name    string
	args    []string
	timeout time.Duration
	cmd     *exec.Cmd
}

// StartProcess starts the server binary name with the arguments args
// returns for a free loopback port and a new temp dir, and waits up to
// timeout for it to listen. It skips t (see [Unavailable]) if name is not
// installed, and kills the process when t ends.
func StartProcess(t testing.TB, name string, timeout time.Duration, args func(port int, dir string) []string) *Process {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Unavailable(t, name+" is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &Process{Port: port, Dir: t.TempDir(), name: name, timeout: timeout}
	p.args = args(p.Port, p.Dir)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(os.Kill) })
	return p
}

// Start starts the process, which must not be running, and waits for it
// to listen on Port.
func (p *Process) Start() error {
	if p.cmd != nil {
		return errors.New(p.name + " is already running")
	}
	cmd := exec.Command(p.name, p.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(p.timeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.Port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %d: %w", p.name, p.Port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port a child process opens
	}
}

// Stop sends sig to the process, if it is running, and waits for it to
// exit.
func (p *Process) Stop(sig os.Signal) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	err := p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait() // exits with the signal's status
	p.cmd = nil
	return err
}

// Signal sends sig to the process, if it is running, without waiting: a
// test stalls a server with SIGSTOP and resumes it with SIGCONT.
func (p *Process) Signal(sig os.Signal) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return errors.New(p.name + " is not running")
	}
	return p.cmd.Process.Signal(sig)
}
