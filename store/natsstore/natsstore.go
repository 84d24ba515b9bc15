// Package natsstore is a [store.Store] whose log is a NATS JetStream stream,
// so that several hub instances share one log: any instance serves any
// subscriber and resumes any client, with the ordering, replay and no-loss
// guarantees of a single hub.
//
// # Layout
//
// One stream (Config.Stream, "SLUICE" by default; file storage, limits
// retention, discard old) holds the subjects under Config.Subject
// ("sluice.<stream>" by default). An event is one message whose payload is a
// compact binary record (time, flags, retry, type, topics, custom id, then
// the data; no NATS headers). Events without a custom id are published on
// SUBJECT.e, events with one on SUBJECT.i.<token>, where the token is 128
// bits of the id's SHA-256: the stream's per-subject index then finds the
// first retained occurrence of a custom id with one direct get (the
// server's "next message on this subject from sequence n"), never a scan,
// and retention trims that index with the stream.
//
// # Positions and ids
//
// Event.Pos is the stream sequence. Generated ids are "#<epoch>-<sequence
// in base 36>" (see [store.Epoch]; without the "#", the form earlier
// versions generated, an id still names the same position); the epoch is a
// hash of the stream's name
// and creation time, so an id of another stream, or of a stream that was
// deleted and created again under the same name, is [store.ErrUnknownID].
// A store learns the stream's creation time when it opens it and again on
// every Head (a hub's readiness probe), History and Follow; a Follow whose
// stream was replaced ends with ErrUnknownID.
//
// A cursor older than the first retained message is [store.ErrExpired] (the
// id of the newest evicted event stays valid: nothing after it is missing);
// beyond the last message it is [store.ErrUnknownID]. Sequences are
// contiguous (the store never deletes single messages), so a reader that
// finds sequence n+2 after n knows n+1 was evicted and reports ErrExpired
// instead of skipping it.
//
// Event.Time is the appending store's clock (nanoseconds), carried in the
// record; stores whose clocks disagree may append events whose Times are not
// in log order.
//
// # Retention
//
// MaxMsgs is exact; MaxBytes counts what JetStream stores (subject, record
// and overhead), not [store.EventSize]; MaxAge is the stream's, by the
// server's clock. Reads apply MaxAge by the store's clock too, so an event
// older than MaxAge is never returned while the server has not yet removed
// it.
//
// # Keeping channels
//
// The store is a [store.Keeper]: it keeps the newest KeepPerChannel events
// of every channel ([store.IsChannel]) for KeepFor apart from the log's
// retention, in the kept stream (Stream + "_KEPT", subjects Subject +
// "_kept.>": name no other log so). The log's stream cannot exempt them
// (it discards its oldest messages whatever their subject), and the kept
// stream cannot source them from it: a message has one subject where an
// event may have several channels, and sourcing is asynchronous and
// cannot tell what it dropped. Each channel is a chain on its own subject
// (128 bits of the channel's SHA-256), written only with
// Nats-Expected-Last-Subject-Sequence (a store that finds another's write
// there reads it and builds on it), each message carrying the chain's
// state before it: the newest position before it, the appends in
// progress. An append of an event of channels writes to each chain an
// intent before the log has the event and the event's copy after (two
// more round trips; none for other events), and fails, before the log
// has the event, when the kept stream cannot be written. JetStream drops
// a chain's oldest messages (beyond 2*KeepPerChannel+64, or older than
// KeepFor by the server's clock) and the kept stream's at KeepMaxBytes;
// Kept applies KeepPerChannel and KeepFor (by the store's clock) exactly,
// and yields [store.ErrExpired] when an event after the cursor was
// dropped, whichever store appended it: the oldest message kept says
// what went before it. A store that died (or lost NATS) between the log's
// acknowledgement and the copy left the intent: Kept waits for a copy up
// to 4*AckTimeout+2s after the event's Time, then reports the channel
// incomplete up to the end of the log, until the channel's next copy
// bounds the lost event. So the stores of one log should share
// AckTimeout, and clocks within 2 s. A chain that starts (its channel is
// new, or the kept stream dropped it whole: nothing written to it for
// KeepFor, or pushed out at KeepMaxBytes, which it cannot tell apart)
// starts as one that dropped everything up to a floor: the last log
// position before the first message the log received after the kept
// stream's oldest message's Time plus the grace above (a direct get by
// start time; the log's head on a server without direct gets). So a
// reader from before a drop gets ErrExpired, never the new events alone;
// a reader of a new channel from a cursor older than everything the kept
// stream holds gets ErrExpired too, the price of not telling the two
// apart. Kept reads a chain with an ephemeral consumer.
//
// # Reading
//
// History reads what is there after the cursor up to the last message when
// it started. On nats-server 2.11 and later it asks for batches of messages
// with direct gets (one request per batch, answered by the messages and an
// end of batch; no consumer), the first one right after the stream's info
// request. Where the batch's first sequence is known it asks for the
// messages without headers (no_hdr: nats-server 2.15 honours it, 2.11
// ignores it and sends them) and derives their sequences from the end of batch, which
// must prove them contiguous; otherwise it asks again with headers. On
// older servers, or a stream without direct gets, it creates an ephemeral
// consumer (memory storage, no acks) at the cursor's sequence, fetches in
// batches and deletes the consumer. Follow uses one ephemeral pull
// consumer (memory storage, no acks) per call (a hub calls it once and
// fans out locally).
//
// # Outages
//
// Publishes are asynchronous with acknowledgements (bounded in flight), so
// concurrent Appends pipeline. While the server cannot be reached, Append
// fails with an error (publishes are not buffered for later: nothing is
// acknowledged that is not in the stream; an append whose acknowledgement was
// lost may or may not be in the log). Head fails, so it serves as a
// readiness probe. Follow keeps its caller: when its consumer fails (missed
// heartbeats, a lost server, messages lost in transit) it reads what it
// missed as History does, then creates a consumer again after the last
// sequence it yielded, with capped exponential backoff and jitter, logged
// through slog. File storage keeps acknowledged
// events across a server restart.
//
// # High availability
//
// In a NATS cluster (JetStream on each server) give the stream replicas
// (Config.Replicas, replicas=3 in a DSN) and list several servers in the
// URL. JetStream acknowledges a publish once a majority of the stream's
// replicas stored it, and its followers read only what a majority stored,
// so a stream leader's death loses nothing acknowledged and nothing a
// hub delivered: the remaining replicas elect a new leader (a few
// seconds), the client reconnects to a live server, publishes resume, and
// each Follow resumes after the last event it yielded, without a gap or
// a duplicate. When the dead server also led JetStream's meta group, no
// consumer can be created until the group has a leader again (in the HA
// test, up to 15 s); Follow then reads with direct gets, which the
// stream's replicas answer, between its attempts to create one. During the election appends wait, up to Config.AckTimeout,
// then fail (an append whose acknowledgement was lost may or may not be
// in the stream); the measured stall is in BENCHMARKS.md. With one replica
// the stream is unavailable while its server is down.
//
// A Follow that comes back after an outage checks that the stream is the
// one it read: the same epoch, and the last event it yielded still at its
// sequence (the stream may have gone on past it with other events). A
// stream that lost events (restored from an older copy, a memory stream
// restarted) ends the Follow with [store.ErrUnknownID], never a silent
// renumbering of delivered positions. An id of a lost event held
// elsewhere (a client that had disconnected) cannot be told from the id
// of the event appended at its sequence since: it resumes after that one.
package natsstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/store"
)

