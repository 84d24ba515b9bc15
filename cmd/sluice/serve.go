package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/flagusage"
	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

func init() {
	commands["serve"] = command{summary: "run the hub: Mercure publish and subscribe, demo page, /metrics, /healthz", run: runServe}
}

const serveUsage = `usage: sluice serve [flags]

Runs the sluice hub: publishers POST to /.well-known/mercure, subscribers
GET it with EventSource, and every event is stored (by default in the bolt
file ./sluice.db) so that a subscriber resumes with Last-Event-ID across
reconnections and hub restarts. With no flags at all it is a working
development hub on http://localhost:8080.

Endpoints:
  /.well-known/mercure   Mercure hub (publish: POST form; subscribe: GET ?topic=)
  /                      demo page: subscribe, publish, watch reconnections
  /metrics               Prometheus metrics (hub counters, Go and process)
  /healthz               readiness: 200 when the store answers and publishes
                         succeed, else 503 (see --publish-failure-window)
  /livez, /healthz?live=1  liveness only

Development mode: when no JWT key is configured (--jwt-key,
--publisher-jwt-key, --subscriber-jwt-key) and --addr is a loopback address,
the hub signs with a random HS256 development key, logs a publisher token
(publish and subscribe to every topic) and a subscriber token, lets
anonymous subscribers in, and gives the demo page the tokens, only when the
page is asked for under a loopback name (localhost, *.localhost,
127.x.x.x, [::1]: a DNS-rebound name gets the page without tokens). With a
bolt store the key is kept beside it (bolt:./sluice.db: ./sluice.db.dev-key,
mode 0600), so tokens stay valid across restarts and "sluice token" run
with the same --store signs tokens the hub accepts; with any other store
the key lasts for the run. The key file is never read or written when a
key is configured. On a non-loopback address without a key the hub
refuses to start.

Every flag can also be set by an environment variable: --foo-bar is
SLUICE_FOO_BAR. A flag on the command line wins over the variable. Key
values are the key itself (an HMAC secret or PEM text), or @PATH to read it
from a file (its trailing line break is ignored).

Store DSNs:
  bolt:PATH   durable single-file store (the default, bolt:./sluice.db)
  memory      in-memory store: history is lost on restart
  redis://[user:pass@]HOST[:PORT][/DB][?prefix=P&max_len=N&max_bytes=N&max_age=D&wait=N&wait_timeout=D]
  rediss://…  Redis Streams, shared by every hub on the same prefix
              (--history-size sets max_len when the DSN does not); wait=N:
              a publish is acknowledged once N replicas have it, or fails
              after wait_timeout (default 1s)
  redis+sentinel://[:SENTINELPASS@]S1:26379,S2:26379/DB?master_name=M[&password=P]
              the primary Redis Sentinel names, followed across failovers
  redis+cluster://N1:7000,N2:7000?prefix={sluice}:
              Redis Cluster (the prefix needs a hash tag)
  nats://[user:pass@]HOST[:PORT][,nats://HOST2…][?stream=S&subject=P&max_msgs=N&max_bytes=N&max_age=D]
              NATS JetStream stream (default SLUICE), shared by every hub on
              the same stream (--history-size sets max_msgs when the DSN
              does not); replicas=N, storage=file|memory, creds=FILE,
              nkey=SEEDFILE; tls_ca=, tls_cert=, tls_key=FILE (TLS)

Flags:
`

// defaultStoreDSN is the store of "sluice serve" when --store is not given.
const defaultStoreDSN = "bolt:./sluice.db"

