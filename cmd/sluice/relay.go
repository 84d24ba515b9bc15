package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/relay"
	sstream "github.com/sluicehq/sluice/stream" // "stream" is a test helper's name here
)

// Resumable upstream streams (--relay): POST /relay/NAME/PATH, with a token
// granting NAME, relays the request to NAME's upstream and serves the
// answer as a stream (its id in Sluice-Relay-Id); GET /relay/streams/ID
// resumes it.

// demoRelay is the relay the demo page's "LLM answer" tab asks: the tab
// is shown when the hub has a --relay of this name, and in development
// mode the page carries a token granting it (devRelayToken).
const demoRelay = "demo"

// devRelayToken is a classic subscriber token granting the relays names,
// signed with the development key (an HMAC secret). It does not expire,
// as the other development tokens do not.
func devRelayToken(key []byte, alg string, names ...string) (string, error) {
	return mercure.NewClassicToken(key, alg, mercure.ClassicToken{Relay: names})
}

// relayIDHeader carries the id of the stream a relay answers with.
const relayIDHeader = "Sluice-Relay-Id"

// defaultRelayMaxBody bounds the body of a relay request (--relay-max-body).
const defaultRelayMaxBody = 1 << 20

// relayForwarded are the client's headers a relay passes on to the
// upstream: nothing that authenticates the client to the hub (its token,
// its cookies) or that the upstream could use to tell clients apart.
var relayForwarded = []string{"Content-Type", "Accept"}

// relayName is the form of a relay's name.
var relayName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// relayUpstream is one --relay: its URL and the headers --relay-header adds.
type relayUpstream struct {
	url     *url.URL
	headers http.Header
}

// repeatFlag is a repeatable flag whose values are checked at validation
// (as every flag's are: an error is one line, without the usage).
type repeatFlag []string

func (f *repeatFlag) String() string { return "" } // --relay-header values hold keys: never shown

func (f *repeatFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// parseRelay reads one --relay NAME=URL.
func (c *serveConfig) parseRelay(v string) error {
	name, raw, ok := strings.Cut(v, "=")
	if !ok || !relayName.MatchString(name) {
		return fmt.Errorf("--relay: want NAME=URL with a NAME of letters, digits, - and _ (at most 64), got %q", v)
	}
	if name == "streams" {
		return errors.New(`--relay: "streams" is not a relay's name: GET /relay/streams/ID resumes relays`)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("--relay %s: want an absolute http(s) URL without user info or fragment, got %q", name, raw)
	}
	if c.relays == nil {
		c.relays = map[string]*relayUpstream{}
	}
	if _, dup := c.relays[name]; dup {
		return fmt.Errorf("--relay %s: given twice", name)
	}
	c.relays[name] = &relayUpstream{url: u, headers: http.Header{}}
	return nil
}

// parseRelayHeader reads one --relay-header NAME=Header:Value, once every
// --relay is known. Its errors never quote the value, which holds a key.
func (c *serveConfig) parseRelayHeader(v string) error {
	name, hv, ok := strings.Cut(v, "=")
	k, val, ok2 := strings.Cut(hv, ":")
	k, val = strings.TrimSpace(k), strings.TrimSpace(val)
	if !ok || !ok2 || !validHeaderName(k) || strings.ContainsAny(val, "\r\n\x00") {
		return errors.New("--relay-header: want NAME=Header:Value")
	}
	up := c.relays[name]
	if up == nil {
		return fmt.Errorf("--relay-header: no --relay %q", clipFlag(name))
	}
	up.headers.Add(k, val)
	return nil
}

// clipFlag shortens a flag's value quoted in an error.
func clipFlag(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// validHeaderName reports whether k is an HTTP token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validateRelays reads --relay and --relay-header and checks the relay
// limits.
func (c *serveConfig) validateRelays() error {
	for _, v := range c.relaySpecs {
		if err := c.parseRelay(v); err != nil {
			return err
		}
	}
	for _, v := range c.relayHeaderSpecs {
		if err := c.parseRelayHeader(v); err != nil {
			return err
		}
	}
	if c.relayMaxBody <= 0 {
		return fmt.Errorf("--relay-max-body: must be positive, got %d", c.relayMaxBody)
	}
	o := &c.relayOpts
	for name, d := range map[string]time.Duration{"--relay-max-duration": o.MaxDuration, "--relay-read-timeout": o.ReadTimeout,
		"--relay-lease-interval": o.LeaseInterval, "--relay-lease-ttl": o.LeaseTTL} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative, got %v", name, d)
		}
	}
	interval, ttl := cmp.Or(o.LeaseInterval, relay.DefaultLeaseInterval), cmp.Or(o.LeaseTTL, relay.DefaultLeaseTTL)
	if ttl < 2*interval {
		return fmt.Errorf("--relay-lease-ttl %v: must be at least twice --relay-lease-interval (%v), or live relays would be declared lost", ttl, interval)
	}
	if c.relayOpts.MaxInFlight < 0 {
		return fmt.Errorf("--relay-max-inflight: must not be negative, got %d", c.relayOpts.MaxInFlight)
	}
	return nil
}

