// Package loadgen is the load generator behind `sluice bench`. It opens
// many Server-Sent Events connections with its own raw-TCP HTTP/1.1 client
// (one goroutine and one small buffer per connection, spread over several
// 127.0.0.x source addresses so that tens of thousands of connections do
// not run out of ephemeral ports), publishes events at a set rate itself,
// and measures publish-to-receive latency, deliveries per second and lost,
// duplicated or reordered events. Given the hub's process id it also
// reports the hub's memory per connection and CPU time per delivery.
//
// It targets any SSE URL: events are published with Mercure's form POST
// (`--publish mercure`, what `sluice serve` speaks), with a raw POST body
// to any URL (`--publish url`), or not at all (`--publish none`, which
// only counts). Every run is bounded in time, and only loopback targets
// are accepted unless --allow-remote is given.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/flagusage"
)

// Exit codes of Run.
const (
	exitOK        = 0
	exitFailed    = 1 // the run could not be made
	exitUsage     = 2 // bad flags
	exitAnomalous = 3 // the run completed but saw failures (see Report.anomalous)
)

// maxSeqTracks bounds the per-publisher sequence trackers of all the
// subscribers (16 bytes each).
const maxSeqTracks = 16 << 20

// errMaxDuration is the cause of a run's context ending at --max-duration.
var errMaxDuration = errors.New("--max-duration reached")

// config is the parsed command line.
type config struct {
	url             string
	subscribers     int
	sources         int
	ramp            float64
	dialConcurrency int
	connectTimeout  time.Duration
	slow            int
	idle            bool
	hold            time.Duration
	publish         string
	publishURL      string
	topic           string
	token           string
	subscriberToken string
	lastEventID     string
	rate            float64
	events          int64
	duration        time.Duration
	publishers      int
	pipeline        int
	size            int
	drain           time.Duration
	maxDuration     time.Duration
	maxEventSize    int
	hubPID          int
	hubMetrics      string
	json            bool
	allowRemote     bool
	hostile         int
	hostileKinds    []string
	window          int64
	reconnect       bool
	reconnectDelay  time.Duration
	restartAfter    time.Duration
	restartCmd      string
}