// serveConfig is the validated configuration of the serve command.
type serveConfig struct {
	addr             string
	storeDSN         string
	storeKind        string // "memory", "bolt", "redis" or "nats"
	storePath        string // bolt file
	jwtKey           string
	publisherKey     string
	subscriberKey    string
	jwtAlg           string
	jwks             jwksFlags
	issuers          []string
	audience         string
	anonymous        bool
	corsOrigins      []string
	publishOrigins   []string
	heartbeat        time.Duration
	historySize      int
	keepPerChannel   int
	keepFor          time.Duration
	keepMaxBytes     int64
	queueEvents      int
	limits           limits
	subscriptions    bool
	tlsCert          string
	tlsKey           string
	dispatchTimeout  time.Duration
	readTimeout      time.Duration
	maxLifetime      time.Duration
	publishFailWin   time.Duration
	classicLax       bool
	shutdownTimeout  time.Duration
	logFormat        string
	logLevel         slog.Level
	accessLog        bool
	demo             bool
	pprofAddr        string
	relaySpecs       repeatFlag                // --relay
	relayHeaderSpecs repeatFlag                // --relay-header
	relays           map[string]*relayUpstream // by name, from relaySpecs and relayHeaderSpecs
	relayMaxBody     int64
	relayOpts        relay.Options

	// Derived at validation.
	pubKey, subKey *mercure.Key
	tlsConfig      *tls.Config
	// dev is set in development mode: the key and its tokens.
	dev *devMode
	// warnings are logged when the hub starts.
	warnings []string
}

// devMode holds development mode's key and the tokens it signs.
type devMode struct {
	key             string
	publisherToken  string
	subscriberToken string
	// relayToken grants the relay demoRelay, when there is one, to the
	// demo page's "LLM answer" tab.
	relayToken string
	// keyFile is where the key is kept across restarts (beside a bolt
	// store), or "" when it is this run's only; keyCreated says this run
	// wrote it.
	keyFile    string
	keyCreated bool
}

// listFlag is a comma-separated, repeatable list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// envName is the environment variable of a flag: --foo-bar is
// SLUICE_FOO_BAR.
func envName(flagName string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag of fs that was not given on the command line
// from its environment variable, when that is set.
func applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("invalid value %q for %s: %w", v, name, serr)
		}
	})
	return err
}