// Defaults of [Config].
const (
	// DefaultStream is the stream's name when Config.Stream is empty.
	DefaultStream = "SLUICE"
	// DefaultMaxMsgs is the number of events retained when Config.MaxMsgs
	// is zero.
	DefaultMaxMsgs = 1_000_000
	// DefaultMaxBytes is the stream's byte limit when Config.MaxBytes is
	// zero: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxPending is the most publishes awaiting acknowledgement when
	// Config.MaxPending is zero.
	DefaultMaxPending = 4096
	// DefaultAckTimeout is how long a publish waits for its acknowledgement
	// when Config.AckTimeout is zero.
	DefaultAckTimeout = 5 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound Follow's reconnection
	// backoff when Config leaves them zero.
	DefaultMinBackoff = backoff.DefaultMin
	DefaultMaxBackoff = backoff.DefaultMax
	// DefaultKeepMaxBytes is the kept stream's byte limit when
	// Config.KeepMaxBytes is zero: 1 GiB.
	DefaultKeepMaxBytes = 1 << 30
)

// Config configures a [Store]. The zero value keeps the last million events
// within 1 GiB in the stream "SLUICE" on the subjects "sluice.SLUICE.>",
// with no age limit.
type Config struct {
	// Stream is the JetStream stream's name. Empty means DefaultStream.
	// Open creates the stream, or updates its limits. Stores with the same
	// stream on the same NATS system share one log.
	Stream string
	// Subject is the prefix of the stream's subjects. Empty means
	// "sluice." + Stream. No other stream may hold these subjects.
	Subject string
	// MaxMsgs is the most events retained. Zero means DefaultMaxMsgs;
	// negative means no count limit.
	MaxMsgs int64
	// MaxBytes is the stream's byte limit. Zero means DefaultMaxBytes;
	// negative means none. An event whose store.EventSize exceeds it is
	// refused (store.ErrInvalidEvent).
	MaxBytes int64
	// MaxAge is the longest an event is retained. Zero means no age limit.
	MaxAge time.Duration
	// Replicas is the stream's replica count in a NATS cluster (1 to 5;
	// the server refuses more). Zero means 1. With 3 replicas an append is
	// acknowledged once a majority of them stored it, and the stream keeps
	// every acknowledged event while a majority lives: see the package
	// doc's High availability.
	Replicas int
	// Storage is the stream's storage: jetstream.FileStorage (the zero
	// value) keeps acknowledged events across server restarts;
	// jetstream.MemoryStorage keeps them only in the servers' memory (with
	// Replicas > 1, as long as a majority of the replicas runs). The
	// storage of an existing stream cannot be changed: Open fails.
	Storage jetstream.StorageType
	// CredsFile is a NATS credentials file (a user JWT and its NKey seed),
	// read as nats.UserCredentials does. Empty means none.
	CredsFile string
	// NKeySeedFile is a file holding an NKey seed, to authenticate with
	// that NKey. Empty means none.
	NKeySeedFile string
	// TLSCAFile is a PEM file of the CAs that sign the servers'
	// certificates, instead of the system's. TLSCertFile and TLSKeyFile are
	// a client certificate and its key, for servers that verify clients.
	// Setting any of them requires TLS (as does a tls:// URL).
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// Options are more options of the NATS connection, applied after the
	// store's own (and so winning over them).
	Options []nats.Option
	// KeepPerChannel is how many of the newest events of each channel
	// (store.IsChannel) the store keeps apart from MaxMsgs, MaxBytes and
	// MaxAge, in the kept stream (see the package doc's Keeping channels).
	// Zero means store.DefaultKeepPerChannel; negative keeps nothing, and
	// no kept stream is created.
	KeepPerChannel int
	// KeepFor is how long an event of a channel is kept, from its Time.
	// Zero means store.DefaultKeepFor.
	KeepFor time.Duration
	// KeepMaxBytes is the kept stream's byte limit, the bound of what the
	// store keeps of all channels together (JetStream counts what it
	// stores: per event and channel, a copy of the event's record and an
	// intent of about 100 bytes, with their subjects and headers). At the
	// bound the stream drops its oldest messages, whatever their channel,
	// and Kept reports the channels that lost events incomplete
	// (store.ErrExpired). Zero means DefaultKeepMaxBytes; negative means
	// none.
	KeepMaxBytes int64
	// Now is the clock for Event.Time, for applying MaxAge on reads and for
	// KeepFor. Nil means time.Now.
	Now func() time.Time
	// MaxPending bounds the publishes awaiting acknowledgement. Zero means
	// DefaultMaxPending.
	MaxPending int
	// AckTimeout bounds the wait for a publish's acknowledgement. Zero means
	// DefaultAckTimeout.
	AckTimeout time.Duration
	// MinBackoff and MaxBackoff bound Follow's reconnection backoff. Zero
	// means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives Follow's reconnection logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Store is a [store.Store] on a JetStream stream. It is safe for concurrent
// use; several Stores, in one process or many, on the same stream share one
// log.
type Store struct {
	cfg          Config
	now          func() time.Time
	log          *slog.Logger
	nc           *nats.Conn
	js           jetstream.JetStream
	stream       jetstream.Stream
	subjEvent    string // SUBJECT.e
	subjIDPrefix string // SUBJECT.i.
	directSubj   string // $JS.API.DIRECT.GET.<stream>
	infoSubj     string // $JS.API.STREAM.INFO.<stream>
	ackTimeout   time.Duration
	minBO, maxBO time.Duration
	ctx          context.Context // canceled by Close
	cancel       context.CancelFunc
	closeOnce    sync.Once
	bgMu         sync.Mutex
	closing      bool           // set under bgMu by Close: no new bg work
	bg           sync.WaitGroup // consumer deletions

	// consumerHistory makes History read with a consumer even where the
	// server batches direct gets (tests of the older servers' path).
	consumerHistory bool
	// stallCheck is followStallCheck, shorter in tests.
	stallCheck time.Duration

	epochMu sync.Mutex
	epoch   store.Epoch
	created time.Time

	// Keeping channels (keep.go); keptStream is nil when KeepPerChannel
	// is negative.
	keptStream jetstream.Stream
	keptName   string // the kept stream: Stream + "_KEPT"
	keptPrefix string // its subjects' prefix: Subject + "_kept."
	keepPer    int
	keepFor    time.Duration
	keptGrace  time.Duration // how long an append may take, from its Time to its copies
	keepMu     sync.Mutex
	keptChans  map[string]*keptChan
	// beforeCopies, in tests, runs before an append writes its copies;
	// false skips them, as if the store died there.
	beforeCopies func() bool
	// keptWaiting, in tests, runs when Kept waits for copies.
	keptWaiting func()
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Resolver   = (*Store)(nil)
	_ store.Positioner = (*Store)(nil)
	_ store.Keeper     = (*Store)(nil)
)

// ParseDSN splits a DSN into the NATS URL and the store settings carried in
// its query: stream, subject, max_msgs, max_bytes (integers), max_age (a
// Go duration), replicas (an integer, Config.Replicas), storage ("file" or
// "memory"), keep_per_channel, keep_max_bytes (integers) and keep_for (a
// Go duration) (Config.KeepPerChannel, KeepMaxBytes, KeepFor), creds (a
// credentials file), nkey (an NKey seed file), tls_ca, tls_cert and
// tls_key (PEM files). For example
//
//	nats://user:secret@nats1:4222?stream=EVENTS&max_age=24h
//	tls://nats1:4222?stream=EVENTS&subject=app.events
//	nats://n1:4222,nats://n2:4222,nats://n3:4222?replicas=3&creds=/etc/sluice/nats.creds
//	tls://n1:4222,tls://n2:4222?replicas=3&tls_ca=ca.pem&tls_cert=c.pem&tls_key=c.key
//
// Several servers may be given separated by commas, as nats.Connect
// accepts (the client tries them all, and learns the rest of a cluster
// from the one it reaches); the query goes after the last one.
func ParseDSN(dsn string) (natsURL string, cfg Config, err error) {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", Config{}, fmt.Errorf("natsstore: parse DSN: %w", err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "stream":
			cfg.Stream = v
		case "subject":
			cfg.Subject = v
		case "max_msgs":
			cfg.MaxMsgs, err = strconv.ParseInt(v, 10, 64)
		case "max_bytes":
			cfg.MaxBytes, err = strconv.ParseInt(v, 10, 64)
		case "max_age":
			cfg.MaxAge, err = time.ParseDuration(v)
		case "replicas":
			cfg.Replicas, err = strconv.Atoi(v)
			if err == nil && cfg.Replicas < 1 {
				err = fmt.Errorf("%d: want 1 or more", cfg.Replicas)
			}
		case "storage":
			switch v {
			case "file":
				cfg.Storage = jetstream.FileStorage
			case "memory":
				cfg.Storage = jetstream.MemoryStorage
			default:
				err = fmt.Errorf("%q: want file or memory", v)
			}
		case "keep_per_channel":
			cfg.KeepPerChannel, err = strconv.Atoi(v)
		case "keep_for":
			cfg.KeepFor, err = time.ParseDuration(v)
		case "keep_max_bytes":
			cfg.KeepMaxBytes, err = strconv.ParseInt(v, 10, 64)
		case "creds":
			cfg.CredsFile = v
		case "nkey":
			cfg.NKeySeedFile = v
		case "tls_ca":
			cfg.TLSCAFile = v
		case "tls_cert":
			cfg.TLSCertFile = v
		case "tls_key":
			cfg.TLSKeyFile = v
		default:
			return "", Config{}, fmt.Errorf("natsstore: parse DSN: unknown parameter %q", k)
		}
		if err != nil {
			return "", Config{}, fmt.Errorf("natsstore: parse DSN: %s: %w", k, err)
		}
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return "", Config{}, errors.New("natsstore: parse DSN: tls_cert and tls_key go together")
	}
	return base, cfg, nil
}