const usageHeader = `usage: sluice bench --url URL [flags]

Opens --subscribers SSE connections to URL, publishes events at --rate and
reports publish-to-receive latency, deliveries/s and lost, duplicated or
reordered events; with --hub-pid, the hub's RSS per connection and CPU per
delivery. Only loopback targets unless --allow-remote.

Examples:
  sluice bench --url 'http://127.0.0.1:8080/.well-known/mercure?topic=bench' \
      --token $JWT --subscribers 1000 --rate 1000 --duration 10s --hub-pid $PID
  sluice bench --url http://127.0.0.1:8080/.well-known/mercure?topic=bench \
      --idle --subscribers 10000 --ramp 2000 --hold 10s --hub-pid $PID
  sluice bench --url http://127.0.0.1:9000/events --publish url \
      --publish-url http://127.0.0.1:9000/publish --subscribers 100

Exit status: 0 a clean run, 1 the run could not be made, 2 bad flags,
3 the run completed but saw failed connections, drops, missing, duplicated
or reordered events, failed publishes, or was cut short (time, signal).

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("sluice bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHeader)
		flagusage.Print(stderr, fs, nil)
	}
	fs.StringVar(&c.url, "url", "", "the SSE `URL` subscribers GET (required)")
	fs.IntVar(&c.subscribers, "subscribers", 100, "number of subscriber connections (0: only publish, to measure the hub's CPU per publish)")
	fs.IntVar(&c.sources, "sources", 8, "connect from source addresses 127.0.0.1 to 127.0.0.`N` in turn (IPv4 loopback targets)")
	fs.Float64Var(&c.ramp, "ramp", 0, "connections opened per second (0: as fast as --dial-concurrency allows)")
	fs.IntVar(&c.dialConcurrency, "dial-concurrency", 64, "connections being opened at once, at most")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "time to dial and receive the response head, per connection")
	fs.IntVar(&c.slow, "slow", 0, "`K` of the subscribers stop reading once connected (tiny receive buffer, connection held open)")
	fs.BoolVar(&c.idle, "idle", false, "only connect and hold for --hold (memory per connection); implies --publish none")
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "with --idle, how long to hold the connections once all are open")
	fs.StringVar(&c.publish, "publish", publishMercure, "how to publish: mercure (form POST topic=…&data=…), url (raw POST body) or none")
	fs.StringVar(&c.publishURL, "publish-url", "", "`URL` to POST events to (default for mercure: --url without its query)")
	fs.StringVar(&c.topic, "topic", "", "Mercure topic to publish to (default: the topic parameter of --url)")
	fs.StringVar(&c.token, "token", "", "bearer `token` sent when publishing")
	fs.StringVar(&c.subscriberToken, "subscriber-token", "", "bearer `token` sent by subscribers")
	fs.StringVar(&c.lastEventID, "last-event-id", "", "Last-Event-ID sent by subscribers")
	fs.Float64Var(&c.rate, "rate", 1000, "events published per second, over all publishers (0: as fast as possible)")
	fs.Int64Var(&c.events, "events", 0, "events to publish (0: as many as --duration allows)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "publishing time (with --publish none: counting time); 0: until --events are out")
	fs.IntVar(&c.publishers, "publishers", 1, "concurrent publishers (each with its own sequence numbers)")
	fs.Int64Var(&c.window, "window", 0, "`N`: hold the publishers while N events are published and not yet delivered to every subscriber (estimated from the deliveries; 0: no hold)")
	fs.IntVar(&c.pipeline, "pipeline", 1, "requests each publisher sends before reading their responses, when that many are due (HTTP/1.1 pipelining; 1: none)")
	fs.IntVar(&c.size, "size", 0, "pad each event's data to `bytes`")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "after publishing, how long to wait for deliveries to arrive")
	fs.DurationVar(&c.maxDuration, "max-duration", 60*time.Second, "the whole run stops after this, whatever the other flags")
	fs.IntVar(&c.maxEventSize, "max-event-size", 1<<20, "largest event a subscriber accepts, in bytes")
	fs.IntVar(&c.hubPID, "hub-pid", 0, "the hub's process id: report its RSS per connection and CPU per delivery from /proc")
	fs.StringVar(&c.hubMetrics, "hub-metrics", "", "the hub's Prometheus metrics `URL`, for its go_goroutines gauge (optional)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of the summary")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow targets outside 127.0.0.0/8 and ::1")
	fs.IntVar(&c.hostile, "hostile", 0, "`N` anonymous hostile clients beside the run, a Mercure hub's abuse in turns: costly selectors, slow QUERY bodies, subscription churn, bogus cursors (see hostile.go)")
	fs.BoolVar(&c.reconnect, "reconnect", false, "a subscriber whose stream ends or breaks before the run stops reconnects, with the id of the last event it received as Last-Event-ID")
	fs.DurationVar(&c.reconnectDelay, "reconnect-delay", 100*time.Millisecond, "with --reconnect, the wait before reconnecting (jittered from half to all of it, doubled after each failed attempt up to 2s)")
	fs.DurationVar(&c.restartAfter, "restart-after", 0, "a reconnect storm: this long into publishing, SIGKILL --hub-pid between two publishes and run --restart-cmd, which must exec the new hub; implies --reconnect (see restart.go)")
	fs.StringVar(&c.restartCmd, "restart-cmd", "", "with --restart-after, the shell `command` (sh -c) that restarts the hub on the same store and address; it must exec the hub, whose pid the report gives")
	kinds := fs.String("hostile-kinds", strings.Join(hostileKinds, ","), "the kinds of --hostile clients, in turns (comma-separated)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.idle {
		if set["publish"] && c.publish != publishNone {
			return nil, errors.New("--idle publishes nothing: drop --publish")
		}
		c.publish = publishNone
	}
	switch {
	case c.url == "":
		return nil, errors.New("--url is required")
	case c.subscribers < 0:
		return nil, errors.New("--subscribers must not be negative")
	case c.subscribers == 0 && (c.idle || c.publish == publishNone):
		return nil, errors.New("--subscribers 0 only publishes: it needs a --publish mode and no --idle")
	case c.subscribers == 0 && c.window > 0:
		return nil, errors.New("--window waits for deliveries, which --subscribers 0 has none of")
	case c.sources < 1 || c.sources > 254:
		return nil, errors.New("--sources must be between 1 and 254")
	case c.ramp < 0:
		return nil, errors.New("--ramp must not be negative")
	case c.dialConcurrency < 1:
		return nil, errors.New("--dial-concurrency must be at least 1")
	case c.connectTimeout <= 0:
		return nil, errors.New("--connect-timeout must be positive")
	case c.slow < 0 || c.slow > c.subscribers:
		return nil, errors.New("--slow must be between 0 and --subscribers")
	case c.publish != publishNone && c.publish != publishURL && c.publish != publishMercure:
		return nil, fmt.Errorf("--publish %q: want mercure, url or none", c.publish)
	case c.publish == publishURL && c.publishURL == "":
		return nil, errors.New("--publish url needs --publish-url")
	case c.rate < 0:
		return nil, errors.New("--rate must not be negative")
	case c.events < 0 || c.duration < 0 || c.hold < 0 || c.drain < 0:
		return nil, errors.New("--events, --duration, --hold and --drain must not be negative")
	case c.publish != publishNone && c.events == 0 && c.duration == 0:
		return nil, errors.New("set --events or --duration: publishing needs an end")
	case c.publish == publishNone && !c.idle && c.duration == 0:
		return nil, errors.New("--publish none counts for --duration, which must be positive")
	case c.publishers < 1 || c.publishers > 1024:
		return nil, errors.New("--publishers must be between 1 and 1024")
	case int64(c.publishers)*int64(c.subscribers) > maxSeqTracks:
		// Each subscriber follows each publisher's sequence numbers.
		return nil, fmt.Errorf("--publishers × --subscribers must be at most %d", maxSeqTracks)
	case c.pipeline < 1 || c.pipeline > 64:
		return nil, errors.New("--pipeline must be between 1 and 64")
	case c.size < 0 || c.size > 1<<20:
		return nil, errors.New("--size must be between 0 and 1 MiB")
	case c.maxDuration <= 0:
		return nil, errors.New("--max-duration must be positive")
	case c.maxEventSize < 64:
		return nil, errors.New("--max-event-size must be at least 64")
	case c.hubPID < 0:
		return nil, errors.New("--hub-pid must not be negative")
	case c.window < 0:
		return nil, errors.New("--window must not be negative")
	case c.hostile < 0:
		return nil, errors.New("--hostile must not be negative")
	case c.reconnectDelay <= 0:
		return nil, errors.New("--reconnect-delay must be positive")
	case c.restartAfter < 0:
		return nil, errors.New("--restart-after must not be negative")
	case c.restartAfter > 0 && (c.hubPID == 0 || c.restartCmd == ""):
		return nil, errors.New("--restart-after needs --hub-pid (the hub to kill) and --restart-cmd (how to start it again)")
	case c.restartAfter > 0 && (c.publish == publishNone || c.subscribers == 0):
		return nil, errors.New("--restart-after measures a storm of subscribers catching up with published events: it needs subscribers and a --publish mode")
	case c.restartAfter == 0 && c.restartCmd != "":
		return nil, errors.New("--restart-cmd needs --restart-after")
	}
	if c.restartAfter > 0 {
		c.reconnect = true
	}
	var err error
	if c.hostileKinds, err = parseHostileKinds(*kinds); err != nil {
		return nil, err
	}
	if c.publish == publishMercure && c.topic == "" {
		c.topic = topicOf(c.url)
		if c.topic == "" {
			return nil, errors.New("--publish mercure needs --topic or a topic parameter in --url")
		}
	}
	return c, nil
}

// topicOf returns the first topic query parameter of a URL, or "".
func topicOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get("topic")
}

// Run is `sluice bench`: it parses args (the flags after "bench"), runs
// the load and writes the report to stdout (warnings and errors go to
// stderr). It returns the process exit status: 0 for a clean run, 1 when
// the run could not be made, 2 for bad flags, and 3 when the run completed
// but saw failed connections, drops, missing, duplicated or reordered
// events, failed publishes, or was cut short by --max-duration or by ctx.
// Cancelling ctx ends the run early with a report of what was measured.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice bench: %v\n", err)
		return exitUsage
	}
	rep, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice bench: %v\n", err)
		return exitFailed
	}
	if rep.refused != nil {
		// Every publish would be refused: the run stopped at the first.
		what := "pass --token with a publisher JWT"
		if cfg.token != "" {
			what = "the --token given was refused: pass a valid publisher JWT with --token"
		}
		fmt.Fprintf(stderr, "sluice bench: %v\nsluice bench: stopped: %s (for a development hub: --token \"$(sluice token --publish '*')\", run where the hub runs)\n", rep.refused, what)
		return exitFailed
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "sluice bench: writing the report: %v\n", err)
			return exitFailed
		}
	} else {
		rep.writeText(stdout)
	}
	if rep.anomalous() {
		return exitAnomalous
	}
	return exitOK
}

// runner is the state of one run.
type runner struct {
	cfg     *config
	env     *env
	rep     *Report
	subs    []*subscriber
	shards  []*shard
	stop    chan struct{} // closed when the measured phase ends
	readers sync.WaitGroup
	hub     *hubWatcher
	post    *poster // nil with --publish none
	stderr  io.Writer
}

func (r *runner) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.rep.Warnings = append(r.rep.Warnings, msg)
	if r.cfg.json {
		fmt.Fprintf(r.stderr, "sluice bench: warning: %s\n", msg)
	}
}

func run(parent context.Context, cfg *config, stderr io.Writer) (*Report, error) {
	ctx, cancel := context.WithTimeoutCause(parent, cfg.maxDuration, errMaxDuration)
	defer cancel()
	scenario := "broadcast"
	switch {
	case cfg.idle:
		scenario = "idle"
	case cfg.publish == publishNone:
		scenario = "subscribe"
	}
	r := &runner{
		cfg:    cfg,
		stop:   make(chan struct{}),
		stderr: stderr,
		rep: &Report{
			URL: cfg.url, Scenario: scenario, Publish: cfg.publish,
			Subscribers: cfg.subscribers, Slow: cfg.slow,
		},
	}

	limit, err := raiseNoFile()
	if err != nil {
		r.warn("could not raise the open-file limit: %v", err)
	}
	r.rep.OpenFileLimit = limit
	if need := uint64(cfg.subscribers + cfg.publishers + 64); limit > 0 && limit < need {
		r.warn("the open-file limit is %d, below the ~%d this run needs: connections past it will fail (raise the hard limit with ulimit -Hn)", limit, need)
	}

	sub, err := resolveTarget(ctx, cfg.url, cfg.allowRemote)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	e := &env{
		start:          time.Now(),
		mark:           marker(fmt.Sprintf("%08x", rand.Uint32())),
		target:         target{addr: sub.addr.String(), host: sub.url.Host, path: sub.url.RequestURI()},
		connectTimeout: cfg.connectTimeout,
		maxEventSize:   cfg.maxEventSize,
		publishers:     cfg.publishers,
		countAll:       cfg.publish == publishNone,
		reconnect:      cfg.reconnect,
		reconnectDelay: cfg.reconnectDelay,
		restart:        cfg.restartAfter > 0,
	}
	auth := ""
	if cfg.subscriberToken != "" {
		auth = "Bearer " + cfg.subscriberToken
	}
	e.authorization = auth
	if e.request, err = buildRequest(e.target, auth, cfg.lastEventID); err != nil {
		return nil, err
	}
	if a := sub.addr.Addr(); a.Is4() && a.IsLoopback() {
		for i := 1; i <= cfg.sources; i++ {
			e.sources = append(e.sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
		}
		if per := cfg.subscribers / cfg.sources; per > 28000 {
			r.warn("%d connections per source address may exhaust its ephemeral ports: raise --sources", per)
		}
	} else if cfg.subscribers > 28000 {
		r.warn("the target is not IPv4 loopback, so all connections share one source address and may exhaust its ephemeral ports")
	}
	r.env = e
	r.rep.SourceAddresses = len(e.sources)

	if cfg.publish != publishNone {
		raw := cfg.publishURL
		if raw == "" {
			raw, _, _ = strings.Cut(cfg.url, "?")
		}
		pub, err := resolveTarget(ctx, raw, cfg.allowRemote)
		if err != nil {
			return nil, fmt.Errorf("--publish-url: %w", err)
		}
		if r.post, err = newPoster(cfg.publish, raw, pub, cfg.topic, cfg.token); err != nil {
			return nil, fmt.Errorf("--publish-url: %w", err)
		}
		r.rep.PublishURL = raw
		if cfg.pipeline > 1 {
			r.rep.Pipeline = cfg.pipeline
		}
		r.rep.Window = cfg.window
	}
	if cfg.hubPID > 0 {
		r.hub = &hubWatcher{pid: cfg.hubPID}
		if cfg.hubMetrics != "" {
			m, err := resolveTarget(ctx, cfg.hubMetrics, cfg.allowRemote)
			if err != nil {
				return nil, fmt.Errorf("--hub-metrics: %w", err)
			}
			r.hub.metrics = cfg.hubMetrics
			r.hub.client = newLoopbackClient(m.addr.String(), 1)
			defer r.hub.client.CloseIdleConnections()
		}
	}

	nshards := 16
	r.shards = make([]*shard, nshards)
	for i := range r.shards {
		r.shards[i] = &shard{latency: newHistogram()}
	}
	r.subs = make([]*subscriber, cfg.subscribers)
	for i := range r.subs {
		r.subs[i] = &subscriber{id: i, slow: i < cfg.slow, shard: r.shards[i%nshards]}
	}
	return r.measure(ctx)
}

// measure runs the phases: connect, then hold, publish or count, then stop
// and report.
func (r *runner) measure(ctx context.Context) (*Report, error) {
	cfg, e, rep := r.cfg, r.env, r.rep
	var before, end procSample
	if r.hub != nil {
		var err error
		if before, err = r.hub.sample(); err != nil {
			return nil, fmt.Errorf("--hub-pid %d: %w", cfg.hubPID, err)
		}
		rep.Hub = &HubReport{PID: cfg.hubPID, RSSBefore: before.rss}
		if r.hub.metrics != "" {
			if n, err := r.hub.goroutines(ctx); err == nil {
				rep.Hub.GoroutinesBefore = &n
			} else {
				r.warn("%v", err)
			}
		}
		r.hub.watch(100 * time.Millisecond)
		defer r.hub.halt()
	}

	r.connectAll(ctx)
	var firstErr error
	for _, s := range r.subs {
		if s.connected {
			rep.Connected++
		} else {
			rep.ConnectFailed++
			if firstErr == nil {
				firstErr = s.connErr
			}
		}
	}
	if firstErr != nil {
		rep.ConnectError = firstErr.Error()
	}

	// The measured phase starts now that every subscriber is connected:
	// with --idle it is the hold, otherwise publishing (or counting) and
	// the drain.
	fmt.Fprintf(r.stderr, "sluice bench: %d of %d subscribers connected in %.2fs\n", rep.Connected, cfg.subscribers, rep.ConnectSeconds)
	phaseStart := time.Now()
	var start procSample
	if r.hub != nil {
		start = r.sampleHub("after connecting")
		if !cfg.idle {
			r.connectedStats(ctx, start, before)
		}
	}
	clientBefore, cpuOK := processCPU()
	if cfg.idle {
		rep.HoldSeconds = r.sleep(ctx, cfg.hold).Seconds()
		if r.hub != nil {
			r.connectedStats(ctx, r.sampleHub("after the hold"), before)
		}
	}

	var hostile *hostile
	if cfg.hostile > 0 {
		hostile = newHostile(e.target, cfg.hostile, cfg.hostileKinds)
		hostile.start(ctx, r.stop)
		r.sleep(ctx, time.Second) // let them settle in before the measured phase
	}

	var pub *publishResult
	var restart *restarter
	readers := 0 // connected subscribers that read
	for _, s := range r.subs {
		if s.connected && !s.slow {
			readers++
		}
	}
	switch rep.Scenario {
	case "broadcast":
		// Without subscribers (--subscribers 0) the run only publishes.
		if rep.Connected > 0 || cfg.subscribers == 0 {
			if cfg.restartAfter > 0 {
				restart = r.startRestarter(ctx, int64(readers))
			}
			pub = publish(ctx, e, r.post, publishPlan{
				publishers: cfg.publishers, rate: cfg.rate, events: cfg.events,
				duration: cfg.duration, size: cfg.size, pipeline: cfg.pipeline,
				window: cfg.window, readers: int64(readers), delivered: r.delivered,
			})
			if rep.refused = pub.refused; rep.refused == nil {
				ok := pub.attempted - pub.errors
				rep.DrainTimedOut = !r.drain(ctx, int64(readers), ok)
			}
		}
	case "subscribe":
		r.sleep(ctx, cfg.duration)
	}

	if r.hub != nil {
		end = r.sampleHub("at the end")
	}
	clientAfter, _ := processCPU()
	phase := time.Since(phaseStart)
	rep.TimedOut = context.Cause(ctx) == errMaxDuration
	rep.Interrupted = ctx.Err() != nil && !rep.TimedOut
	r.stopAll()
	if restart != nil {
		rep.Restart = restart.wait()
		restart.finish(r.subs)
	}
	if hostile != nil {
		hostile.wait()
		rep.Hostile = hostile.report()
	}

	// Every subscriber goroutine has ended: their fields are ours to read.
	var lastRecv time.Duration
	var dropErr error
	latency := newHistogram()
	for _, sh := range r.shards {
		latency.merge(sh.latency)
	}
	for _, s := range r.subs {
		if s.slow {
			if s.slowClosed {
				rep.SlowClosedByHub++
			}
			continue
		}
		if s.dropErr != nil {
			rep.Dropped++
			if dropErr == nil {
				dropErr = s.dropErr
			}
		}
		if e.countAll {
			rep.Deliveries += s.other
		} else {
			rep.Deliveries += s.events
			rep.OtherEvents += s.other
		}
		rep.Gaps += s.holes
		rep.Duplicates += s.dups
		rep.OutOfOrder += s.late
		rep.Comments += s.comments
		rep.Client.Reads += s.reads
		rep.Reconnections += s.reconnects
		lastRecv = max(lastRecv, s.lastRecv)
	}
	if dropErr != nil {
		rep.DropError = dropErr.Error()
	}
	if rep.Client.Reads > 0 {
		rep.Client.EventsPerRead = float64(rep.Deliveries+rep.OtherEvents) / float64(rep.Client.Reads)
	}
	rep.Latency = latency.summary()

	if pub != nil {
		ok := pub.attempted - pub.errors
		rep.Published = pub.attempted
		rep.PublishErrors = pub.errors
		if pub.firstErr != nil {
			rep.PublishError = pub.firstErr.Error()
		}
		rep.PublishSeconds = (pub.lastSend - pub.firstSend).Seconds()
		if pub.attempted > 1 && rep.PublishSeconds > 0 {
			rep.PublishRate = float64(pub.attempted-1) / rep.PublishSeconds
		}
		rep.PublishLagMax = int64(pub.maxLag)
		rep.PostLatency = pub.postTimes.summary()
		rep.Expected = int64(readers) * ok
		for _, s := range r.subs {
			if s.connected && !s.slow {
				rep.Missing += max(ok-s.unique, 0)
			}
		}
		if lastRecv > pub.firstSend {
			rep.DeliverySeconds = (lastRecv - pub.firstSend).Seconds()
		}
	} else if rep.Scenario == "subscribe" {
		rep.DeliverySeconds = phase.Seconds()
	}
	if rep.DeliverySeconds > 0 {
		rep.DeliveriesPerSec = float64(rep.Deliveries) / rep.DeliverySeconds
	}

	if r.hub != nil {
		h := rep.Hub
		h.RSSEnd = end.rss
		h.RSSPeak = r.hub.halt()
		if rep.Restart != nil && rep.Restart.PID != 0 {
			h.PID = rep.Restart.PID // the end figures are the new hub's
		}
		if start.rss > 0 && end.rss > 0 && (rep.Restart == nil || rep.Restart.PID == 0) {
			cpu := end.cpu - start.cpu
			h.CPUSeconds = cpu.Seconds()
			h.CPUCores = cpu.Seconds() / phase.Seconds()
			if rep.Deliveries > 0 {
				h.CPUPerDeliveryUS = float64(cpu.Nanoseconds()) / 1e3 / float64(rep.Deliveries)
			}
			if ok := rep.Published - rep.PublishErrors; ok > 0 {
				h.CPUPerPublishUS = float64(cpu.Nanoseconds()) / 1e3 / float64(ok)
			}
		}
	}
	rep.Client.GOMAXPROCS = runtime.GOMAXPROCS(0)
	if cpuOK {
		cpu := clientAfter - clientBefore
		rep.Client.CPUSeconds = cpu.Seconds()
		rep.Client.CPUCores = cpu.Seconds() / phase.Seconds()
		if rep.Deliveries > 0 {
			rep.Client.CPUPerDeliveryUS = float64(cpu.Nanoseconds()) / 1e3 / float64(rep.Deliveries)
		}
		if ok := rep.Published - rep.PublishErrors; ok > 0 {
			rep.Client.CPUPerPublishUS = float64(cpu.Nanoseconds()) / 1e3 / float64(ok)
		}
		if busy := rep.Client.CPUCores / float64(rep.Client.GOMAXPROCS); busy >= 0.85 && rep.Scenario != "idle" {
			r.warn("the load generator used %.2f of its %d cores: it may have limited the deliveries and added to the latency (give it more CPU, or see events per read)",
				rep.Client.CPUCores, rep.Client.GOMAXPROCS)
		}
	}
	if self, err := readProc(os.Getpid()); err == nil {
		rep.Client.RSS = self.rss
	}
	return rep, nil
}

// connectedStats records the hub's memory and goroutines with every
// subscriber connected, from the sample connected and the one taken before
// connecting.
func (r *runner) connectedStats(ctx context.Context, connected, before procSample) {
	h, n := r.rep.Hub, r.rep.Connected
	h.RSSConnected = connected.rss
	if n > 0 && connected.rss > 0 {
		h.RSSPerConnection = float64(connected.rss-before.rss) / float64(n)
	}
	if r.hub.metrics == "" {
		return
	}
	g, err := r.hub.goroutines(ctx)
	if err != nil {
		r.warn("%v", err)
		return
	}
	h.GoroutinesConnected = &g
	if h.GoroutinesBefore != nil && n > 0 {
		per := float64(g-*h.GoroutinesBefore) / float64(n)
		h.GoroutinesPerConn = &per
	}
}

// sampleHub samples the hub's resources, with a warning (and zeros) when
// that fails: the hub may have exited.
func (r *runner) sampleHub(when string) procSample {
	s, err := r.hub.sample()
	if err != nil {
		r.warn("sampling the hub %s: %v", when, err)
	}
	return s
}

// connectAll starts the subscribers, paced by --ramp and at most
// --dial-concurrency connecting at once, and waits until each has connected
// or failed.
func (r *runner) connectAll(ctx context.Context) {
	start := time.Now()
	var connecting sync.WaitGroup
	sem := make(chan struct{}, r.cfg.dialConcurrency)
	var interval time.Duration
	if r.cfg.ramp > 0 {
		interval = time.Duration(float64(time.Second) / r.cfg.ramp)
	}
	launched := 0
launch:
	for i, s := range r.subs {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				r.sleep(ctx, wait)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		if ctx.Err() != nil {
			<-sem
			break
		}
		connecting.Add(1)
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			s.run(ctx, r.env, func() { <-sem; connecting.Done() }, r.stop)
		}()
		launched++
	}
	for _, s := range r.subs[launched:] {
		s.connErr = fmt.Errorf("subscriber %d: not started: %w", s.id, context.Cause(ctx))
	}
	connecting.Wait()
	r.rep.ConnectSeconds = time.Since(start).Seconds()
}

// drain waits until every reading subscriber has received perSub unique
// events, or --drain has passed. It reports whether all arrived.
func (r *runner) drain(ctx context.Context, readers, perSub int64) bool {
	deadline := time.Now().Add(r.cfg.drain)
	for {
		var got int64
		for _, sh := range r.shards {
			got += sh.unique.Load()
		}
		live := readers - r.env.dropped.Load()
		if got >= live*perSub {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// delivered returns the unique events the subscribers received so far.
func (r *runner) delivered() int64 {
	var got int64
	for _, sh := range r.shards {
		got += sh.unique.Load()
	}
	return got
}

// stopAll ends the measured phase: slow subscribers probe their
// connections, everything is closed, and every subscriber goroutine ends.
func (r *runner) stopAll() {
	r.env.stopping.Store(true)
	close(r.stop)
	for _, s := range r.subs {
		if !s.slow {
			s.close()
		}
	}
	r.readers.Wait()
}

// sleep waits for d or until ctx is done, and returns the time waited.
func (r *runner) sleep(ctx context.Context, d time.Duration) time.Duration {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return time.Since(start)
}
