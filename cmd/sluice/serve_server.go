package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/internal/prommetrics"
	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/relay"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/boltstore"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/redisstore"
)

// webFiles is the demo page.
//
//go:embed web
var webFiles embed.FS

// healthTimeout bounds the store check of /healthz.
const healthTimeout = 2 * time.Second

// defaultPublishFailureWindow is how long a failed store append keeps
// /healthz at 503 (--publish-failure-window) unless an append succeeds.
const defaultPublishFailureWindow = 30 * time.Second

// hubServer is a running hub: store, Mercure hub, HTTP server and listener.
type hubServer struct {
	cfg      *serveConfig
	log      *slog.Logger
	store    store.Store
	engine   *hub.Hub       // the sluice engine: store, queues, streams
	hub      *mercure.Hub   // the Mercure protocol on it
	relayer  *relay.Relayer // --relay, or nil
	metrics  *prommetrics.Metrics
	http     *http.Server
	ln       net.Listener
	pprof    *http.Server // --pprof, or nil
	pprofLn  net.Listener
	index    []byte // the rendered demo page: in development mode, with the tokens
	draining atomic.Bool

	// publicIndex is the demo page without the development tokens, for
	// requests whose Host is not a loopback name (development mode only).
	publicIndex []byte
	now         func() time.Time // the clock of /healthz's publish failure window
}

// storeOpenTimeout bounds connecting to a networked store at start.
const storeOpenTimeout = 10 * time.Second