// newServeFlags returns the serve flag set writing into c.
func newServeFlags(c *serveConfig, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		flagusage.Print(fs.Output(), fs, envName)
	}
	fs.StringVar(&c.addr, "addr", "localhost:8080", "`address` to listen on (host:port)")
	fs.StringVar(&c.storeDSN, "store", defaultStoreDSN, "event store `DSN`: bolt:PATH, memory, redis://… or nats://…")
	fs.StringVar(&c.jwtKey, "jwt-key", "", "JWT `key` for publishers and subscribers (secret, PEM, or @PATH)")
	fs.StringVar(&c.publisherKey, "publisher-jwt-key", "", "JWT `key` for publishers, instead of --jwt-key")
	fs.StringVar(&c.subscriberKey, "subscriber-jwt-key", "", "JWT `key` for subscribers, instead of --jwt-key")
	c.jwks.register(fs)
	fs.StringVar(&c.jwtAlg, "jwt-alg", "", "JWT `algorithm` of the keys: HS256/384/512 for secrets, RS256, PS256, ES256, EdDSA… for PEM keys (default HS256)")
	fs.Var((*listFlag)(&c.issuers), "jwt-issuer", "trusted `iss` of tokens (comma-separated, repeatable): modern tokens need one; when set, classic tokens must carry one too")
	fs.StringVar(&c.audience, "jwt-audience", "", "aud modern access tokens must carry: the hub's absolute `URL` (default: derived per request); when set, classic tokens must carry it too")
	fs.BoolVar(&c.classicLax, "jwt-classic-skip-iss-aud", false, "accept classic tokens without the iss and aud that --jwt-issuer and --jwt-audience otherwise require of them too (modern tokens are checked either way)")
	fs.BoolVar(&c.anonymous, "anonymous", false, "let subscribers without a token receive public updates (on in development mode)")
	fs.Var((*listFlag)(&c.corsOrigins), "cors-origins", "`origins` allowed to make cross-origin requests: exact, * or https://*.example.com (comma-separated)")
	fs.Var((*listFlag)(&c.publishOrigins), "publish-origins", "`origins` allowed to publish with a cookie token (comma-separated)")
	fs.DurationVar(&c.heartbeat, "heartbeat", defaultHeartbeat, "interval of the keep-alive comment on idle streams (0: none)")
	fs.IntVar(&c.historySize, "history-size", 0, "events the store retains (0: the store's default, 1000000 for bolt, redis and nats, 100000 for memory)")
	fs.IntVar(&c.keepPerChannel, "keep-per-channel", 0, "newest events of each private channel (a session, stream or relay) the store keeps apart from --history-size, so other traffic cannot evict them (0: 4096; -1: none)")
	fs.DurationVar(&c.keepFor, "keep-for", 0, "how long the store keeps an event of a private channel (0: 1h)")
	fs.Int64Var(&c.keepMaxBytes, "keep-max-bytes", 0, "bytes of private channels' events the store keeps in all, least recently written channels dropped first (0: the store's default, 64 MiB memory, 256 MiB bolt, 1 GiB NATS; Redis: bounded by its maxmemory instead)")
	fs.IntVar(&c.queueEvents, "queue-events", 0, "live events queued per subscriber before it counts as slow and is disconnected, to resume by Last-Event-ID (0: the engine's default, 1024)")
	fs.BoolVar(&c.subscriptions, "subscriptions", false, "publish subscription events and serve the subscriptions API")
	c.limits.register(fs)
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); serve HTTPS with --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.DurationVar(&c.dispatchTimeout, "dispatch-timeout", defaultDispatchTimeout, "bound on each write to a subscriber (Mercure's dispatch_timeout); a slower one is disconnected and resumes")
	fs.Duration(legacyWriteTimeout, 0, "deprecated: the old name of --dispatch-timeout; Mercure's write_timeout, the connection lifetime, is --max-lifetime")
	fs.DurationVar(&c.readTimeout, "read-timeout", mercure.DefaultReadTimeout, "bound on receiving a request's headers, and again on receiving its body (publish forms, QUERY parameters); a slower client gets 408 and is disconnected")
	fs.DurationVar(&c.publishFailWin, "publish-failure-window", defaultPublishFailureWindow, "/healthz answers 503 while the last store append failed less than this long ago and none succeeded since (0: publish failures do not affect /healthz)")
	fs.DurationVar(&c.maxLifetime, "max-lifetime", defaultMaxLifetime, "end each subscriber connection after this long with a retry, so connections rotate (0: no limit)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long the drain on SIGTERM/SIGINT may take")
	fs.StringVar(&c.logFormat, "log-format", "text", "log `format`: text or json")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error (debug: why each refused request was refused, with its request id)")
	fs.BoolVar(&c.accessLog, "access-log", false, "log each HTTP request at info level once answered: method, uri (tokens redacted), proto, status, bytes, duration, remote, user_agent, referer, request_id (uri, user_agent and referer cut to 2 KiB); an event stream once it is live (streaming=true)")
	fs.BoolVar(&c.demo, "demo", true, "serve the demo page on /")
	fs.Var(&c.relaySpecs, "relay", "a relay `spec`, NAME=URL: POST /relay/NAME[/PATH] with a token granting NAME relays the request to URL[/PATH] and serves the answer as a resumable stream; GET /relay/streams/ID resumes it (repeatable)")
	fs.Var(&c.relayHeaderSpecs, "relay-header", "a `header` the hub adds to relay NAME's upstream requests, as NAME=Header:Value, such as its API key (repeatable)")
	fs.Int64Var(&c.relayMaxBody, "relay-max-body", defaultRelayMaxBody, "bound on a relay request's body, in bytes")
	fs.DurationVar(&c.relayOpts.MaxDuration, "relay-max-duration", relay.DefaultMaxDuration, "bound on one relayed answer")
	fs.DurationVar(&c.relayOpts.ReadTimeout, "relay-read-timeout", relay.DefaultReadTimeout, "bound on the wait for a relay's upstream response, then for each of its events")
	fs.IntVar(&c.relayOpts.MaxInFlight, "relay-max-inflight", relay.DefaultMaxInFlight, "relays in flight on this instance; more are refused with 503")
	fs.DurationVar(&c.relayOpts.LeaseInterval, "relay-lease-interval", relay.DefaultLeaseInterval, "how often a relay renews its lease in the log, and how often a hub with readers of a relay reads the renewals")
	fs.DurationVar(&c.relayOpts.LeaseTTL, "relay-lease-ttl", relay.DefaultLeaseTTL, "a relay without a lease renewal for this long (its hub died) ends with relay-lost for its readers; at least twice --relay-lease-interval")
	fs.StringVar(&c.pprofAddr, "pprof", "", "serve Go's profiler (/debug/pprof/) on this loopback `address` (host:port), for profiling the hub under load")
	return fs, level
}

