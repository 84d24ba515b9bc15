//go:build !unix

package loadgen

import (
	"errors"
	"syscall"
	"time"
)

func raiseNoFile() (uint64, error) { return 0, errors.ErrUnsupported }

func processCPU() (time.Duration, bool) { return 0, false }

// tinyReceiveBuffer leaves the receive buffer alone where SO_RCVBUF cannot
// be set portably.
func tinyReceiveBuffer(_, _ string, _ syscall.RawConn) error { return nil }

func killProcess(int) error { return errors.ErrUnsupported }
