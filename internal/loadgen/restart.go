package loadgen

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"time"
)

// A reconnect storm (--restart-after D --restart-cmd CMD): D into the
// publishing, the load generator SIGKILLs the hub (--hub-pid) between two
// publishes and starts CMD with sh -c, which must exec the new hub (on the
// same store, the same address), so that its process id is the new hub's.
// Subscribers reconnect with the id of the last event they received
// (--reconnect, implied) and publishers send again what did not reach the
// hub. The storm ends when every reading subscriber has received an event
// published after the kill: by then it has every event before it in the
// log, which the sequence checks verify (missing, gaps, duplicates, out of
// order cover the whole run).

// RestartReport is what the restart measured. Times are in seconds from
// the kill.
type RestartReport struct {
	KilledPID int    `json:"killed_pid"`
	PID       int    `json:"pid"` // the new hub's
	Command   string `json:"command"`
	Error     string `json:"error,omitempty"`
	// AfterSeconds is when the hub was killed, in seconds from the start of
	// publishing.
	AfterSeconds float64 `json:"after_seconds"`
	// FirstResumedSeconds and ResumedSeconds: the first and the last
	// subscriber's resumed stream (its response head).
	FirstResumedSeconds float64 `json:"first_resumed_seconds"`
	ResumedSeconds      float64 `json:"resumed_seconds"`
	// CaughtUpSeconds: the last subscriber to receive an event published
	// after the kill (the storm's duration); CaughtUp counts the
	// subscribers that did, of Readers.
	CaughtUpSeconds float64 `json:"caught_up_seconds"`
	CaughtUp        int64   `json:"caught_up"`
	Readers         int64   `json:"readers"`
	Reconnections   int64   `json:"reconnections"`
	// The new hub from its start to the end of the storm (or of the run):
	// CPU time, peak RSS, and the busiest 100 ms sample in cores.
	HubCPUSeconds  float64 `json:"hub_cpu_seconds"`
	HubRSSPeak     int64   `json:"hub_rss_peak"`
	HubCPUPeak     float64 `json:"hub_cpu_peak_cores"`
	OldHubRSSAtEnd int64   `json:"old_hub_rss"` // the killed hub's RSS just before
}

// restarter kills and restarts the hub once, and watches the new one.
type restarter struct {
	r       *runner
	readers int64
	rep     *RestartReport
	done    chan struct{}
}

// startRestarter kills and restarts the hub after --restart-after, in the
// background; wait returns its report.
func (r *runner) startRestarter(ctx context.Context, readers int64) *restarter {
	rs := &restarter{r: r, readers: readers, done: make(chan struct{}),
		rep: &RestartReport{KilledPID: r.cfg.hubPID, Command: r.cfg.restartCmd, Readers: readers}}
	go func() {
		defer close(rs.done)
		rs.run(ctx)
	}()
	return rs
}

func (rs *restarter) wait() *RestartReport {
	<-rs.done
	return rs.rep
}

func (rs *restarter) run(ctx context.Context) {
	r, e, rep := rs.r, rs.r.env, rs.rep
	start := time.Now()
	if r.sleep(ctx, r.cfg.restartAfter); ctx.Err() != nil {
		rep.Error = "the run ended before the restart"
		return
	}
	select {
	case <-r.stop:
		rep.Error = "publishing ended before the restart"
		return
	default:
	}
	if old, err := readProc(r.cfg.hubPID); err == nil {
		rep.OldHubRSSAtEnd = old.rss
	}
	e.gate.Lock() // no publish in flight
	err := killProcess(r.cfg.hubPID)
	killed := e.now()
	rep.AfterSeconds = time.Since(start).Seconds()
	if err == nil {
		// The killed hub's sockets are closed once it is gone: until then
		// a publish could still be accepted by its listener and then cut,
		// which would leave it in doubt; and the new hub could not bind.
		// A zombie may still hold them while its other threads exit: wait
		// for the address to refuse connections too.
		for range 500 {
			if s, err := readProcState(r.cfg.hubPID); err != nil || s == 'Z' {
				c, err := net.DialTimeout("tcp", e.target.addr, time.Second)
				if err != nil {
					break
				}
				c.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	e.restarts.Add(1)
	e.killedAt.Store(int64(killed))
	e.gate.Unlock()
	if err != nil {
		rep.Error = fmt.Sprintf("killing the hub (pid %d): %v", r.cfg.hubPID, err)
		return
	}
	cmd := exec.Command("sh", "-c", r.cfg.restartCmd)
	if err := cmd.Start(); err != nil {
		rep.Error = fmt.Sprintf("--restart-cmd: %v", err)
		return
	}
	go cmd.Wait() // reap it whenever it ends
	rep.PID = cmd.Process.Pid
	if r.hub != nil {
		r.hub.setPID(rep.PID)
	}

	// Watch the new hub until every reader caught up or the run stops.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var prev procSample
	prevAt := time.Now()
	for {
		s, err := readProc(rep.PID)
		if err == nil {
			rep.HubRSSPeak = max(rep.HubRSSPeak, s.rss)
			rep.HubCPUSeconds = s.cpu.Seconds()
			if dt := time.Since(prevAt); dt > 0 && prev.cpu > 0 {
				rep.HubCPUPeak = max(rep.HubCPUPeak, (s.cpu-prev.cpu).Seconds()/dt.Seconds())
			}
			prev, prevAt = s, time.Now()
		}
		if e.caughtUp.Load() >= rs.readers {
			return
		}
		select {
		case <-tick.C:
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// finish fills in what the subscribers measured, once they have ended.
func (rs *restarter) finish(subs []*subscriber) {
	rep, k := rs.rep, time.Duration(rs.r.env.killedAt.Load())
	if k == 0 {
		return
	}
	for _, s := range subs {
		rep.Reconnections += s.reconnects
		if s.slow || !s.connected {
			continue
		}
		if s.reconnects > 0 && s.resumedAt > k {
			at := (s.resumedAt - k).Seconds()
			rep.ResumedSeconds = max(rep.ResumedSeconds, at)
			if rep.FirstResumedSeconds == 0 || at < rep.FirstResumedSeconds {
				rep.FirstResumedSeconds = at
			}
		}
		if s.caughtUpAt > 0 {
			rep.CaughtUp++
			rep.CaughtUpSeconds = max(rep.CaughtUpSeconds, (s.caughtUpAt - k).Seconds())
		}
	}
}
