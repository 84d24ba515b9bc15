package loadgen

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Report is the outcome of a run: what --json prints. Durations are in
// nanoseconds unless the name says otherwise; sizes are in bytes.
type Report struct {
	URL             string  `json:"url"`
	Scenario        string  `json:"scenario"` // "broadcast", "idle" or "subscribe"
	Publish         string  `json:"publish"`
	PublishURL      string  `json:"publish_url,omitempty"`
	Pipeline        int     `json:"pipeline,omitempty"` // --pipeline, when above 1
	Window          int64   `json:"window,omitempty"`   // --window, when set
	Subscribers     int     `json:"subscribers"`
	Slow            int     `json:"slow"`
	SourceAddresses int     `json:"source_addresses"`
	OpenFileLimit   uint64  `json:"open_file_limit,omitempty"`
	Connected       int     `json:"connected"`
	ConnectFailed   int     `json:"connect_failed"`
	ConnectError    string  `json:"connect_error,omitempty"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	Dropped         int     `json:"dropped"`
	DropError       string  `json:"drop_error,omitempty"`
	SlowClosedByHub int     `json:"slow_closed_by_hub"`
	HoldSeconds     float64 `json:"hold_seconds,omitempty"`

	Published      int64    `json:"published"`
	PublishErrors  int64    `json:"publish_errors"`
	PublishError   string   `json:"publish_error,omitempty"`
	PublishSeconds float64  `json:"publish_seconds"`
	PublishRate    float64  `json:"publish_rate"`       // achieved events/s
	PublishLagMax  int64    `json:"publish_lag_max_ns"` // worst start behind schedule
	PostLatency    *Summary `json:"post_latency_ns,omitempty"`

	// Deliveries counts events received by the subscribers that read:
	// events carrying this run's tag, duplicates included (with --publish
	// none, every event).
	Deliveries       int64    `json:"deliveries"`
	Expected         int64    `json:"expected_deliveries"`
	DeliverySeconds  float64  `json:"delivery_seconds"` // first publish to last delivery
	DeliveriesPerSec float64  `json:"deliveries_per_sec"`
	Missing          int64    `json:"missing"`      // expected but never received
	Gaps             int64    `json:"gaps"`         // sequence numbers skipped and never filled
	Duplicates       int64    `json:"duplicates"`   // sequence numbers received twice
	OutOfOrder       int64    `json:"out_of_order"` // arrivals after a higher sequence number
	OtherEvents      int64    `json:"other_events"` // events without this run's tag
	Comments         int64    `json:"comments"`     // comment lines (heartbeats)
	Latency          *Summary `json:"latency_ns,omitempty"`
	DrainTimedOut    bool     `json:"drain_timed_out"`

	// Reconnections counts the streams resumed with --reconnect.
	Reconnections int64          `json:"reconnections,omitempty"`
	Restart       *RestartReport `json:"restart,omitempty"`

	Hub     *HubReport     `json:"hub,omitempty"`
	Hostile *HostileReport `json:"hostile,omitempty"`
	Client  ClientReport   `json:"client"`

	TimedOut    bool     `json:"timed_out"`   // --max-duration ended the run
	Interrupted bool     `json:"interrupted"` // the caller cancelled the run
	Warnings    []string `json:"warnings,omitempty"`

	// refused is the publish refused for want of authorization (401, 403)
	// that stopped the run; Run reports it instead of the report.
	refused error
}

// HubReport is the hub process's resources, sampled from /proc: before
// subscribers connect, once all are connected (after the hold with --idle),
// and at the end of the measured phase.
type HubReport struct {
	PID              int     `json:"pid"`
	RSSBefore        int64   `json:"rss_before"`
	RSSConnected     int64   `json:"rss_connected"`
	RSSEnd           int64   `json:"rss_end"`
	RSSPeak          int64   `json:"rss_peak"`
	RSSPerConnection float64 `json:"rss_per_connection"`
	CPUSeconds       float64 `json:"cpu_seconds"`         // during the measured phase
	CPUCores         float64 `json:"cpu_cores"`           // CPU seconds per wall second
	CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us"` // µs of hub CPU per delivery
	// CPUPerPublishUS is the hub's CPU in the measured phase per accepted
	// publish: its cost of one publish with --subscribers 0, that of a
	// publish and its fan-out otherwise.
	CPUPerPublishUS     float64  `json:"cpu_per_publish_us"`
	GoroutinesBefore    *int64   `json:"goroutines_before,omitempty"`
	GoroutinesConnected *int64   `json:"goroutines_connected,omitempty"`
	GoroutinesPerConn   *float64 `json:"goroutines_per_connection,omitempty"`
}

