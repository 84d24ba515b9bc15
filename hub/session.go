package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// SessionConfig configures sessions: an unguessable id the hub gives each
// subscriber, which later connections present to be the same session.
// Sends targeted at a session (Hub.SendToSessions) are log events only that
// session's subscribers match, so they are kept while the client is away
// and replayed when it comes back, within the store's retention.
//
// A session is bound to the Subscription.Subject of the request that
// created it: a request with another subject presenting its id gets a new
// session instead. A session expires TTL after its last connection ended.
// The registry is in memory: sessions are per hub instance.
type SessionConfig struct {
	// TTL enables sessions when positive: how long a session outlives its
	// last connection.
	TTL time.Duration
	// Header is the request and response header carrying the session id.
	// Default "Sluice-Session".
	Header string
	// Cookie is the cookie carrying the session id (HttpOnly, SameSite=Lax,
	// Secure over TLS), for browsers, whose EventSource cannot set
	// headers. Default "sluice_session"; "-" disables the cookie.
	Cookie string
}

const sessionTopicPrefix = ReservedTopicPrefix + "session:"

func sessionTopic(id string) string { return sessionTopicPrefix + id }

type session struct {
	subject string
	conns   int
	cursor  string    // the last id written to it
	expires time.Time // meaningful when conns == 0
}

type sessionRegistry struct {
	mu sync.Mutex
	m  map[string]*session
}

func (r *sessionRegistry) init() { r.m = make(map[string]*session) }

// live returns the session if it exists and has not expired.
func (r *sessionRegistry) live(id string, now time.Time) *session {
	s := r.m[id]
	if s == nil {
		return nil
	}
	if s.conns == 0 && !now.Before(s.expires) {
		delete(r.m, id)
		return nil
	}
	return s
}

func (r *sessionRegistry) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.m {
		if s.conns == 0 && !now.Before(s.expires) {
			delete(r.m, id)
		}
	}
}

func (r *sessionRegistry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func newSessionID() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// attachSession returns the session the request continues, or a new one,
// and the cursor where that session's last connection stopped. It sends
// the id in the response header and cookie.
func (h *Hub) attachSession(w http.ResponseWriter, r *http.Request, subject string) (id, cursor string) {
	cfg := h.cfg.Session
	presented := r.Header.Get(cfg.Header)
	if presented == "" && cfg.Cookie != "-" {
		if c, err := r.Cookie(cfg.Cookie); err == nil {
			presented = c.Value
		}
	}
	now := h.clock.Now()
	reg := &h.sessions
	reg.mu.Lock()
	if presented != "" {
		if s := reg.live(presented, now); s != nil {
			if s.subject == subject {
				s.conns++
				id, cursor = presented, s.cursor
			} else {
				h.log.Warn("hub: a session id was presented by another subject; issuing a new session",
					"subject", subject, "remote", r.RemoteAddr)
			}
		}
	}
	if id == "" {
		id = newSessionID()
		reg.m[id] = &session{subject: subject, conns: 1}
	}
	reg.mu.Unlock()

	w.Header().Set(cfg.Header, id)
	if cfg.Cookie != "-" {
		http.SetCookie(w, &http.Cookie{
			Name: cfg.Cookie, Value: id, Path: "/",
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		})
	}
	return id, cursor
}

// detachSession records where the connection stopped and starts the TTL
// when it was the session's last connection.
func (h *Hub) detachSession(id, lastID string) {
	reg := &h.sessions
	reg.mu.Lock()
	defer reg.mu.Unlock()
	s := reg.m[id]
	if s == nil {
		return
	}
	s.conns--
	if lastID != "" {
		s.cursor = lastID
	}
	if s.conns == 0 {
		s.expires = h.clock.Now().Add(h.cfg.Session.TTL)
	}
}

// SendToSessions publishes e to the given sessions only, as one log event,
// and returns its id. Sessions that are away get it when they come back
// (within the TTL and the store's retention). Unknown or expired sessions
// are skipped and reported by an error wrapping ErrUnknownSession; the
// event is still sent to the others (the id is then returned with the
// error). With none known, nothing is sent.
func (h *Hub) SendToSessions(ctx context.Context, ids []string, e sse.Event) (string, error) {
	if h.cfg.Session.TTL <= 0 {
		return "", fmt.Errorf("hub: send to sessions: %w: sessions are disabled", ErrUnknownSession)
	}
	if isReservedType(e.Type) {
		return "", fmt.Errorf("hub: send to sessions: %w: %q", ErrReservedType, e.Type)
	}
	now := h.clock.Now()
	topics := make([]string, 0, len(ids))
	var unknown []string
	h.sessions.mu.Lock()
	for _, id := range ids {
		if h.sessions.live(id, now) == nil {
			unknown = append(unknown, id)
			continue
		}
		topics = append(topics, sessionTopic(id))
	}
	h.sessions.mu.Unlock()
	var missing error
	if len(unknown) > 0 {
		missing = fmt.Errorf("hub: send to sessions: %w: %s", ErrUnknownSession, strings.Join(unknown, ", "))
	}
	if len(topics) == 0 {
		if missing == nil {
			missing = fmt.Errorf("hub: send to sessions: %w: no session given", ErrUnknownSession)
		}
		return "", missing
	}
	id, err := h.append(ctx, store.Event{ID: e.ID, Topics: topics, Type: e.Type, Data: e.Data, Retry: e.Retry})
	if err != nil {
		return "", err
	}
	return id, missing
}

// janitor removes expired sessions and forgotten streams.
func (h *Hub) janitor() {
	defer h.bg.Done()
	period := h.cfg.StreamTTL / 4
	if ttl := h.cfg.Session.TTL; ttl > 0 {
		period = min(period, ttl/4)
	}
	period = max(period, time.Millisecond)
	t := h.clock.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-t.C():
		case <-h.ctx.Done():
			return
		}
		now := h.clock.Now()
		h.sessions.sweep(now)
		h.streams.sweep(now, h.cfg.StreamTTL)
		t.Reset(period)
		if h.cfg.swept != nil {
			select {
			case h.cfg.swept <- struct{}{}:
			default:
			}
		}
	}
}