// parseServeConfig parses args and the environment into a validated
// configuration. It returns the exit status to end with when the
// configuration is unusable (2) or help was asked for (0).
func parseServeConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*serveConfig, int) {
	c := &serveConfig{}
	fs, level := newServeFlags(c, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice serve: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	if err := applyEnv(fs, lookupEnv); err != nil {
		fmt.Fprintf(stderr, "sluice serve: %v\n", err)
		return nil, 2
	}
	if err := c.legacyFlags(fs); err != nil {
		fmt.Fprintf(stderr, "sluice serve: %v\n", err)
		return nil, 2
	}
	if err := c.level(*level); err != nil {
		fmt.Fprintf(stderr, "sluice serve: %v\n", err)
		return nil, 2
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "sluice serve: %v\n", err)
		return nil, 2
	}
	return c, 0
}

// legacyWriteTimeout is the old name of --dispatch-timeout, which a Mercure
// user would read as Mercure's write_timeout (the connection lifetime,
// --max-lifetime).
const legacyWriteTimeout = "write-timeout"

// legacyFlags applies the deprecated flags given on the command line or
// in the environment, with a warning saying what to use instead.
func (c *serveConfig) legacyFlags(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set[legacyWriteTimeout] {
		return nil
	}
	msg := "--write-timeout (SLUICE_WRITE_TIMEOUT) is deprecated: it bounds each write to a subscriber, Mercure's dispatch_timeout, " +
		"now --dispatch-timeout (SLUICE_DISPATCH_TIMEOUT); Mercure's write_timeout, the connection lifetime, is --max-lifetime"
	if set["dispatch-timeout"] {
		c.warnings = append(c.warnings, msg+"; ignored, since --dispatch-timeout is set")
		return nil
	}
	c.dispatchTimeout = fs.Lookup(legacyWriteTimeout).Value.(flag.Getter).Get().(time.Duration)
	c.warnings = append(c.warnings, msg)
	if c.dispatchTimeout <= 0 {
		return errors.New("--write-timeout: must be positive")
	}
	return nil
}

func (c *serveConfig) level(s string) error {
	switch strings.ToLower(s) {
	case "debug":
		c.logLevel = slog.LevelDebug
	case "info":
		c.logLevel = slog.LevelInfo
	case "warn", "warning":
		c.logLevel = slog.LevelWarn
	case "error":
		c.logLevel = slog.LevelError
	default:
		return fmt.Errorf("--log-level: want debug, info, warn or error, got %q", s)
	}
	return nil
}

// validate checks the configuration and derives the keys, the TLS
// configuration and development mode.
func (c *serveConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	if err := c.parseStore(); err != nil {
		return err
	}
	if c.pprofAddr != "" && !loopbackAddr(c.pprofAddr) {
		return fmt.Errorf("--pprof %q: want a loopback address (localhost:PORT or 127.0.0.1:PORT): the profiler must not be reachable from the network", c.pprofAddr)
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format: want text or json, got %q", c.logFormat)
	}
	for name, d := range map[string]time.Duration{
		"--heartbeat": c.heartbeat, "--dispatch-timeout": c.dispatchTimeout,
		"--max-lifetime": c.maxLifetime, "--shutdown-timeout": c.shutdownTimeout,
		"--read-timeout": c.readTimeout, "--publish-failure-window": c.publishFailWin,
	} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative, got %v", name, d)
		}
	}
	if c.dispatchTimeout == 0 {
		return errors.New("--dispatch-timeout: must be positive")
	}
	if c.readTimeout == 0 {
		return errors.New("--read-timeout: must be positive")
	}
	if c.historySize < 0 {
		return fmt.Errorf("--history-size: must not be negative, got %d", c.historySize)
	}
	if c.keepPerChannel < -1 {
		return fmt.Errorf("--keep-per-channel: must be -1 (none), 0 (the default) or positive, got %d", c.keepPerChannel)
	}
	if c.keepMaxBytes < 0 {
		return fmt.Errorf("--keep-max-bytes: must not be negative, got %d", c.keepMaxBytes)
	}
	if c.keepFor < 0 {
		return fmt.Errorf("--keep-for: must not be negative, got %v", c.keepFor)
	}
	if c.queueEvents < 0 {
		return fmt.Errorf("--queue-events: must not be negative, got %d", c.queueEvents)
	}
	if err := c.limits.validate(); err != nil {
		return err
	}
	if err := c.validateRelays(); err != nil {
		return err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		c.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := c.parseKeys(); err != nil {
		return err
	}
	if len(c.relays) > 0 && c.subKey == nil && c.jwks.subURL == "" {
		return errors.New("--relay: relays are granted by subscriber tokens: it needs --jwt-key, --subscriber-jwt-key or a subscriber JWKS")
	}
	return nil
}

