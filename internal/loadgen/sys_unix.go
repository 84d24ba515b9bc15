//go:build unix

package loadgen

import (
	"fmt"
	"syscall"
	"time"
)

// raiseNoFile raises the soft limit on open files to the hard limit and
// returns the limit in force.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(lim.Cur), fmt.Errorf("setrlimit(RLIMIT_NOFILE, %d): %w", want.Cur, err)
		}
		lim = want
	}
	return uint64(lim.Cur), nil
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// tinyReceiveBuffer is a net.Dialer Control function that shrinks the
// socket's receive buffer before it connects (the window scale is agreed
// on in the handshake), so a subscriber that stops reading pushes back on
// the server after a few KiB.
func tinyReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1)
	})
	if err != nil {
		return fmt.Errorf("setting SO_RCVBUF: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("setting SO_RCVBUF: %w", serr)
	}
	return nil
}

// killProcess sends SIGKILL to pid.
func killProcess(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
