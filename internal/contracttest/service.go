package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/sse"
)

// capabilities lists the optional features of the SSE contract tests that
// sluice's client supports.
var capabilities = []string{
	"comments",
	"headers",
	"last-event-id",
	"post",
	"report",
	"read-timeout",
	"restart",
	"bom",
	"event-type-listeners",
	"server-directed-shutdown-request",
}

// createParams is the body of POST /: the client a test wants.
type createParams struct {
	StreamURL      string            `json:"streamUrl"`
	CallbackURL    string            `json:"callbackUrl"`
	Tag            string            `json:"tag"`
	InitialDelayMs *int64            `json:"initialDelayMs"`
	ReadTimeoutMs  *int64            `json:"readTimeoutMs"`
	LastEventID    string            `json:"lastEventId"`
	Headers        map[string]string `json:"headers"`
	Method         string            `json:"method"`
	Body           *string           `json:"body"`
}

// commandParams is the body of POST /streams/{id}.
type commandParams struct {
	Command string `json:"command"`
	Listen  *struct {
		Type string `json:"type"`
	} `json:"listen"`
}

// message is one callback: what the client produced.
type message struct {
	Kind    string        `json:"kind"`
	Event   *eventMessage `json:"event,omitempty"`
	Comment string        `json:"comment,omitempty"`
	Error   string        `json:"error,omitempty"`
}

type eventMessage struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// service is the test service: an http.Handler that runs sluice clients for
// a conformance harness and reports what they receive to its callbacks.
type service struct {
	// httpClient makes the clients' stream requests and the callbacks.
	httpClient *http.Client
	// exit is called once DELETE / has been answered.
	exit func()

	mu      sync.Mutex
	nextID  int
	streams map[string]*entity
	closed  bool
}

func newService(httpClient *http.Client, exit func()) *service {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &service{httpClient: httpClient, exit: exit, streams: make(map[string]*entity)}
}

// entity is one running client.
type entity struct {
	cancel    context.CancelFunc
	done      chan struct{}
	restarter sse.Restarter

	mu        sync.Mutex
	listening bool // a listen command came: report only the types listened to
	types     map[string]bool

	callbackURL string
	httpClient  *http.Client
	seq         int // callbacks sent; touched only by the client's goroutine
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The harness joins its base URL and our Location, which may double the
	// slash.
	path := "/" + strings.TrimLeft(r.URL.Path, "/")
	switch {
	case path == "/":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"name": "sluice", "capabilities": capabilities})
		case http.MethodPost:
			s.create(w, r)
		case http.MethodDelete:
			s.shutdown(w)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	case strings.HasPrefix(path, "/streams/"):
		id := strings.TrimPrefix(path, "/streams/")
		switch r.Method {
		case http.MethodPost:
			s.command(w, r, id)
		case http.MethodDelete:
			if !s.stop(id) {
				http.Error(w, "no such stream", http.StatusNotFound)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	default:
		http.NotFound(w, r)
	}
}