// openStore opens the store the configuration names.
func openStore(cfg *serveConfig, log *slog.Logger) (store.Store, error) {
	switch cfg.storeKind {
	case "memory":
		return store.NewMemory(store.MemoryConfig{MaxEvents: cfg.historySize, KeepPerChannel: cfg.keepPerChannel, KeepFor: cfg.keepFor, KeepMaxBytes: cfg.keepMaxBytes}), nil
	case "bolt":
		st, err := boltstore.Open(cfg.storePath, boltstore.Config{MaxEvents: cfg.historySize, KeepPerChannel: cfg.keepPerChannel, KeepFor: cfg.keepFor, KeepMaxBytes: cfg.keepMaxBytes})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	case "redis":
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		st, err := redisstore.Open(ctx, cfg.storeDSN, redisStoreConfig(cfg, log))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	case "nats":
		ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
		defer cancel()
		st, err := natsstore.Open(ctx, cfg.storeDSN, natsStoreConfig(cfg, log))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("open store: unsupported store DSN %q", cfg.storeDSN)
}

// redisStoreConfig is the redisstore configuration of cfg: --history-size
// sets the log's length limit when the DSN has no max_len (the DSN's
// settings apply where the Config leaves a field zero).
func redisStoreConfig(cfg *serveConfig, log *slog.Logger) redisstore.Config {
	c := redisstore.Config{Logger: log, KeepPerChannel: cfg.keepPerChannel, KeepFor: cfg.keepFor}
	if _, dsn, err := redisstore.ParseDSN(cfg.storeDSN); err == nil && dsn.MaxLen == 0 {
		c.MaxLen = int64(cfg.historySize)
	}
	return c
}

// natsStoreConfig is the natsstore configuration of cfg: --history-size
// sets the stream's message limit when the DSN has no max_msgs (the DSN's
// settings apply where the Config leaves a field zero).
func natsStoreConfig(cfg *serveConfig, log *slog.Logger) natsstore.Config {
	c := natsstore.Config{Logger: log, KeepPerChannel: cfg.keepPerChannel, KeepFor: cfg.keepFor, KeepMaxBytes: cfg.keepMaxBytes}
	if _, dsn, err := natsstore.ParseDSN(cfg.storeDSN); err == nil && dsn.MaxMsgs == 0 {
		c.MaxMsgs = int64(cfg.historySize)
	}
	return c
}

// newServer opens the store, builds the hub and listens on cfg.addr. Serve
// with run.
func newServer(cfg *serveConfig, log *slog.Logger) (*hubServer, error) {
	st, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	return newServerOn(cfg, log, st)
}

// newServerOn is newServer on an open store, which the server closes.
func newServerOn(cfg *serveConfig, log *slog.Logger, st store.Store) (*hubServer, error) {
	var err error
	s := &hubServer{cfg: cfg, log: log, store: st, metrics: prommetrics.New(), now: time.Now}
	fail := func(err error) (*hubServer, error) {
		if s.pprofLn != nil {
			_ = s.pprofLn.Close()
		}
		if s.engine != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.engine.Shutdown(ctx)
			cancel()
		}
		_ = st.Close()
		return nil, err
	}
	if err = cfg.jwksKeys(log); err != nil {
		return fail(fmt.Errorf("hub: %w", err))
	}
	if s.engine, err = hub.New(cfg.engineConfig(st, s.metrics, log)); err != nil {
		return fail(fmt.Errorf("hub: %w", err))
	}
	if s.hub, err = mercure.New(cfg.mercureConfig(s.engine, log)); err != nil {
		return fail(fmt.Errorf("hub: %w", err))
	}
	if len(cfg.relays) > 0 {
		if s.relayer, err = relay.New(s.engine, &cfg.relayOpts); err != nil {
			return fail(fmt.Errorf("hub: %w", err))
		}
	}
	if cfg.demo {
		if s.index, err = renderIndex(cfg, false); err != nil {
			return fail(err)
		}
		if cfg.dev != nil {
			if s.publicIndex, err = renderIndex(cfg, true); err != nil {
				return fail(err)
			}
		}
	}
	s.http = &http.Server{
		Handler: s.observe(s.routes()),
		// --read-timeout bounds the headers here and the body in the
		// Mercure hub (from the start of the request).
		ReadHeaderTimeout: cfg.readTimeout,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         cfg.tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// No WriteTimeout: event streams are long-lived; the hub bounds
		// each write itself (--dispatch-timeout).
	}
	if cfg.pprofAddr != "" {
		if s.pprofLn, err = net.Listen("tcp", cfg.pprofAddr); err != nil {
			return fail(fmt.Errorf("--pprof: listen: %w", err))
		}
		s.pprof = &http.Server{Handler: pprofRoutes(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	if s.ln, err = net.Listen("tcp", cfg.addr); err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	return s, nil
}

// pprofRoutes serves Go's profiler (--pprof) on its own mux, so that
// nothing of it reaches the hub's address.
func pprofRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// engineConfig is the configuration of the hub engine of cfg, on st: what
// is the engine's (queues, heartbeats, timeouts, lifetime), with the limits
// that Mercure's own leave to it.
func (cfg *serveConfig) engineConfig(st store.Store, metrics *prommetrics.Metrics, log *slog.Logger) hub.Config {
	heartbeat := cfg.heartbeat
	if heartbeat == 0 {
		heartbeat = -1 // off
	}
	return hub.Config{
		Store:        st,
		Metrics:      metrics,
		Logger:       log,
		QueueEvents:  cfg.queueEvents,
		Heartbeat:    heartbeat,
		WriteTimeout: cfg.dispatchTimeout,
		MaxLifetime:  cfg.maxLifetime, // 0: none
		// One update's topics, and one subscription's exact topics.
		MaxTopics:    max(cfg.limits.maxPublishTopics, cfg.limits.maxTopics+cfg.limits.maxSelectors),
		MaxEventSize: cfg.limits.maxBodySize,
	}
}

// mercureConfig is the Mercure hub configuration of cfg, on engine.
func (cfg *serveConfig) mercureConfig(engine *hub.Hub, log *slog.Logger) mercure.Config {
	return mercure.Config{
		Hub:            engine,
		PublisherKey:   cfg.pubKey,
		SubscriberKey:  cfg.subKey,
		Issuers:        cfg.issuers,
		Resource:       cfg.audience,
		Anonymous:      cfg.anonymous,
		Subscriptions:  cfg.subscriptions,
		CORSOrigins:    cfg.corsOrigins,
		PublishOrigins: cfg.publishOrigins,
		ReadTimeout:    cfg.readTimeout,
		Logger:         log,

		ClassicSkipIssuerAudience: cfg.classicLax,

		MaxBodySize:            int64(cfg.limits.maxBodySize),
		MaxPublishTopics:       cfg.limits.maxPublishTopics,
		MaxMatchers:            cfg.limits.maxSelectors,
		MaxTopicParams:         cfg.limits.maxTopics,
		MaxSelectorLen:         cfg.limits.maxSelectorLen,
		MaxSelectorCost:        cfg.limits.maxSelectorCost,
		MaxPatternBytes:        cfg.limits.maxPatternBytes,
		MaxActiveSubscriptions: cfg.limits.maxActive,
		MaxTokenSize:           cfg.limits.maxTokenSize,
		SelectorCacheSize:      cfg.limits.selectorCacheSize,
	}
}

// routes returns the server's handler.
func (s *hubServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(mercure.HubPath, s.hub)
	mux.Handle(mercure.HubPath+"/", s.hub)
	mux.Handle("/.well-known/oauth-protected-resource/", s.hub)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /livez", s.livez)
	s.relayRoutes(mux)
	if s.cfg.demo {
		sub, _ := fs.Sub(webFiles, "web")
		files := http.FileServerFS(sub)
		mux.HandleFunc("GET /{$}", s.serveIndex)
		mux.Handle("GET /app.js", files)
		mux.Handle("GET /style.css", files)
	}
	return mux
}

// baseURL is the URL the server answers on, for the logs.
func (s *hubServer) baseURL() string {
	scheme := "http"
	if s.cfg.tlsConfig != nil {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if h, _, err := net.SplitHostPort(s.cfg.addr); err == nil && h == "localhost" {
		host = h
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// run serves until ctx is done, then drains: the hub ends every stream
// with a "retry:" (clients reconnect, elsewhere or after the restart), the
// HTTP server finishes its requests, and the store is closed. It returns
// an error when serving failed or the drain did not finish in time.
func (s *hubServer) run(ctx context.Context) error {
	url := s.baseURL()
	s.logStart(url)
	s.runJWKS(ctx)
	served := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.tlsConfig != nil {
			err = s.http.ServeTLS(s.ln, "", "")
		} else {
			err = s.http.Serve(s.ln)
		}
		served <- err
	}()
	if s.pprof != nil {
		s.log.Info("profiler listening", "url", "http://"+s.pprofLn.Addr().String()+"/debug/pprof/")
		go func() { _ = s.pprof.Serve(s.pprofLn) }()
		defer s.pprof.Close()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("draining", "timeout", s.cfg.shutdownTimeout)
	case serveErr = <-served:
		s.log.Error("serving failed", "err", serveErr)
	}
	s.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	var errs []error
	if serveErr != nil {
		errs = append(errs, fmt.Errorf("serve: %w", serveErr))
	}
	start := time.Now()
	subscribers := s.engine.Subscribers()
	if s.relayer != nil {
		// Relays end with relay-error "shutdown": their readers learn it
		// now rather than when the lease lapses.
		if err := s.relayer.Close(dctx); err != nil {
			errs = append(errs, fmt.Errorf("relay shutdown: %w", err))
		}
	}
	if err := s.engine.Shutdown(dctx); err != nil {
		errs = append(errs, fmt.Errorf("hub shutdown: %w", err))
	}
	if err := s.http.Shutdown(dctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		_ = s.http.Close()
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	s.log.Info("stopped", "subscribers_drained", subscribers, "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// logStart logs where the hub listens and, in development mode, the
// generated tokens.
func (s *hubServer) logStart(url string) {
	s.log.Info("sluice hub listening", "url", url, "hub", url+mercure.HubPath,
		"addr", s.ln.Addr().String(), "store", s.cfg.storeDSN, "anonymous", s.cfg.anonymous)
	for _, w := range s.cfg.warnings {
		s.log.Warn(w)
	}
	if d := s.cfg.dev; d != nil {
		switch {
		case d.keyFile == "":
			s.log.Warn("DEVELOPMENT MODE: no JWT key configured, so a random HS256 key was generated for this run " +
				"(the store keeps no file to keep it beside) and anonymous subscribers are allowed; " +
				"set --jwt-key (SLUICE_JWT_KEY) for anything else")
		default:
			verb := "kept"
			if d.keyCreated {
				verb = "generated"
			}
			s.log.Warn("DEVELOPMENT MODE: no JWT key configured, so the hub signs with the development key "+verb+" in "+d.keyFile+
				" (its tokens stay valid across restarts, and \"sluice token\" run with the same --store signs with it) "+
				"and anonymous subscribers are allowed; set --jwt-key (SLUICE_JWT_KEY) for anything else", "key_file", d.keyFile)
		}
		s.log.Warn("development publisher token (publish and subscribe to every topic)", "token", d.publisherToken)
		s.log.Warn("development subscriber token (every topic, private updates too)", "token", d.subscriberToken)
		s.log.Info("try it", "demo", url+"/",
			"publish", fmt.Sprintf("curl -d topic=demo -d data=hello -H 'Authorization: Bearer %s' %s%s", d.publisherToken, url, mercure.HubPath),
			"subscribe", fmt.Sprintf("curl -N '%s%s?topic=demo'", url, mercure.HubPath))
	}
}

// health is the JSON body of /healthz and /livez.
type health struct {
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	Subscribers int    `json:"subscribers"`
}

func writeHealth(w http.ResponseWriter, code int, h health) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// healthz answers readiness: 200 when the store answers Head in time, the
// last store append did not fail within --publish-failure-window (a
// successful append clears a failure at once), every JWKS (--jwt-jwks-url
// and the per-role ones) has loaded a usable key set (a failed refresh
// keeps the last one, and readiness) and the hub is not draining; 503 with
// the reason otherwise. The window lets a hub that a
// load balancer took out of rotation, and so gets no publish to prove the
// store writable again, come back to 200 and be tried again. With ?live=1
// it answers liveness only, like livez.
func (s *hubServer) healthz(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("live") {
		s.livez(w, r)
		return
	}
	h := health{Status: "ok", Subscribers: s.engine.Subscribers()}
	if s.draining.Load() {
		h.Status, h.Reason = "unavailable", "draining"
		writeHealth(w, http.StatusServiceUnavailable, h)
		return
	}
	if err := s.jwksReady(); err != nil {
		h.Status, h.Reason = "unavailable", err.Error()
		s.log.Warn("health check failed", "reason", h.Reason)
		writeHealth(w, http.StatusServiceUnavailable, h)
		return
	}
	if st := s.engine.Stats(); st.LastPublishError != "" && s.cfg.publishFailWin > 0 {
		if ago := s.now().Sub(st.LastPublishErrorAt); ago < s.cfg.publishFailWin {
			h.Status, h.Reason = "unavailable", fmt.Sprintf("publish failed %s ago: %s", ago.Round(time.Millisecond), st.LastPublishError)
			s.log.Warn("health check failed", "reason", h.Reason)
			writeHealth(w, http.StatusServiceUnavailable, h)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if _, err := s.store.Head(ctx); err != nil {
		h.Status, h.Reason = "unavailable", "store: "+err.Error()
		s.log.Warn("health check failed", "reason", h.Reason)
		writeHealth(w, http.StatusServiceUnavailable, h)
		return
	}
	writeHealth(w, http.StatusOK, h)
}

// livez answers liveness: the process serves HTTP.
func (s *hubServer) livez(w http.ResponseWriter, _ *http.Request) {
	writeHealth(w, http.StatusOK, health{Status: "ok", Subscribers: s.engine.Subscribers()})
}

// indexData is what the demo page template receives.
type indexData struct {
	HubPath         string
	PublisherToken  string
	SubscriberToken string
	// TokensWithheld: development mode, but the page was asked for under a
	// name that is not a loopback one.
	TokensWithheld bool
	// Relay is the relay the page's "LLM answer" tab asks (demoRelay), or
	// "" when the hub has none of that name: the tab is not shown.
	Relay string
	// RelayToken grants Relay (development mode only).
	RelayToken string
}

// renderIndex renders the demo page once: in development mode with the
// generated tokens unless withhold.
func renderIndex(cfg *serveConfig, withhold bool) ([]byte, error) {
	t, err := template.ParseFS(webFiles, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("demo page: %w", err)
	}
	dev := cfg.dev
	d := indexData{HubPath: mercure.HubPath, TokensWithheld: dev != nil && withhold}
	if cfg.relays[demoRelay] != nil {
		d.Relay = demoRelay
	}
	if dev != nil && !withhold {
		d.PublisherToken, d.SubscriberToken, d.RelayToken = dev.publisherToken, dev.subscriberToken, dev.relayToken
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("demo page: %w", err)
	}
	return b.Bytes(), nil
}

// serveIndex serves the demo page. In development mode the page carries
// the publish-everything token, so it is served with the tokens only when
// the request's Host is a loopback name: the hub listens on loopback, but a
// site whose name its owner re-points to 127.0.0.1 (DNS rebinding) reaches
// it from the victim's browser under its own name, as same-origin, and
// would read the token. Other Hosts get the page without tokens and a note
// saying why.
func (s *hubServer) serveIndex(w http.ResponseWriter, r *http.Request) {
	page := s.index
	if s.publicIndex != nil && !loopbackHost(r.Host) {
		page = s.publicIndex
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Vary", "Host")
	_, _ = w.Write(page)
}

// loopbackHost reports whether host (a Host header, with or without port)
// names the loopback interface: localhost or a name under .localhost
// (RFC 6761; browsers resolve them to loopback themselves), an address in
// 127.0.0.0/8, or [::1].
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback() && ip.Zone() == ""
}