// ClientReport is the load generator's own cost.
type ClientReport struct {
	CPUSeconds       float64 `json:"cpu_seconds"` // during the measured phase, publishers included
	CPUCores         float64 `json:"cpu_cores"`   // CPU seconds per wall second of that phase
	GOMAXPROCS       int     `json:"gomaxprocs"`  // cores the tool could use
	CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us"`
	CPUPerPublishUS  float64 `json:"cpu_per_publish_us"` // publishers and subscribers alike
	RSS              int64   `json:"rss"`
	// Reads counts the subscribers' socket reads that returned data, and
	// EventsPerRead the events they carried on average: how much the
	// server batched its writes, which sets the cost of a delivery on
	// both sides.
	Reads         int64   `json:"reads"`
	EventsPerRead float64 `json:"events_per_read"`
}

// anomalous reports whether the run saw anything that is not a clean
// measurement: failed connections, drops, lost, duplicated or reordered
// events, failed publishes, or a run cut short.
func (r *Report) anomalous() bool {
	return r.ConnectFailed > 0 || r.Dropped > 0 || r.Missing > 0 || r.Gaps > 0 ||
		r.Duplicates > 0 || r.OutOfOrder > 0 || r.PublishErrors > 0 || r.TimedOut || r.Interrupted || r.DrainTimedOut ||
		(r.Restart != nil && (r.Restart.Error != "" || r.Restart.CaughtUp < r.Restart.Readers))
}

