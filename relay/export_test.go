package relay

// Kill ends r as the death of its instance would: its goroutine stops
// without appending its end, finishing its stream or releasing its lease.
func Kill(r *Relay) {
	r.cancel(errKilled)
	<-r.done
}

// Renewals returns the lease renewals r appended.
func Renewals(r *Relay) int64 { return r.renewals.Load() }

// StartID is the custom id of the relay id's first renewal.
func StartID(id string) string { return startID(id) }

// MonitorState returns the lease monitor's completed passes, the relays it
// declared lost, whether it runs, and whether it watches id.
func MonitorState(rl *Relayer, id string) (passes, lost int, running, watching bool) {
	m := &rl.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	_, watching = m.watches[id]
	return m.passes, m.lost, m.running, watching
}