// create starts a client as POST / asks.
func (s *service) create(w http.ResponseWriter, r *http.Request) {
	var p createParams
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, opts, err := p.client()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	en := &entity{
		cancel:      cancel,
		done:        make(chan struct{}),
		types:       make(map[string]bool),
		callbackURL: strings.TrimRight(p.CallbackURL, "/"),
		httpClient:  s.httpClient,
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.nextID++
	id := strconv.Itoa(s.nextID)
	s.streams[id] = en
	s.mu.Unlock()

	go en.run(ctx, &sse.Client{HTTPClient: s.httpClient}, req, opts)
	w.Header().Set("Location", "/streams/"+id)
	w.WriteHeader(http.StatusCreated)
}

// client turns the parameters into a request and stream options.
func (p *createParams) client() (*http.Request, []sse.Option, error) {
	for name, u := range map[string]string{"streamUrl": p.StreamURL, "callbackUrl": p.CallbackURL} {
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, nil, fmt.Errorf("%s must be an absolute http(s) URL, got %q", name, u)
		}
	}
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if p.Body != nil {
		body = strings.NewReader(*p.Body)
	}
	req, err := http.NewRequest(method, p.StreamURL, body)
	if err != nil {
		return nil, nil, fmt.Errorf("bad request: %w", err)
	}
	for name, value := range p.Headers {
		if !validHeaderName(name) || strings.ContainsAny(value, "\r\n\x00") {
			return nil, nil, fmt.Errorf("bad header %q: %q", name, value)
		}
		req.Header.Set(name, value)
	}
	if p.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	// The harness specifies EventSource semantics for every method: the
	// same request, body included, on every reconnection.
	opts := []sse.Option{sse.WithResend()}
	if p.InitialDelayMs != nil {
		if *p.InitialDelayMs < 0 {
			return nil, nil, errors.New("initialDelayMs must not be negative")
		}
		opts = append(opts, sse.WithRetry(time.Duration(*p.InitialDelayMs)*time.Millisecond))
	}
	if p.ReadTimeoutMs != nil {
		if *p.ReadTimeoutMs < 0 {
			return nil, nil, errors.New("readTimeoutMs must not be negative")
		}
		opts = append(opts, sse.WithReadTimeout(time.Duration(*p.ReadTimeoutMs)*time.Millisecond))
	}
	if p.LastEventID != "" {
		if !sse.ValidID(p.LastEventID) {
			return nil, nil, fmt.Errorf("bad lastEventId %q", p.LastEventID)
		}
		opts = append(opts, sse.WithLastEventID(p.LastEventID))
	}
	return req, opts, nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// command applies POST /streams/{id}.
func (s *service) command(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	en := s.streams[id]
	s.mu.Unlock()
	if en == nil {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	var c commandParams
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&c); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch c.Command {
	case "restart":
		en.restarter.Restart()
	case "listen":
		if c.Listen == nil {
			http.Error(w, "listen needs a listen.type", http.StatusBadRequest)
			return
		}
		en.mu.Lock()
		en.listening = true
		en.types[c.Listen.Type] = true
		en.mu.Unlock()
	default:
		http.Error(w, fmt.Sprintf("unknown command %q", c.Command), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stop ends the client id and waits for it. It reports whether there was
// one.
func (s *service) stop(id string) bool {
	s.mu.Lock()
	en := s.streams[id]
	delete(s.streams, id)
	s.mu.Unlock()
	if en == nil {
		return false
	}
	en.cancel()
	<-en.done
	return true
}

// shutdown answers DELETE /, stops every client and calls exit.
func (s *service) shutdown(w http.ResponseWriter) {
	s.mu.Lock()
	s.closed = true
	ids := make([]string, 0, len(s.streams))
	for id := range s.streams {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.stop(id)
	}
	w.WriteHeader(http.StatusNoContent)
	http.NewResponseController(w).Flush()
	if s.exit != nil {
		s.exit()
	}
}

// wants reports whether an event of type typ is reported. Before any listen
// command every event is; after, the types listened to and "message" (the
// type an EventSource always delivers to onmessage).
func (en *entity) wants(typ string) bool {
	en.mu.Lock()
	defer en.mu.Unlock()
	return !en.listening || typ == "message" || en.types[typ]
}

// run is the client: it reports every event, comment and error in order.
func (en *entity) run(ctx context.Context, client *sse.Client, req *http.Request, opts []sse.Option) {
	defer close(en.done)
	opts = append(opts,
		sse.WithRestarter(&en.restarter),
		sse.OnComment(func(text string) { en.post(ctx, message{Kind: "comment", Comment: text}) }),
		sse.OnRetry(func(err *sse.RetryError) { en.post(ctx, message{Kind: "error", Error: err.Error()}) }),
	)
	for e, err := range client.Connect(ctx, req, opts...) {
		if err != nil {
			if ctx.Err() == nil {
				en.post(ctx, message{Kind: "error", Error: err.Error()})
			}
			continue // a *ResetError goes on; any other error ends the iteration
		}
		if en.wants(e.Type) {
			en.post(ctx, message{Kind: "event", Event: &eventMessage{Type: e.Type, Data: e.Data, ID: e.ID}})
		}
	}
}

// post sends the next callback. Callbacks go one at a time, in order, so
// their numbers have no gaps.
func (en *entity) post(ctx context.Context, m message) {
	en.seq++
	body, _ := json.Marshal(m) // cannot fail: strings only
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, en.callbackURL+"/"+strconv.Itoa(en.seq), bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := en.httpClient.Do(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
