// Package session gives a hub's subscribers sessions: the first connection
// gets an unguessable id, which later connections present (in a header or
// a cookie) to continue the same session, and the application sends
// events to sessions (Manager.Send) that only their connections receive.
//
// Manager.Handle runs a handler for the life of each connection (a ticker,
// a per-user feed): its sends go through the session too, so a client that
// drops and comes back gets what it missed.
//
// A session is a private channel of the hub (hub.ReservedTopicPrefix): a
// send is a log event on it, so it is kept while the client is away and
// replayed when it comes back, with the rest of its subscription. The
// session's backlog is its own, not the log's retention: a store that
// keeps channels (store.Keeper; every store of this module does) keeps
// the newest sends of each session (KeepPerChannel, 4,096 by default,
// each for KeepFor, an hour) whatever other traffic turns the log over,
// and a session that comes back after the log evicted its cursor gets
// them all, then a reset for the shared topics it follows, whose events
// are gone. A session that lost sends (more than KeepPerChannel while
// away) gets the reset instead. A connection without a Last-Event-ID
// continues from where the session's last connection stopped.
//
// A session is bound to the subject (hub.Subscription.Subject) of the
// request that created it: a request with another subject presenting its
// id gets a new session instead. A session expires Config.TTL after its
// last connection ended. The registry is in this Manager's memory, while
// the sends are in the log.
//
// Behind a load balancer, give every instance's Manager the same
// Config.Key: ids are then signed with the subject, so any instance
// continues a session another created (checking its subject), and sends to
// it from any instance reach it wherever it is connected. A client that
// reconnects to another instance resumes from its Last-Event-ID, which
// EventSource sends by itself. Where its last connection stopped, for a
// connection without one (a new page), is in the shared log: when a
// connection that got events ends, its Manager records its cursor on the
// session's state channel (a private channel nobody subscribes to, kept
// by the store like the session's sends), and a Manager continuing a
// session reads it there, whichever instance served the connection
// before; a session none of whose connections got an event has nothing
// recorded, and a new page on another instance starts from now. Close ends a session
// on every instance (its channel is completed, and the close recorded on
// its state channel); Lookup and List report the sessions this instance
// has served.
package session

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Defaults of Config.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultHeader      = "Sluice-Session"
	DefaultCookie      = "sluice_session"
	DefaultMaxSessions = 100_000
)

// ErrUnknown reports a send to a session the manager does not know (never
// issued, expired or closed).
var ErrUnknown = errors.New("session: unknown session")

// ErrFull reports a new session refused because Config.MaxSessions
// sessions are connected.
var ErrFull = errors.New("session: too many sessions")

// topicPrefix starts the channel of every session; statePrefix its state
// channel, where its connections record where they stopped.
const (
	topicPrefix = hub.ReservedTopicPrefix + "session:"
	statePrefix = hub.ReservedTopicPrefix + "session-state:"
)

// stateType is the type of the events on a state channel whose data is
// the cursor where a connection of the session stopped; startType of the
// one that makes a cursor for a session born on an empty log.
const (
	stateType  = "stopped"
	startType  = "started"
	closedType = "closed"
)

// stateTimeout bounds recording and reading the state of a session.
const stateTimeout = 5 * time.Second

// idLen is the length of a session id: 24 random bytes in base64url;
// signedLen with Config.Key: and a 16-byte HMAC-SHA256 of them and the
// subject.
const (
	idLen     = 32
	signedLen = idLen + 22
)