// Open connects to NATS at url (nats:// or tls://, with optional user and
// password; the store settings of [ParseDSN] may be in its query and apply
// where cfg leaves a field zero), creates the stream or updates its limits,
// and returns a store on it. It fails if NATS or JetStream cannot be reached.
// The connection reconnects forever; Close closes it.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	u, dcfg, err := ParseDSN(url)
	if err != nil {
		return nil, err
	}
	if cfg.Stream == "" {
		cfg.Stream = dcfg.Stream
	}
	if cfg.Subject == "" {
		cfg.Subject = dcfg.Subject
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = dcfg.MaxMsgs
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = dcfg.MaxBytes
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = dcfg.MaxAge
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = dcfg.Replicas
	}
	if cfg.Storage == jetstream.FileStorage {
		cfg.Storage = dcfg.Storage
	}
	if cfg.KeepPerChannel == 0 {
		cfg.KeepPerChannel = dcfg.KeepPerChannel
	}
	if cfg.KeepFor == 0 {
		cfg.KeepFor = dcfg.KeepFor
	}
	if cfg.KeepMaxBytes == 0 {
		cfg.KeepMaxBytes = dcfg.KeepMaxBytes
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&cfg.CredsFile, dcfg.CredsFile}, {&cfg.NKeySeedFile, dcfg.NKeySeedFile},
		{&cfg.TLSCAFile, dcfg.TLSCAFile}, {&cfg.TLSCertFile, dcfg.TLSCertFile}, {&cfg.TLSKeyFile, dcfg.TLSKeyFile},
	} {
		if *f.dst == "" {
			*f.dst = f.v
		}
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = "sluice." + cfg.Stream
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultMaxMsgs
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("natsstore: open: negative MaxAge %v", cfg.MaxAge)
	}
	if cfg.KeepPerChannel == 0 {
		cfg.KeepPerChannel = store.DefaultKeepPerChannel
	}
	if cfg.KeepFor == 0 {
		cfg.KeepFor = store.DefaultKeepFor
	}
	if cfg.KeepFor < 0 {
		return nil, fmt.Errorf("natsstore: open: negative KeepFor %v", cfg.KeepFor)
	}
	if cfg.KeepMaxBytes == 0 {
		cfg.KeepMaxBytes = DefaultKeepMaxBytes
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	s := &Store{
		cfg:          cfg,
		now:          cfg.Now,
		log:          cfg.Logger,
		subjEvent:    cfg.Subject + ".e",
		subjIDPrefix: cfg.Subject + ".i.",
		directSubj:   "$JS.API.DIRECT.GET." + cfg.Stream,
		infoSubj:     "$JS.API.STREAM.INFO." + cfg.Stream,
		ackTimeout:   cfg.AckTimeout,
		minBO:        cfg.MinBackoff,
		maxBO:        cfg.MaxBackoff,
		stallCheck:   followStallCheck,
		keptName:     cfg.Stream + "_KEPT",
		keptPrefix:   cfg.Subject + "_kept.",
		keepPer:      cfg.KeepPerChannel,
		keepFor:      cfg.KeepFor,
		keptGrace:    4*cfg.AckTimeout + keptSkew,
		keptChans:    map[string]*keptChan{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name("sluice"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Publishes fail while disconnected instead of waiting in a buffer:
		// Append reports the outage, and an acknowledged event is one the
		// server stored.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("natsstore: disconnected from NATS; reconnecting", "stream", cfg.Stream, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("natsstore: reconnected to NATS", "stream", cfg.Stream, "server", nc.ConnectedUrlRedacted())
		}),
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(dl), time.Millisecond)))
	}
	auth, err := authOptions(&cfg)
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, auth...), cfg.Options...)
	s.nc, err = nats.Connect(u, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsstore: open: connect: %w", err)
	}
	s.js, err = jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		s.nc.Close()
		return nil, fmt.Errorf("natsstore: open: %w", err)
	}
	maxMsgs, maxBytes := cfg.MaxMsgs, cfg.MaxBytes
	if maxMsgs < 0 {
		maxMsgs = -1
	}
	if maxBytes < 0 {
		maxBytes = -1
	}
	s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Subjects:    []string{cfg.Subject + ".>"},
		Storage:     cfg.Storage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     maxMsgs,
		MaxBytes:    maxBytes,
		MaxAge:      cfg.MaxAge,
		Replicas:    cfg.Replicas,
		AllowDirect: true,
	})
	if err != nil {
		s.nc.Close()
		return nil, fmt.Errorf("natsstore: open: stream %s: %w", cfg.Stream, err)
	}
	if cfg.KeepPerChannel >= 0 {
		if s.keptStream, err = s.openKept(ctx, &cfg); err != nil {
			s.nc.Close()
			return nil, fmt.Errorf("natsstore: open: kept stream %s: %w", s.keptName, err)
		}
	}
	info := s.stream.CachedInfo()
	s.setEpoch(info.Created)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// authOptions returns the connection options of cfg's credentials and TLS