// parseStore checks the store DSN.
func (c *serveConfig) parseStore() error {
	dsn := c.storeDSN
	switch {
	case dsn == "memory" || dsn == "memory:":
		c.storeKind = "memory"
	case strings.HasPrefix(dsn, "bolt:"):
		c.storeKind, c.storePath = "bolt", strings.TrimPrefix(dsn, "bolt:")
		if c.storePath == "" {
			return fmt.Errorf("--store %q: want bolt:PATH, with a file path", dsn)
		}
	case strings.HasPrefix(dsn, "redis://"), strings.HasPrefix(dsn, "rediss://"),
		strings.HasPrefix(dsn, "redis+"), strings.HasPrefix(dsn, "rediss+"):
		c.storeKind = "redis"
		if _, _, err := redisstore.ParseDSN(dsn); err != nil {
			return fmt.Errorf("--store: %w", err)
		}
	case strings.HasPrefix(dsn, "nats://"):
		c.storeKind = "nats"
		u, _, err := natsstore.ParseDSN(dsn)
		if err != nil {
			return fmt.Errorf("--store: %w", err)
		}
		if strings.TrimPrefix(u, "nats://") == "" {
			return fmt.Errorf("--store %q: want nats://HOST[:PORT][?stream=…&max_msgs=…], with a host", dsn)
		}
	default:
		return fmt.Errorf("--store %q: unsupported store DSN: want bolt:PATH, memory, redis://HOST[:PORT][/DB][?prefix=…&max_len=…] or nats://HOST[:PORT][?stream=…&max_msgs=…]", dsn)
	}
	return nil
}

// readKey returns key material: the flag's value, or the content of the
// file it names after "@" without its trailing line break (so that a
// secret written with echo works).
func readKey(flagName, v string) ([]byte, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: reading key: %w", flagName, err)
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
	return []byte(v), nil
}