// relayRoutes adds the relay endpoints to mux, when there are relays.
func (s *hubServer) relayRoutes(mux *http.ServeMux) {
	if s.relayer == nil {
		return
	}
	mux.HandleFunc("POST /relay/{name}", s.relayStart)
	mux.HandleFunc("POST /relay/{name}/{path...}", s.relayStart)
	mux.HandleFunc("GET /relay/streams/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.relayCORS(w, r)
		s.relayer.Serve(w, r, r.PathValue("id"))
	})
	// The user pressed "stop": any token that may start relays may stop
	// one whose id it knows, wherever it runs (relay.Relayer.Cancel).
	mux.HandleFunc("POST /relay/streams/{id}/cancel", s.relayCancel)
	// Preflights of browsers on another origin (--cors-origins).
	mux.HandleFunc("OPTIONS /relay/", func(w http.ResponseWriter, r *http.Request) { s.relayCORS(w, r) })
}

// relayCORS applies the hub's CORS rules (--cors-origins) to a relay
// request, answering a preflight, and exposes the relay's id header.
func (s *hubServer) relayCORS(w http.ResponseWriter, r *http.Request) (answered bool) {
	if s.hub.CORS(w, r) {
		return true
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		w.Header().Set("Access-Control-Expose-Headers", w.Header().Get("Access-Control-Expose-Headers")+", "+relayIDHeader)
	}
	return false
}

// relayCancel cancels the relay of a stream, for a token that grants
// relays: 204, or 404 for an id that is no stream.
func (s *hubServer) relayCancel(w http.ResponseWriter, r *http.Request) {
	s.relayCORS(w, r)
	if _, ok := s.hub.RelayGrants(w, r); !ok {
		return
	}
	switch err := s.relayer.Cancel(r.Context(), r.PathValue("id")); {
	case errors.Is(err, sstream.ErrUnknown):
		http.Error(w, "unknown stream", http.StatusNotFound)
	case err != nil:
		s.log.Error("relay: cancel failed", "err", err)
		http.Error(w, "cancel failed", http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// relayStart relays a request to its upstream, for a client whose token
// grants the relay, and serves the answer.
func (s *hubServer) relayStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.relayCORS(w, r)
	if !s.hub.AuthorizeRelay(w, r, name) { // first: relay names are not for everyone to probe
		return
	}
	up := s.cfg.relays[name]
	if up == nil {
		http.Error(w, "no such relay", http.StatusNotFound)
		return
	}
	path := r.PathValue("path")
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			http.Error(w, "a relay path has no . or .. segment", http.StatusBadRequest)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.relayMaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("the body is larger than %d bytes", s.cfg.relayMaxBody), http.StatusRequestEntityTooLarge)
		}
		return
	}
	target := *up.url
	if path != "" {
		target.Path = strings.TrimSuffix(target.Path, "/") + "/" + path
		target.RawPath = ""
	}
	ctx := context.WithoutCancel(r.Context()) // the relay outlives this request
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "bad relay request", http.StatusBadRequest)
		return
	}
	for _, k := range relayForwarded {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	for k, v := range up.headers {
		req.Header[k] = v
	}
	rel, err := s.relayer.Start(ctx, req)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the hub cannot start a relay now", http.StatusServiceUnavailable)
		if !errors.Is(err, relay.ErrTooManyRelays) && !errors.Is(err, relay.ErrClosed) {
			s.log.WarnContext(r.Context(), "relay: start failed", "relay", name, "err", err)
		}
		return
	}
	w.Header().Set(relayIDHeader, rel.ID())
	s.relayer.Serve(w, r, rel.ID())
}