// writeText prints the human-readable summary.
func (r *Report) writeText(w io.Writer) {
	p := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-13s %s\n", label, fmt.Sprintf(format, a...))
	}
	p("sluice bench", "%s (%s)", r.URL, r.Scenario)
	conn := fmt.Sprintf("%d of %d connected in %.2fs from %d source address(es)",
		r.Connected, r.Subscribers, r.ConnectSeconds, max(r.SourceAddresses, 1))
	if r.ConnectFailed > 0 {
		conn += fmt.Sprintf("; %d FAILED (%s)", r.ConnectFailed, r.ConnectError)
	}
	p("subscribers", "%s", conn)
	if r.Slow > 0 {
		p("", "%d slow (stopped reading), %d of them closed by the hub", r.Slow, r.SlowClosedByHub)
	}
	if r.Dropped > 0 {
		p("", "%d DROPPED before the end (%s)", r.Dropped, r.DropError)
	}
	if r.Scenario == "idle" {
		p("hold", "%.1fs, %d comment lines received", r.HoldSeconds, r.Comments)
	}
	if r.Publish != publishNone {
		line := fmt.Sprintf("%s → %s: %d events in %.2fs (%.0f/s), %d errors",
			r.Publish, r.PublishURL, r.Published, r.PublishSeconds, r.PublishRate, r.PublishErrors)
		if r.PostLatency != nil {
			line += fmt.Sprintf("; POST p50 %s p99 %s", fmtNS(r.PostLatency.P50), fmtNS(r.PostLatency.P99))
		}
		if r.Pipeline > 1 {
			line += fmt.Sprintf(" (up to %d pipelined per connection)", r.Pipeline)
		}
		p("publish", "%s", line)
		if r.PublishError != "" {
			p("", "first publish error: %s", r.PublishError)
		}
		if r.PublishLagMax > int64(10e6) {
			p("", "publishers fell behind schedule by up to %s", fmtNS(r.PublishLagMax))
		}
	}
	if r.Scenario != "idle" {
		p("deliveries", "%s of %s expected in %.2fs = %s/s", group(r.Deliveries), group(r.Expected),
			r.DeliverySeconds, group(int64(r.DeliveriesPerSec)))
		p("", "missing %d, gaps %d, duplicates %d, out of order %d, other events %d%s",
			r.Missing, r.Gaps, r.Duplicates, r.OutOfOrder, r.OtherEvents,
			map[bool]string{true: " (drain timed out)", false: ""}[r.DrainTimedOut])
	}
	if l := r.Latency; l != nil {
		p("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (publish → receive, %d samples)",
			fmtNS(l.P50), fmtNS(l.P90), fmtNS(l.P99), fmtNS(l.P999), fmtNS(l.Max), l.Count)
	}
	if r.Reconnections > 0 {
		p("reconnected", "%d streams resumed with Last-Event-ID", r.Reconnections)
	}
	if rs := r.Restart; rs != nil {
		if rs.Error != "" {
			p("restart", "FAILED: %s", rs.Error)
		}
		p("restart", "hub %d killed %.2fs into publishing, %d started: streams resumed %.2f–%.2fs after the kill; %d of %d subscribers caught up, the last %.2fs after the kill",
			rs.KilledPID, rs.AfterSeconds, rs.PID, rs.FirstResumedSeconds, rs.ResumedSeconds, rs.CaughtUp, rs.Readers, rs.CaughtUpSeconds)
		p("", "new hub: CPU %.2fs by then, peak %.2f cores (100 ms), peak RSS %s (the killed one: %s)",
			rs.HubCPUSeconds, rs.HubCPUPeak, fmtBytes(float64(rs.HubRSSPeak)), fmtBytes(float64(rs.OldHubRSSAtEnd)))
	}
	if h := r.Hub; h != nil {
		p(fmt.Sprintf("hub pid %d", h.PID), "RSS %s before, %s connected (%s per connection), %s at the end, peak %s",
			fmtBytes(float64(h.RSSBefore)), fmtBytes(float64(h.RSSConnected)), fmtBytes(h.RSSPerConnection),
			fmtBytes(float64(h.RSSEnd)), fmtBytes(float64(h.RSSPeak)))
		line := fmt.Sprintf("CPU %.2fs (%.2f cores)", h.CPUSeconds, h.CPUCores)
		if h.CPUPerDeliveryUS > 0 {
			line += fmt.Sprintf(" = %.3f µs per delivery", h.CPUPerDeliveryUS)
		}
		if h.CPUPerPublishUS > 0 {
			line += fmt.Sprintf(", %.2f µs per publish", h.CPUPerPublishUS)
		}
		if h.GoroutinesBefore != nil && h.GoroutinesConnected != nil {
			line += fmt.Sprintf("; goroutines %d → %d", *h.GoroutinesBefore, *h.GoroutinesConnected)
			if h.GoroutinesPerConn != nil {
				line += fmt.Sprintf(" (%.2f per connection)", *h.GoroutinesPerConn)
			}
		}
		p("", "%s", line)
	}
	if hr := r.Hostile; hr != nil {
		for _, kind := range hostileKinds {
			k := hr.Kinds[kind]
			if k.Clients == 0 {
				continue
			}
			line := fmt.Sprintf("%s ×%d: %d connections, %d accepted, %d refused, %d cut by the hub", kind, k.Clients,
				k.Connections, k.Accepted, k.Refused, k.CutByHub)
			if k.Selectors != "" {
				line += "; accepted: " + k.Selectors
			}
			p("hostile", "%s", line)
		}
	}
	line := fmt.Sprintf("CPU %.2fs (%.2f of %d cores)", r.Client.CPUSeconds, r.Client.CPUCores, r.Client.GOMAXPROCS)
	if r.Client.CPUPerDeliveryUS > 0 {
		line += fmt.Sprintf(" = %.3f µs per delivery", r.Client.CPUPerDeliveryUS)
	}
	if r.Client.CPUPerPublishUS > 0 {
		line += fmt.Sprintf(", %.2f µs per publish", r.Client.CPUPerPublishUS)
	}
	if r.Client.EventsPerRead > 0 {
		line += fmt.Sprintf(", %.1f events per read", r.Client.EventsPerRead)
	}
	if r.Client.RSS > 0 {
		line += ", RSS " + fmtBytes(float64(r.Client.RSS))
	}
	p("client", "%s", line)
	if r.TimedOut {
		p("TIMED OUT", "--max-duration ended the run early")
	}
	if r.Interrupted {
		p("INTERRUPTED", "the run was cancelled before its end")
	}
	for _, warn := range r.Warnings {
		p("warning", "%s", warn)
	}
}

// fmtNS formats nanoseconds with three significant digits.
func fmtNS(ns int64) string {
	v := float64(ns)
	switch {
	case ns < 1e3:
		return strconv.FormatInt(ns, 10) + "ns"
	case ns < 1e6:
		return sig3(v/1e3) + "µs"
	case ns < 1e9:
		return sig3(v/1e6) + "ms"
	}
	return sig3(v/1e9) + "s"
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(b float64) string {
	neg := b < 0
	if neg {
		b = -b
	}
	unit := "B"
	for _, u := range []string{"KiB", "MiB", "GiB"} {
		if b < 1024 {
			break
		}
		b /= 1024
		unit = u
	}
	s := sig3(b) + " " + unit
	if neg {
		s = "-" + s
	}
	return s
}

// group formats n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