// Config configures a Manager. The zero value is usable.
type Config struct {
	// TTL is how long a session outlives its last connection. Default
	// DefaultTTL (5 min).
	TTL time.Duration
	// Header is the request and response header carrying the session id.
	// Default DefaultHeader ("Sluice-Session").
	Header string
	// Cookie is the cookie carrying the session id (HttpOnly,
	// SameSite=Lax, Secure over TLS), for browsers, whose EventSource
	// cannot set headers. Default DefaultCookie ("sluice_session").
	Cookie string
	// NoCookie turns the cookie off: the id travels in the header only.
	NoCookie bool
	// AnnounceType, when set, is the type of an event every connection
	// gets before any live event, whose data is the session id: browser
	// JavaScript cannot read an HttpOnly cookie or, with EventSource, a
	// response header. It has no id and is not in the log.
	AnnounceType string
	// MaxSessions bounds the live sessions (connected, or away within
	// their TTL). One more forgets the session away the longest (its
	// client gets a new session when it comes back); only when every
	// session is connected does a request that would create one get 503.
	// Default DefaultMaxSessions (100,000).
	MaxSessions int
	// Key, when set, signs session ids (HMAC-SHA256 of the id and the
	// subject), so that every Manager with the same key, on any hub
	// instance sharing the log, accepts the sessions of the others. At
	// least 16 bytes; keep it secret. Without it ids are random only and
	// a session lives on the instance that created it.
	Key []byte
	// Logger receives the manager's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for TTLs. Default time.Now.
	Now func() time.Time
}

// Manager serves a hub's subscribers with sessions. Its methods are safe
// for concurrent use.
type Manager struct {
	h   *hub.Hub
	cfg Config

	// keeper is the store, when the sessions are shared with other
	// instances (Config.Key) and it keeps their state channels
	// (store.Keeper); nil otherwise.
	keeper store.Keeper

	mu       sync.Mutex
	sessions map[string]*session
	idle     list.List // of *session without connections, the oldest first
}

type session struct {
	id            string
	subject       string
	created       time.Time
	lastSeen      time.Time // the last connection's start or end
	from          string    // where the last connection stopped
	conns         map[*hub.Subscriber]struct{}
	pending       int           // connections attached, not yet connected
	idle          *list.Element // in Manager.idle while it has no connection
	reconnections int
}

// live reports whether s still exists at now.
func (s *session) live(now time.Time, ttl time.Duration) bool {
	return len(s.conns) > 0 || s.pending > 0 || now.Sub(s.lastSeen) < ttl
}