// files.
func authOptions(cfg *Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("natsstore: open: nkey seed: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}

// setEpoch records the stream's creation time and returns its epoch.
func (s *Store) setEpoch(created time.Time) store.Epoch {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	if !created.Equal(s.created) || s.epoch == "" {
		if s.epoch != "" {
			s.log.Warn("natsstore: the stream was deleted and created again; its old ids are unknown", "stream", s.cfg.Stream)
		}
		s.created, s.epoch = created, epochOf(s.cfg.Stream, created)
	}
	return s.epoch
}

func (s *Store) currentEpoch() store.Epoch {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return s.epoch
}

func (s *Store) closed() bool { return s.ctx.Err() != nil }

// Append publishes e and returns once JetStream has acknowledged it. See
// [store.Store.Append]. If ctx ends first, Append returns ctx's error and
// the event may or may not be in the log.
func (s *Store) Append(ctx context.Context, e store.Event) (store.Event, error) {
	if err := ctx.Err(); err != nil {
		return store.Event{}, fmt.Errorf("natsstore: append: %w", err)
	}
	if s.closed() {
		return store.Event{}, fmt.Errorf("natsstore: append: %w", store.ErrClosed)
	}
	if err := store.ValidateEvent(&e); err != nil {
		return store.Event{}, fmt.Errorf("natsstore: append: %w", err)
	}
	var err error
	custom := e.ID != ""
	ep := s.currentEpoch()
	if custom {
		if _, ok := ep.Pos(e.ID); ok {
			return store.Event{}, fmt.Errorf("natsstore: append: %w: custom id %q has the form of the ids this log generates", store.ErrInvalidEvent, e.ID)
		}
	}
	size := store.EventSize(&e)
	if s.cfg.MaxBytes > 0 && int64(size) > s.cfg.MaxBytes {
		return store.Event{}, fmt.Errorf("natsstore: append: %w: event of %d bytes exceeds the store's MaxBytes %d", store.ErrInvalidEvent, size, s.cfg.MaxBytes)
	}
	if len(e.Topics) == 0 {
		e.Topics = nil
	} else {
		e.Topics = append([]string(nil), e.Topics...)
	}
	e.Time = s.now()
	payload := encode(make([]byte, 0, 32+size), &e, custom, e.Time)
	var kept []*keptChan
	var intents []uint64
	if chs := s.keptChannels(e.Topics); chs != nil {
		if n := len(payload) + keptOverhead; int64(n) > s.nc.MaxPayload() {
			return store.Event{}, fmt.Errorf("natsstore: append: %w: an event of a channel whose kept copy (%d bytes) exceeds the server's max payload %d", store.ErrInvalidEvent, n, s.nc.MaxPayload())
		}
		// Before the log has the event, its channels' chains say it
		// may: a store that dies before its copies are written cannot
		// leave a channel silently incomplete.
		kept = s.acquireKept(chs)
		defer s.releaseKept(kept)
		if intents, err = s.keepIntents(ctx, kept, ep, e.Time); err != nil {
			if s.closed() {
				err = store.ErrClosed
			}
			return store.Event{}, fmt.Errorf("natsstore: append: %w", err)
		}
	}
	subj := s.subjEvent
	if custom {
		subj = s.subjIDPrefix + idToken(e.ID)
	}
	var f jetstream.PubAckFuture
	for deadline := time.Now().Add(s.ackTimeout); ; {
		f, err = s.js.PublishAsync(subj, payload)
		// With MaxPending publishes in flight PublishAsync waits a moment
		// for room, then gives up: wait on, within AckTimeout.
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || time.Now().After(deadline) || ctx.Err() != nil || s.closed() {
			break
		}
	}
	if err != nil {
		// Not sent: the event is surely not in the log.
		s.keepAbort(kept, ep, e.Time, intents)
		return store.Event{}, s.appendErr(err)
	}
	var ack *jetstream.PubAck
	select {
	case ack = <-f.Ok():
	case err := <-f.Err():
		return store.Event{}, s.appendErr(err)
	case <-ctx.Done():
		return store.Event{}, fmt.Errorf("natsstore: append: %w (the event may have been appended)", ctx.Err())
	case <-s.ctx.Done():
		return store.Event{}, fmt.Errorf("natsstore: append: %w", store.ErrClosed)
	}
	if ack.Stream != s.cfg.Stream {
		return store.Event{}, fmt.Errorf("natsstore: append: subject %s is stored by stream %s, not %s", subj, ack.Stream, s.cfg.Stream)
	}
	e.Pos = ack.Sequence
	if !custom {
		e.ID = ep.ID(e.Pos)
	}
	if kept != nil {
		s.keepCopies(kept, ep, &e, payload, intents)
	}
	return e, nil
}

func (s *Store) appendErr(err error) error {
	switch {
	case s.closed():
		err = store.ErrClosed
	case errors.Is(err, nats.ErrMaxPayload):
		err = fmt.Errorf("%w: %w", store.ErrInvalidEvent, err)
	case !s.nc.IsConnected():
		err = fmt.Errorf("NATS is unreachable (connection %s): %w", s.nc.Status(), err)
	}
	return fmt.Errorf("natsstore: append: %w", err)
}

// state is the stream's extent as Info reports it.
type state struct {
	epoch       store.Epoch
	first, last uint64 // first > last when empty
}

func (s *Store) info(ctx context.Context) (state, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return state{}, err
	}
	st := state{epoch: s.setEpoch(info.Created), first: info.State.FirstSeq, last: info.State.LastSeq}
	if info.State.Msgs == 0 || st.first == 0 {
		st.first = st.last + 1
	}
	return st, nil
}

// Head returns the generated id of the last message in the stream, or "" if
// it has none. It fails while NATS cannot be reached. See
// [store.Store.Head].
func (s *Store) Head(ctx context.Context) (string, error) {
	if s.closed() {
		return "", fmt.Errorf("natsstore: head: %w", store.ErrClosed)
	}
	st, err := s.info(ctx)
	if err != nil {
		if s.closed() {
			err = store.ErrClosed
		}
		return "", fmt.Errorf("natsstore: head: %w", err)
	}
	if st.last == 0 {
		return "", nil
	}
	return st.epoch.ID(st.last), nil
}

// Close ends every Follow with store.ErrClosed, fails Appends in progress
// and closes the connection. Closing a closed store does nothing. It does not
// delete the stream.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.bgMu.Lock()
		s.closing = true
		s.bgMu.Unlock()
		s.bg.Wait()
		s.nc.Close()
	})
	return nil
}

// Delete deletes the stream and every event in it, and the kept stream. Stores using it fail
// until it is created again (by Open). It is meant for tests and tools.
func (s *Store) Delete(ctx context.Context) error {
	if err := s.js.DeleteStream(ctx, s.cfg.Stream); err != nil {
		return fmt.Errorf("natsstore: delete: %w", err)
	}
	if s.keptStream != nil {
		if err := s.js.DeleteStream(ctx, s.keptName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("natsstore: delete: %w", err)
		}
	}
	return nil
}