// parseKeys reads the JWT keys, or sets up development mode when there is
// none and the address is a loopback one.
func (c *serveConfig) parseKeys() error {
	pub, sub := c.jwtKey, c.jwtKey
	pubFlag, subFlag := "jwt-key", "jwt-key"
	if c.publisherKey != "" {
		pub, pubFlag = c.publisherKey, "publisher-jwt-key"
	}
	if c.subscriberKey != "" {
		sub, subFlag = c.subscriberKey, "subscriber-jwt-key"
	}
	var err error
	if c.jwks.pubURL, c.jwks.subURL, err = c.jwks.roleURLs(c); err != nil {
		return err
	}
	if c.jwks.pubURL != "" {
		pub = ""
	}
	if c.jwks.subURL != "" {
		sub = ""
	}
	if pub == "" && sub == "" && (c.jwks.pubURL != "" || c.jwks.subURL != "") && c.jwtAlg != "" {
		return errors.New("--jwt-alg applies to --jwt-key keys: a JWKS key's algorithm comes from the key")
	}
	if pub == "" && sub == "" && c.jwks.pubURL == "" && c.jwks.subURL == "" {
		if !loopbackAddr(c.addr) {
			return fmt.Errorf("no JWT key configured and --addr %q is not a loopback address: "+
				"set --jwt-key (SLUICE_JWT_KEY), --publisher-jwt-key/--subscriber-jwt-key or --jwt-jwks-url, "+
				"or listen on localhost for development mode", c.addr)
		}
		if c.jwtAlg != "" && !strings.HasPrefix(c.jwtAlg, "HS") {
			return fmt.Errorf("--jwt-alg %s needs a key: development mode generates HS256 secrets only", c.jwtAlg)
		}
		c.dev = &devMode{}
		if path := devKeyPath(c.storeKind, c.storePath); path != "" {
			key, warning, created, err := loadOrCreateDevKey(path)
			if err != nil {
				return fmt.Errorf("development mode: %w", err)
			}
			if warning != "" {
				c.warnings = append(c.warnings, warning)
			}
			pub, c.dev.keyFile, c.dev.keyCreated = key, path, created
		} else {
			pub = newDevKey()
		}
		sub = pub
		pubTok, err := mercure.NewToken([]byte(pub), c.jwtAlg, []string{"*"}, []string{"*"}, 0)
		if err != nil {
			return fmt.Errorf("development mode: %w", err)
		}
		subTok, err := mercure.NewToken([]byte(pub), c.jwtAlg, nil, []string{"*"}, 0)
		if err != nil {
			return fmt.Errorf("development mode: %w", err)
		}
		c.dev.key, c.dev.publisherToken, c.dev.subscriberToken = pub, pubTok, subTok
		if c.relays[demoRelay] != nil {
			if c.dev.relayToken, err = devRelayToken([]byte(pub), c.jwtAlg, demoRelay); err != nil {
				return fmt.Errorf("development mode: %w", err)
			}
		}
		c.anonymous = true
		// The development tokens are classic ones without iss or aud; only
		// this process, and who may read its key file (mode 0600), knows the
		// key that signs them, so --jwt-issuer and --jwt-audience need not
		// refuse them.
		c.classicLax = true
	}
	parse := func(flagName, v string) (*mercure.Key, error) {
		if v == "" {
			return nil, nil
		}
		material, err := readKey(flagName, v)
		if err != nil {
			return nil, err
		}
		k, err := mercure.ParseKey(material, c.jwtAlg)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		if w := shortHMACKey(flagName, k, material); w != "" {
			c.warnings = append(c.warnings, w)
		}
		return &k, nil
	}
	if c.pubKey, err = parse(pubFlag, pub); err != nil {
		return err
	}
	c.subKey, err = parse(subFlag, sub)
	return err
}

// shortHMACKey returns a warning when material, the secret of k, is
// shorter than the hash of k's HMAC algorithm, which RFC 7518 §3.2
// requires ("" otherwise): a short secret can be guessed offline by anyone
// who holds one token it signed.
func shortHMACKey(flagName string, k mercure.Key, material []byte) string {
	size := map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[k.Alg()]
	if len(material) >= size {
		return ""
	}
	return fmt.Sprintf("--%s: this %s secret is %d bytes, shorter than the %d bytes RFC 7518 requires: "+
		"anyone holding a token it signed can guess it offline; use at least %d random bytes (openssl rand -hex %d)",
		flagName, k.Alg(), len(material), size, size, size)
}

// loopbackAddr reports whether the host of addr is a loopback address
// ("localhost" or a loopback IP). An empty host listens on every
// interface and is not.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newLogger returns the slog logger the configuration asks for. Durations
// are written as Go writes them ("10s", "1.5ms"), in JSON too, where slog
// would write nanoseconds; a record logged with a request's context
// carries its request_id.
func (c *serveConfig) newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.logLevel, ReplaceAttr: durationString}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}

// durationString writes a duration attribute as a string ("10s").
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// runServe is the serve command.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseServeConfig(args, os.LookupEnv, stderr)
	if cfg == nil {
		return code
	}
	log := cfg.newLogger(stderr)
	s, err := newServer(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := s.run(ctx); err != nil {
		log.Error("hub stopped with an error", "err", err)
		return 1
	}
	return 0
}