// New returns a manager of sessions on h. A nil cfg means the defaults.
// It fails only on an AnnounceType that is not a valid event type or is
// in the hub's reserved namespace.
func New(h *hub.Hub, cfg *Config) (*Manager, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Key != nil && len(c.Key) < 16 {
		return nil, fmt.Errorf("session: Key has %d bytes, want at least 16", len(c.Key))
	}
	if t := c.AnnounceType; t != "" {
		if err := (sse.Event{Type: t}).Validate(); err != nil {
			return nil, fmt.Errorf("session: AnnounceType: %w", err)
		}
		if strings.HasPrefix(t, hub.ReservedTypePrefix) {
			return nil, fmt.Errorf("session: AnnounceType: %w: %q", hub.ErrReservedType, t)
		}
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.Header == "" {
		c.Header = DefaultHeader
	}
	if c.Cookie == "" {
		c.Cookie = DefaultCookie
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	m := &Manager{h: h, cfg: c, sessions: make(map[string]*session)}
	if k, ok := h.Config().Store.(store.Keeper); ok && c.Key != nil {
		m.keeper = k
	}
	return m, nil
}

// Topic returns the hub topic (a private channel) of session id: a
// subscription naming it receives the session's sends.
func Topic(id string) string { return topicPrefix + id }

// Serve serves sub with the session the request continues, or a new one:
// it adds the session's channel to sub.Topics, resumes from where the
// session's last connection stopped when sub has no cursor, sends the id
// in the response header (and cookie), and calls hub.Hub.Serve. sub's own
// OnConnect and OnDisconnect still run. A subscription may have no topic
// of its own: it then receives the session's sends only.
func (m *Manager) Serve(w http.ResponseWriter, r *http.Request, sub hub.Subscription) {
	m.serve(w, r, sub, nil)
}

// serve is Serve, and Handle with a handler.
func (m *Manager) serve(w http.ResponseWriter, r *http.Request, sub hub.Subscription, handler Handler) {
	id, from, err := m.attach(r, sub.Subject, sub.Cursor == "" && !sub.FromStart)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		msg := "too many sessions"
		if !errors.Is(err, ErrFull) {
			msg = "event store unavailable"
			m.cfg.Logger.Error("session: cannot start a session", "err", err)
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set(m.cfg.Header, id)
	if !m.cfg.NoCookie {
		http.SetCookie(w, &http.Cookie{
			Name: m.cfg.Cookie, Value: id, Path: "/",
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		})
	}
	sub.Topics = append(slices.Clip(sub.Topics), Topic(id))
	if sub.Cursor == "" && !sub.FromStart {
		sub.Cursor = from
	}
	connected := false
	var stop context.CancelFunc
	onConnect, onDisconnect := sub.OnConnect, sub.OnDisconnect
	sub.OnConnect = func(s *hub.Subscriber) {
		connected = true
		m.connected(id, s)
		if m.cfg.AnnounceType != "" {
			_ = s.Notify(sse.Event{Type: m.cfg.AnnounceType, Data: id}) // New checked the type
		}
		if onConnect != nil {
			onConnect(s)
		}
		if handler != nil {
			stop = m.start(r, id, sub.Cursor, s, handler)
		}
	}
	sub.OnDisconnect = func(s *hub.Subscriber, reason hub.DisconnectReason) {
		if stop != nil {
			stop()
		}
		m.detach(id, s)
		if onDisconnect != nil {
			onDisconnect(s, reason)
		}
	}
	m.h.Serve(w, r, sub)
	if !connected {
		m.detach(id, nil) // refused before it connected (400, 503)
	}
}

// attach returns the session the request continues, or a new one, and,
// when the request has no cursor of its own (resume), where that
// session's last connection stopped. It counts a pending connection,
// which connected or detach settles.
func (m *Manager) attach(r *http.Request, subject string, resume bool) (string, string, error) {
	id, from, kind, err := m.attachLocked(r, subject)
	if err != nil {
		return "", "", err
	}
	if kind != created && m.keeper != nil && (resume || kind == adopted) {
		// The shared state: where the session's connections stopped on
		// any instance, and whether it was closed on one.
		st := m.state(r.Context(), id)
		switch {
		case st.closed:
			m.cfg.Logger.Debug("session: a closed session was presented; issuing a new session", "session", id)
			if id, err = m.replace(id, subject); err != nil {
				return "", "", err
			}
			kind = created
		case resume && st.cursor != "":
			from = st.cursor
		}
	}
	if kind != created {
		return id, from, nil
	}
	// A new session: what is sent to it while it is away is after the
	// log's head now. Without a cursor yet, a reconnection resumes there.
	// An empty log has no head: an event on the session's state channel
	// makes one, since "from the start" would silently skip what the
	// log's retention evicted before the client came back.
	head, err := m.h.Config().Store.Head(r.Context())
	if err == nil && head == "" {
		head, err = m.h.Publish(r.Context(), hub.Message{Topics: []string{statePrefix + id}, Event: sse.Event{Type: startType}})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if err != nil {
		if s != nil {
			m.removeLocked(s)
		}
		return "", "", fmt.Errorf("session: head of the log: %w", err)
	}
	if s != nil && s.from == "" {
		s.from = head
	}
	return id, "", nil
}

// How attachLocked found the session a request continues.
const (
	known   = iota // a session of this Manager's
	adopted        // another instance's session (Config.Key), new here
	created        // a new session
)

// attachLocked finds or makes the session of the request: the one it
// presents if this Manager knows it or, with Config.Key, another instance
// made it for the same subject; a new one otherwise, and when this hub saw
// the presented session closed (its channel completed) on any instance.
func (m *Manager) attachLocked(r *http.Request, subject string) (id, from string, kind int, err error) {
	presented := r.Header.Get(m.cfg.Header)
	if presented == "" && !m.cfg.NoCookie {
		if c, err := r.Cookie(m.cfg.Cookie); err == nil {
			presented = c.Value
		}
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if m.validID(presented) {
		s := m.liveLocked(presented, now)
		if m.cfg.Key != nil && m.h.Completed(Topic(presented)) {
			if s != nil {
				m.removeLocked(s) // closed on another instance
			}
			return m.createLocked(subject, now)
		}
		switch {
		case s != nil && s.subject == subject:
			s.reconnections++
			s.pending++ // keeps it live while it connects
			s.lastSeen = now
			m.busyLocked(s)
			return s.id, s.from, known, nil
		case s == nil && m.cfg.Key != nil && m.signed(presented, subject):
			// Another instance's session: adopt it here.
			if err := m.roomLocked(); err != nil {
				return "", "", 0, err
			}
			s = &session{id: presented, subject: subject, created: now, lastSeen: now,
				conns: make(map[*hub.Subscriber]struct{}), pending: 1, reconnections: 1}
			m.sessions[s.id] = s
			return s.id, "", adopted, nil
		case s != nil || m.cfg.Key != nil:
			m.cfg.Logger.Warn("session: a session id was presented by another subject; issuing a new session",
				"subject", subject, "remote", r.RemoteAddr)
		}
	}
	return m.createLocked(subject, now)
}

// createLocked makes a new session for subject, with one pending
// connection.
func (m *Manager) createLocked(subject string, now time.Time) (id, from string, kind int, err error) {
	if err := m.roomLocked(); err != nil {
		return "", "", 0, err
	}
	s := &session{id: m.newID(subject), subject: subject, created: now, lastSeen: now,
		conns: make(map[*hub.Subscriber]struct{}), pending: 1}
	m.sessions[s.id] = s
	return s.id, "", created, nil
}

// replace forgets the session id, whose pending connection gets a new
// session instead, and returns the new session's id.
func (m *Manager) replace(id, subject string) (string, error) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[id]; s != nil {
		m.removeLocked(s)
	}
	id, _, _, err := m.createLocked(subject, now)
	return id, err
}

// connected turns the pending connection of id into s.
func (m *Manager) connected(id string, s *hub.Subscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ss := m.sessions[id]; ss != nil {
		ss.pending--
		ss.conns[s] = struct{}{}
	}
}

// detach ends the connection s of id (nil: a pending one that never
// connected), recording where it stopped, here and, when the sessions
// are shared, on the session's state channel.
// The state is recorded first, so that once the connection no longer
// counts (Info.Connections) any instance resumes a new page from where it
// stopped; and only when the connection got an event, so that a client
// that connects and leaves in a loop (with a new session each time, or
// not) writes nothing to the log: what it costs the log is bounded by the
// events publishers send, not by the client.
func (m *Manager) detach(id string, s *hub.Subscriber) {
	if s != nil && m.keeper != nil && s.Stats().Delivered > 0 {
		m.record(id, s.LastEventID())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ss := m.sessions[id]
	if ss == nil {
		return
	}
	ss.lastSeen = m.cfg.Now()
	if s == nil {
		ss.pending--
	} else {
		delete(ss.conns, s)
		if c := s.LastEventID(); c != "" {
			ss.from = c
		}
	}
	if len(ss.conns) == 0 && ss.pending == 0 && ss.idle == nil {
		ss.idle = m.idle.PushBack(ss)
	}
}

// record records on the state channel of session id that a connection
// stopped at cursor, with the cursor's position in the log when the store
// can tell it (store.Resolver), so that a connection that ended later but
// stopped earlier (its end noticed late) does not move the session back.
func (m *Manager) record(id, cursor string) {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	var pos uint64
	if rs, ok := m.h.Config().Store.(store.Resolver); ok {
		pos, _ = rs.Resolve(ctx, cursor) // 0 when it cannot: any other wins
	}
	data := strconv.FormatUint(pos, 10) + " " + cursor
	_, err := m.h.Publish(ctx, hub.Message{Topics: []string{statePrefix + id}, Event: sse.Event{Type: stateType, Data: data}})
	if err != nil {
		m.cfg.Logger.Warn("session: cannot record where a connection stopped; a new page on another instance starts from now",
			"session", id, "err", err)
	}
}

// sharedState is what the state channel of a session records.
type sharedState struct {
	cursor string // where its connections got furthest, or ""
	closed bool   // Close was called on some instance
}

// state reads the state channel of session id: where its connections
// that ended, on any instance, got furthest in the log, and whether it was
// closed. A failed read is logged and reads as nothing recorded.
func (m *Manager) state(ctx context.Context, id string) sharedState {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	var st sharedState
	var best uint64
	for ev, err := range m.keeper.Kept(ctx, statePrefix+id, "") {
		if err != nil {
			m.cfg.Logger.Warn("session: cannot read the session's state", "session", id, "err", err)
			return sharedState{}
		}
		if ev.Type == closedType {
			st.closed = true
			continue
		}
		p, c, ok := strings.Cut(ev.Data, " ")
		pos, err := strconv.ParseUint(p, 10, 64)
		if ev.Type != stateType || !ok || err != nil || c == "" {
			continue
		}
		if st.cursor == "" || pos >= best {
			st.cursor, best = c, pos
		}
	}
	return st
}

// busyLocked takes s off the idle list: it has a connection.
func (m *Manager) busyLocked(s *session) {
	if s.idle != nil {
		m.idle.Remove(s.idle)
		s.idle = nil
	}
}

// removeLocked forgets s.
func (m *Manager) removeLocked(s *session) {
	m.busyLocked(s)
	delete(m.sessions, s.id)
}

// roomLocked makes room for one more session: when MaxSessions are live,
// the one idle the longest is forgotten. With every session connected it
// fails with ErrFull.
func (m *Manager) roomLocked() error {
	if len(m.sessions) < m.cfg.MaxSessions {
		return nil
	}
	front := m.idle.Front()
	if front == nil {
		return ErrFull
	}
	m.removeLocked(front.Value.(*session))
	return nil
}

func (m *Manager) liveLocked(id string, now time.Time) *session {
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	if !s.live(now, m.cfg.TTL) {
		m.removeLocked(s)
		return nil
	}
	return s
}

// sweepLocked forgets expired sessions: the idle list is in the order they
// became idle, so it stops at the first that is not expired.
func (m *Manager) sweepLocked(now time.Time) {
	for e := m.idle.Front(); e != nil; e = m.idle.Front() {
		s := e.Value.(*session)
		if s.live(now, m.cfg.TTL) {
			return
		}
		m.removeLocked(s)
	}
}

// Send publishes e to the given sessions only, as one log event, and
// returns its id. Sessions that are away get it when they come back
// (within the TTL and what the store keeps of the session: see the
// package doc). Unknown or expired sessions
// are skipped and reported by an error wrapping ErrUnknown; the event is
// still sent to the others (the id is then returned with the error). With
// none known, nothing is sent.
func (m *Manager) Send(ctx context.Context, ids []string, e sse.Event) (string, error) {
	now := m.cfg.Now()
	topics := make([]string, 0, len(ids))
	var unknown []string
	m.mu.Lock()
	for _, id := range ids {
		if m.liveLocked(id, now) == nil && (m.cfg.Key == nil || !m.validID(id)) {
			unknown = append(unknown, id)
			continue
		}
		topics = append(topics, Topic(id))
	}
	m.mu.Unlock()
	var missing error
	if len(unknown) > 0 {
		missing = fmt.Errorf("session: send: %w: %s", ErrUnknown, strings.Join(unknown, ", "))
	}
	if len(topics) == 0 {
		if missing == nil {
			missing = fmt.Errorf("session: send: %w: no session given", ErrUnknown)
		}
		return "", missing
	}
	id, err := m.h.Publish(ctx, hub.Message{Topics: topics, Event: e})
	if err != nil {
		return "", fmt.Errorf("session: send: %w", err)
	}
	return id, missing
}

// Info describes one session.
type Info struct {
	ID      string
	Subject string
	// Connections is the number of connections open now.
	Connections int
	// Reconnections counts the connections after the first.
	Reconnections int
	// Cursor is where the next connection without a Last-Event-ID
	// resumes: where the last connection that ended here stopped, or
	// before that the log's head when the session began. With
	// shared sessions (see the package doc) a new connection resumes
	// instead from the session's state channel, which every instance
	// records.
	Cursor string
	// Created is when the session was created; LastSeen when a
	// connection of it last started or ended.
	Created, LastSeen time.Time
}

func (s *session) info() Info {
	return Info{ID: s.id, Subject: s.subject, Connections: len(s.conns), Reconnections: s.reconnections,
		Cursor: s.from, Created: s.created, LastSeen: s.lastSeen}
}

// Lookup returns the session id, if it is live.
func (m *Manager) Lookup(id string) (Info, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, m.cfg.Now())
	if s == nil {
		return Info{}, false
	}
	return s.info(), true
}

// List returns the live sessions, the oldest first.
func (m *Manager) List() []Info {
	now := m.cfg.Now()
	m.mu.Lock()
	m.sweepLocked(now)
	out := make([]Info, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s.info())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return a.Created.Compare(b.Created) })
	return out
}

// Close ends session id: its connections are closed (with a "retry:", see
// hub.Subscriber.Close) and the session is forgotten, so they come back
// with a new one. It reports whether this Manager knew the session.
//
// With Config.Key on a store that keeps channels (sessions shared by
// several instances), it ends the session on every instance: it records
// the close on the session's state channel and completes the session's
// channel (hub.Hub.Complete), which ends its connections wherever they
// are; an instance that is presented the id afterwards gives a new
// session. The error reports a failed write to the log; the session is
// closed here either way.
func (m *Manager) Close(ctx context.Context, id string) (bool, error) {
	m.mu.Lock()
	s := m.liveLocked(id, m.cfg.Now())
	var conns []*hub.Subscriber
	if s != nil {
		m.removeLocked(s)
		for c := range s.conns {
			conns = append(conns, c)
		}
	}
	m.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	if m.keeper == nil || !m.validID(id) {
		return s != nil, nil
	}
	if _, err := m.h.Publish(ctx, hub.Message{Topics: []string{statePrefix + id}, Event: sse.Event{Type: closedType}}); err != nil {
		return s != nil, fmt.Errorf("session: close %s: record: %w", id, err)
	}
	if err := m.h.Complete(ctx, Topic(id)); err != nil {
		return s != nil, fmt.Errorf("session: close %s: complete its channel: %w", id, err)
	}
	return s != nil, nil
}

// newID returns a new session id for subject: random, and signed with
// Config.Key when there is one.
func (m *Manager) newID(subject string) string {
	var b [idLen * 3 / 4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	id := base64.RawURLEncoding.EncodeToString(b[:])
	if m.cfg.Key != nil {
		id += m.mac(id, subject)
	}
	return id
}

// mac is the signature of a random id and the subject, in base64url.
func (m *Manager) mac(random, subject string) string {
	mac := hmac.New(sha256.New, m.cfg.Key)
	mac.Write([]byte(random))
	mac.Write([]byte{0})
	mac.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// signed reports whether id was signed for subject with Config.Key.
func (m *Manager) signed(id, subject string) bool {
	return hmac.Equal([]byte(id[idLen:]), []byte(m.mac(id[:idLen], subject)))
}

// validID reports whether id has the form of the ids newID makes.
func (m *Manager) validID(id string) bool {
	want := idLen
	if m.cfg.Key != nil {
		want = signedLen
	}
	if len(id) != want {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
