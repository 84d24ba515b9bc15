package mercure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// HubPath is the path of the Mercure hub. The subscriptions API lives
// below it and the protected resource metadata document at MetadataPath.
const HubPath = "/.well-known/mercure"

// MetadataPath is the path of the OAuth 2.0 protected resource metadata
// document (RFC 9728) of the hub.
const MetadataPath = "/.well-known/oauth-protected-resource" + HubPath

// subscriptionsPath is the prefix of the subscriptions API.
const subscriptionsPath = HubPath + "/subscriptions"

// earliest is the reserved cursor asking for the whole retained history.
const earliest = "earliest"

// Defaults of the Config limits and timings, used where a field is zero.
const (
	DefaultCookieName             = "__Secure-mercure_access_token"
	DefaultReadTimeout            = 10 * time.Second
	DefaultMaxBodySize            = 1 << 20
	DefaultMaxMatchers            = 100
	DefaultMaxSelectorLen         = 4096
	DefaultMaxSelectorCost        = 32
	DefaultMaxPatternBytes        = 4 << 10
	DefaultMaxActiveSubscriptions = 100
	DefaultMaxTokenSize           = 16 << 10
	DefaultMaxGrants              = 100
	DefaultMaxClassicGrants       = 1000
	DefaultSelectorCacheSize      = 32 << 20
	DefaultTokenCacheSize         = 1000
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("mercure: invalid config")

// Config configures a Mercure hub. Only Hub is required; every zero field
// takes the documented default.
type Config struct {
	// Hub is the sluice engine the Mercure hub publishes to and serves its
	// subscribers with: its store, queues, heartbeats, write timeout,
	// connection lifetime and limits (MaxTopics bounds an update's topics
	// and a subscription's exact ones; MaxEventSize an update) are the
	// Mercure hub's. Required. Mercure adds its own rules on top and
	// overrides none of the engine's, so New refuses an engine that cannot
	// serve Mercure: one with sessions on, or whose MaxLastEventIDLen is
	// below the longest id a publisher may give (store.MaxIDLen). The
	// caller owns it: shut it down with its Shutdown.
	Hub *hub.Hub

	// PublisherKey verifies the tokens of publishers (POST). Without it
	// the hub accepts no publish request (405), as the reference hub. New
	// copies the keys: to change them, start a new Hub (a JWKS key follows
	// its key set, see JWKS).
	PublisherKey *Key
	// SubscriberKey verifies the tokens of subscribers and of the
	// subscriptions API. Without it no token is examined and subscribing
	// needs Anonymous.
	SubscriberKey *Key
	// Issuers are the trusted iss values of tokens. A modern token whose
	// iss is not listed is refused, so modern tokens need at least one
	// issuer. When Issuers is set, a classic token must carry a listed iss
	// too (unless ClassicSkipIssuerAudience); without Issuers classic
	// tokens are not checked for iss.
	Issuers []string
	// AuthorizationServers are listed in the metadata document
	// (authorization_servers) when set.
	AuthorizationServers []string
	// Resource is the resource identifier: the aud modern tokens must
	// carry and the resource of the metadata document. Default: derived
	// per request as scheme://Host/.well-known/mercure (https only over
	// TLS); pin it behind a proxy. When it ends in /.well-known/mercure it
	// is also the base relative URL patterns and topics resolve against
	// (otherwise http://mercure.invalid). When it is set, classic tokens
	// must carry it in aud too (unless ClassicSkipIssuerAudience); a
	// derived resource is never required of classic tokens.
	Resource string
	// ClassicSkipIssuerAudience accepts classic tokens without the iss and
	// aud checks that Issuers and Resource otherwise apply to them, as
	// classic hubs did: for publishers whose classic tokens carry neither
	// while modern tokens from an authorization server are checked. It
	// lets any holder of the key mint classic tokens that skip the
	// issuer and audience rules, so leave it off unless needed.
	ClassicSkipIssuerAudience bool
	// DisableClassic refuses the classic protocol: the "mercure" claim,
	// "topic" selectors, the "authorization" query parameter, the
	// mercureAuthorization cookie and the lastEventID/lastEventId query
	// parameters. By default both protocols are accepted, per request and
	// per token.
	DisableClassic bool
	// Anonymous accepts subscribers without a token: they receive public
	// updates only. An invalid token is refused even then.
	Anonymous bool
	// Subscriptions turns on active subscriptions: subscription events and
	// the subscriptions API (see the package doc).
	Subscriptions bool
	// MaxActiveSubscriptions bounds, with Subscriptions, the selectors of
	// one connection: each is an active subscription, announced by an
	// event when the connection opens and another when it closes. Default
	// 100.
	MaxActiveSubscriptions int
	// CookieName is the cookie a token is read from. Default
	// "__Secure-mercure_access_token" (browsers store it only over HTTPS);
	// with classic support "mercureAuthorization" is read as a fallback.
	CookieName string
	// PublishOrigins are the origins allowed to publish with a cookie
	// token: exact origins, "*", or one "*" wildcard such as
	// "https://*.example.com", compared without regard to case. Without
	// them cookie publishes are refused, and so are cookie publishes with
	// an opaque "Origin: null" (even with "*"): when a request has an
	// Origin header, its Referer is never looked at.
	PublishOrigins []string
	// CORSOrigins are the origins allowed to make cross-origin requests,
	// with the same syntax; "*" turns credentials off. None by default.
	CORSOrigins []string
	// UUIDIDs makes the hub give updates published without an id an
	// urn:uuid:<UUIDv7> id, as the reference hub, instead of the store's
	// own compact ids (fragments, "#k3j9x0a2-1z"). Both work as
	// Last-Event-ID.
	UUIDIDs bool

	// MaxBodySize bounds publish and QUERY bodies (413 beyond). Default
	// 1 MiB.
	MaxBodySize int64
	// ReadTimeout bounds the time to receive a request's body, from the
	// moment the hub starts handling the request: a client that sends its
	// body more slowly gets 408 and its connection is closed, so slow
	// bodies cannot hold connections open. The token is checked before any
	// body is read (it never comes from the body), and a request that
	// cannot be authorized is refused without reading its body. The bound
	// is lifted once the body is read, so a QUERY subscription streams on.
	// It is set with http.ResponseController.SetReadDeadline (a
	// ResponseWriter that does not support it gets no bound); the
	// http.Server's ReadHeaderTimeout bounds the headers. Default 10 s;
	// negative means no bound.
	ReadTimeout time.Duration
	// MaxPublishTopics bounds the topics of one update. Default: the
	// hub's MaxTopics, which bounds them anyway.
	MaxPublishTopics int
	// MaxMatchers bounds the match* parameters of one subscription, and
	// its patterns (URI templates and URL patterns, whatever parameter
	// carries them). Default 100.
	MaxMatchers int
	// MaxTopicParams bounds the classic topic parameters of one
	// subscription. Default: the hub's MaxTopics, which bounds the exact
	// topics of a subscription anyway.
	MaxTopicParams int
	// MaxSelectorLen bounds one selector (parameter or token) and one
	// topic of an update. Default 4096 bytes.
	MaxSelectorLen int
	// MaxSelectorCost bounds what matching the patterns (URI templates and
	// URL patterns) of one subscription may cost per byte of a topic: the
	// matching threads they may keep alive at once, which is about one per
	// wildcard, group or template variable that can match the same text as
	// another (a pattern such as https://example.com/books/{id} costs 2,
	// each of 30 adjacent "*" costs 1). Go's regular expressions match in
	// time proportional to this times the topic's length. A pattern's
	// compiled program may also not exceed four instructions a byte, so a
	// regexp repetition count cannot hide a large program in a short
	// pattern. Default 32.
	MaxSelectorCost int
	// MaxPatternBytes bounds the total length of the patterns of one
	// subscription: what they keep compiled, and the CPU compiling them
	// costs, grow with it. Default 4 KiB.
	MaxPatternBytes int
	// MaxTokenSize bounds a token. Default 16 KiB.
	MaxTokenSize int
	// MaxGrants bounds the Mercure authorization_details entries of a
	// modern token, and their topics in total. Default 100.
	MaxGrants int
	// MaxClassicGrants bounds each array of a classic mercure claim.
	// Default 1000.
	MaxClassicGrants int
	// SelectorCacheSize bounds, in bytes, the compiled patterns kept for
	// reuse (an LRU shared by all subscriptions and tokens; a pattern in
	// use by a subscription stays compiled for it either way). Default
	// 32 MiB.
	SelectorCacheSize int
	// TokenCacheSize bounds the verified tokens kept so that a client
	// sending the same token again (a publisher's every request) is not
	// verified again: the exact token string and key must match, expiry is
	// checked on each use, and refused tokens are never kept. Default 1000;
	// negative turns the cache off.
	TokenCacheSize int

	// Logger receives the logs. Default slog.Default(). Tokens are never
	// logged.
	Logger *slog.Logger
	// Now is the clock for token expiry. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Hub == nil {
		return fmt.Errorf("%w: Hub is required", ErrConfig)
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&c.ReadTimeout, DefaultReadTimeout)
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	defInt(&c.MaxPublishTopics, c.Hub.Config().MaxTopics)
	defInt(&c.MaxMatchers, DefaultMaxMatchers)
	defInt(&c.MaxTopicParams, c.Hub.Config().MaxTopics)
	defInt(&c.MaxSelectorLen, DefaultMaxSelectorLen)
	defInt(&c.MaxSelectorCost, DefaultMaxSelectorCost)
	defInt(&c.MaxPatternBytes, DefaultMaxPatternBytes)
	defInt(&c.MaxActiveSubscriptions, DefaultMaxActiveSubscriptions)
	defInt(&c.MaxTokenSize, DefaultMaxTokenSize)
	defInt(&c.MaxGrants, DefaultMaxGrants)
	defInt(&c.MaxClassicGrants, DefaultMaxClassicGrants)
	defInt(&c.SelectorCacheSize, DefaultSelectorCacheSize)
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	for _, k := range []*Key{c.PublisherKey, c.SubscriberKey} {
		if k != nil && k.verify == nil && k.jwks == nil {
			return fmt.Errorf("%w: a Key must come from ParseKey, NewPublicKey or JWKS.Key", ErrConfig)
		}
	}
	if c.Resource != "" {
		if u, err := url.Parse(c.Resource); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%w: Resource %q is not an absolute URL", ErrConfig, c.Resource)
		}
	}
	return nil
}

// Hub is a Mercure hub on the sluice engine. It is an http.Handler serving
// HubPath (subscribe with GET, HEAD and QUERY; publish with POST; CORS
// preflights), the subscriptions API below it when Config.Subscriptions is
// set, and MetadataPath when a key is configured; mount it on "/" or on
// "/.well-known/". It is safe for concurrent use.
type Hub struct {
	cfg       Config
	engine    *hub.Hub
	classic   bool
	issuers   map[string]struct{}
	selectors *selectorCache
	tokens    *tokenCache // nil when off
	log       *slog.Logger
	now       func() time.Time
	engineNow func() time.Time // the engine's clock, for Subscription.Deadline
	maxCursor int              // the engine's MaxLastEventIDLen
	subs      registry
}

// New returns a Mercure hub on the engine cfg.Hub.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	base := "http://mercure.invalid"
	if strings.HasSuffix(cfg.Resource, HubPath) {
		base = cfg.Resource
	}
	// The hub's own copies of the keys: verified tokens are cached per key,
	// so a key must not change under the cache.
	for _, k := range []**Key{&cfg.PublisherKey, &cfg.SubscriberKey} {
		if *k != nil {
			cp := **k
			*k = &cp
		}
	}
	selectors, err := newSelectorCache(base, int64(cfg.SelectorCacheSize), selectorLimits{width: cfg.MaxSelectorCost})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// Origins compare without regard to case: the patterns are lowered
	// once here (into copies: the caller's slices stay as they are), the
	// request's origin per request.
	cfg.PublishOrigins = lowerAll(cfg.PublishOrigins)
	cfg.CORSOrigins = lowerAll(cfg.CORSOrigins)
	h := &Hub{
		cfg:       cfg,
		classic:   !cfg.DisableClassic,
		issuers:   make(map[string]struct{}, len(cfg.Issuers)),
		selectors: selectors,
		tokens:    newTokenCache(cfg.TokenCacheSize),
		log:       cfg.Logger,
		now:       cfg.Now,
	}
	h.subs.init()
	for _, iss := range cfg.Issuers {
		h.issuers[iss] = struct{}{}
	}
	ec := cfg.Hub.Config()
	if ec.MaxLastEventIDLen < store.MaxIDLen {
		return nil, fmt.Errorf("%w: the hub's MaxLastEventIDLen is %d, below the longest id a publisher may give (%d)", ErrConfig, ec.MaxLastEventIDLen, store.MaxIDLen)
	}
	h.engineNow = ec.Clock.Now
	h.maxCursor = ec.MaxLastEventIDLen
	h.engine = cfg.Hub
	return h, nil
}

// Update is an update published from Go with Hub.Publish.
type Update struct {
	// Topics are the update's topics; the first is the canonical one.
	Topics []string
	// Data is the payload (UTF-8).
	Data string
	// ID is an optional id (duplicates are accepted); empty lets the hub
	// choose one.
	ID string
	// Type is the optional SSE event type.
	Type string
	// Retry is the optional reconnection time sent with the update.
	Retry time.Duration
	// Private restricts the update to subscribers whose token grants one
	// of its topics.
	Private bool
}

// Publish publishes u with the validation rules of a publish request (but
// no authorization: the caller is trusted) and returns its id. Validation
// failures wrap ErrMissingTopic, ErrTooManyTopics or ErrInvalidField.
func (h *Hub) Publish(ctx context.Context, u Update) (string, error) {
	if u.Retry < 0 {
		return "", fmt.Errorf("%w: negative retry", ErrInvalidField)
	}
	m := hub.Message{Topics: u.Topics, Event: sse.Event{ID: u.ID, Type: u.Type, Data: u.Data, Retry: u.Retry}, Private: u.Private}
	if err := h.checkTopics(m.Topics); err != nil {
		return "", err
	}
	if err := h.checkMessage(&m); err != nil {
		return "", err
	}
	return h.publishUpdate(ctx, m)
}

// publishUpdate appends a validated update through the engine.
func (h *Hub) publishUpdate(ctx context.Context, m hub.Message) (string, error) {
	if m.Event.ID == "" && h.cfg.UUIDIDs {
		m.Event.ID = "urn:uuid:" + newUUIDv7()
	}
	id, err := h.engine.Publish(ctx, m)
	if err != nil {
		return "", fmt.Errorf("mercure: publish: %w", err)
	}
	return id, nil
}

// ServeHTTP routes a request to the hub, the subscriptions API or the
// metadata document.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.timedBody(r) {
		// Whatever reads the body, this handler or net/http draining it
		// after a refusal, does so within ReadTimeout (readBody lifts it).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	}
	if h.cors(w, r) {
		return
	}
	switch p := r.URL.Path; {
	case p == HubPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead, "QUERY":
			h.subscribe(w, r)
		case http.MethodPost:
			if h.cfg.PublisherKey == nil {
				h.methodNotAllowed(w, r)
				return
			}
			h.publish(w, r)
		default:
			h.methodNotAllowed(w, r)
		}
	case p == MetadataPath && h.keyed():
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h.metadata(w, r)
	case h.cfg.Subscriptions && (p == subscriptionsPath || strings.HasPrefix(p, subscriptionsPath+"/")):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h.subscriptionsAPI(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Hub) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	skipBody(w, r)
	allow := "GET, HEAD, QUERY, OPTIONS"
	if h.cfg.PublisherKey != nil {
		allow = "GET, HEAD, POST, QUERY, OPTIONS"
	}
	w.Header().Set("Allow", allow)
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
}

// hasBody reports whether r may have a body still to read.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// timedBody reports whether reading r's body is bounded by ReadTimeout
// (ServeHTTP sets the deadline, readBody lifts it).
func (h *Hub) timedBody(r *http.Request) bool { return h.cfg.ReadTimeout > 0 && hasBody(r) }

// readBody reads r's body with read, within MaxBodySize bytes and the
// ReadTimeout deadline set by ServeHTTP, and lifts the deadline once the
// body is read: the connection goes on serving (a QUERY subscription
// streams on it, possibly hijacked by the engine) without a deadline that
// would cut it. On failure it answers the request (408 when the body came
// too slowly or 413 too large, both closing an HTTP/1 connection; 400
// otherwise) and returns false; the deadline then stays, so that what is
// left of the body (net/http reads up to 256 KiB of it before it answers a
// 400, as for a publish body read() left unread) comes within it or the
// connection is closed.
func (h *Hub) readBody(w http.ResponseWriter, r *http.Request, read func(io.Reader) error) bool {
	timed := h.timedBody(r)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body := r.Body
	r.Body = http.MaxBytesReader(w, body, h.cfg.MaxBodySize)
	err := read(r.Body)
	switch {
	case err == nil:
		// The limit is spent: the body the server gave is back, which
		// net/http recognises when it finishes the request.
		r.Body = body
		if timed {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		return true
	case isTimeout(err):
		h.log.Debug("mercure: request body too slow", "timeout", h.cfg.ReadTimeout, "method", r.Method, "remote", r.RemoteAddr)
		skipBody(w, r)
		http.Error(w, http.StatusText(http.StatusRequestTimeout), http.StatusRequestTimeout)
	case errors.As(err, new(*http.MaxBytesError)):
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
	default:
		h.badRequest(w, r, err)
	}
	return false
}

// isTimeout reports whether err is a read that hit its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// skipBody makes an HTTP/1 connection close right after the response when
// r's body was not (entirely) read: net/http would otherwise read what is
// left of it, at the client's pace, before it sends the response and again
// before it lets go of the connection. The read deadline is moved to now so
// that nothing more is read. (HTTP/2 resets the stream instead, and
// "Connection: close" would end its other streams.)
func skipBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && hasBody(r) {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

// keyed reports whether some JWT verification is configured.
func (h *Hub) keyed() bool { return h.cfg.PublisherKey != nil || h.cfg.SubscriberKey != nil }

// resource returns the resource identifier for r.
func (h *Hub) resource(r *http.Request) string {
	if h.cfg.Resource != "" {
		return h.cfg.Resource
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + HubPath
}

// metadataURL returns the URL of the metadata document for r: the
// well-known prefix inserted in front of the resource's path.
func (h *Hub) metadataURL(r *http.Request) string {
	u, err := url.Parse(h.resource(r))
	if err != nil {
		return ""
	}
	u.Path = "/.well-known/oauth-protected-resource" + u.Path
	u.RawPath = ""
	return u.String()
}

// writeAuthError answers a failed authentication or authorization with the
// status, the WWW-Authenticate challenge of MERCURE.md §4 and a body that
// says why ("Unauthorized: the token has expired"). The challenge carries
// the reason as its error_description (RFC 6750 §3), except when the
// request had no token at all, which RFC 6750 §3.1 answers with a bare
// challenge. The reason is clipped to maxReasonLen bytes, and only
// printable ASCII of it reaches the challenge. The refusal is logged at
// debug level with the request's context, so a logger that adds a request
// id from it ties the line to the request.
func (h *Hub) writeAuthError(w http.ResponseWriter, r *http.Request, e *authError) {
	reason := clipTo(h.authReason(r, e), maxReasonLen)
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if e.code != "" {
		b.WriteString(sep + `error="` + e.code + `", error_description="` + descriptionValue(reason) + `"`)
		sep = ", "
	}
	if h.keyed() {
		b.WriteString(sep + `resource_metadata="` + h.metadataURL(r) + `"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	h.log.DebugContext(r.Context(), "mercure: request refused", "status", e.status, "error", e.code, "reason", reason,
		"method", r.Method, "path", clip(r.URL.Path), "remote", r.RemoteAddr)
	http.Error(w, http.StatusText(e.status)+": "+reason, e.status)
}

// authReason says why e refused r, in words a client can act on.
func (h *Hub) authReason(r *http.Request, e *authError) string {
	err := e.err
	switch {
	case e == errNoToken && r.Method == http.MethodPost:
		return "no token: publishing needs a JWT granting the topics (mercure.publish), in an Authorization: Bearer header"
	case e == errNoToken && h.cfg.SubscriberKey == nil:
		return "this hub admits no subscribers: it has neither a subscriber key nor anonymous access"
	case e == errNoToken:
		where := "an Authorization: Bearer header or the " + h.cfg.CookieName + " cookie"
		if h.classic {
			where = "an Authorization: Bearer header, the authorization query parameter or the " + h.cfg.CookieName + " cookie"
		}
		if strings.HasPrefix(r.URL.Path, subscriptionsPath) {
			return "no token: the subscriptions API needs a subscriber JWT, in " + where
		}
		return "no token, and this hub admits no anonymous subscribers: send a subscriber JWT in " + where
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired (exp): get a new one"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Sprintf("wrong audience: the token's aud must contain %q", h.resource(r))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !strings.Contains(err.Error(), "signing method"):
		return "bad signature: the token is not signed with the hub's key"
	}
	return strings.TrimPrefix(err.Error(), ErrInvalidToken.Error()+": ")
}

// maxReasonLen bounds the reason of a refused request (its challenge, body
// and log line), whatever request values it quotes: an Origin header, a
// token's kid, the text of the JWT library's errors.
const maxReasonLen = 512

// clip shortens a request-supplied value for a message.
func clip(s string) string { return clipTo(s, 200) }

// clipTo shortens s to limit bytes and an ellipsis.
func clipTo(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

// descriptionValue makes s fit an error_description, whose characters are
// printable ASCII but '"' and '\' (RFC 6750 §3): quotes become ', a
// backslash /, anything else '?'.
func descriptionValue(s string) string {
	b := make([]byte, 0, len(s))
	for _, c := range []byte(s) {
		switch {
		case c == '"':
			c = '\''
		case c == '\\':
			c = '/'
		case c < 0x20 || c > 0x7e:
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// badRequest answers 400 with a message safe to show, clipped like a
// refusal's reason: it may quote what the request sent (a selector, a
// topic), and the path is the client's too.
func (h *Hub) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	msg := clipTo(err.Error(), maxReasonLen)
	h.log.DebugContext(r.Context(), "mercure: bad request", "err", msg, "method", r.Method, "path", clip(r.URL.Path), "remote", r.RemoteAddr)
	http.Error(w, msg, http.StatusBadRequest)
}

// authenticate finds and verifies the request's token with key. It
// returns nil claims and no error when there is no token.
func (h *Hub) authenticate(r *http.Request, key *Key) (*claims, *authError) {
	tok, src, aerr := h.extractToken(r)
	if aerr != nil || tok == "" {
		return nil, aerr
	}
	if src == fromCookie && r.Method == http.MethodPost {
		origin := requestOrigin(r)
		if origin == "" {
			return nil, errInvalidRequest("a cookie-authenticated POST without Origin or Referer")
		}
		if origin == opaqueOrigin || !originAllowed(origin, h.cfg.PublishOrigins) {
			return nil, errInvalidRequest("origin %q may not publish", origin)
		}
	}
	c, err := h.verifyCached(tok, key, r)
	if err != nil {
		return nil, errInvalidToken(err)
	}
	return c, nil
}

// verifyCached is verify through the hub's cache of verified tokens.
func (h *Hub) verifyCached(tok string, key *Key, r *http.Request) (*claims, error) {
	resource := ""
	res := func() string {
		if resource == "" {
			resource = h.resource(r)
		}
		return resource
	}
	if c := h.tokens.get(key, tok, h.now(), res); c != nil {
		return c, nil
	}
	c, err := h.verify(tok, key, res())
	if err != nil {
		return nil, err
	}
	aud := ""
	if c.modern {
		aud = res()
	}
	h.tokens.put(key, tok, c, aud)
	return c, nil
}

// publish serves POST on the hub path (MERCURE.md §2).
func (h *Hub) publish(w http.ResponseWriter, r *http.Request) {
	// The token comes from the headers or the query, never the body: a
	// request that cannot publish is refused before its body is read.
	c, aerr := h.authenticate(r, h.cfg.PublisherKey)
	if aerr == nil && c == nil {
		aerr = errNoToken
	}
	if aerr != nil {
		skipBody(w, r)
		h.writeAuthError(w, r, aerr)
		return
	}
	if r.ContentLength > h.cfg.MaxBodySize {
		skipBody(w, r)
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	}
	var m hub.Message
	if !h.readBody(w, r, func(io.Reader) (err error) {
		m, err = h.parsePublishForm(r)
		return err
	}) {
		return
	}
	// The form was read to its end: closed, the body spares net/http a
	// look for more of it before the response.
	_ = r.Body.Close()
	if topic, ok := h.canPublish(c, m.Topics); !ok {
		h.writeAuthError(w, r, errInsufficientScope("the token has no publish grant for topic %q", clip(topic)))
		return
	}
	if err := h.checkMessage(&m); err != nil {
		h.badRequest(w, r, err)
		return
	}
	id, err := h.publishUpdate(r.Context(), m)
	switch {
	case err == nil:
	case errors.Is(err, hub.ErrEventTooLarge):
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, store.ErrInvalidEvent), errors.Is(err, hub.ErrReservedTopic), errors.Is(err, hub.ErrReservedType),
		errors.Is(err, hub.ErrTooManyTopics), errors.Is(err, sse.ErrInvalidID):
		h.badRequest(w, r, err)
		return
	case errors.Is(err, hub.ErrHubClosed):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
		h.log.Error("mercure: publish failed", "err", err, "topics", m.Topics)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, id)
}

// metadata serves the protected resource metadata document (RFC 9728).
func (h *Hub) metadata(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"resource":                              h.resource(r),
		"bearer_methods_supported":              []string{"header"},
		"authorization_details_types_supported": []string{AuthorizationDetailType},
		"mercure_cookie":                        h.cfg.CookieName,
		"mercure_subscriptions":                 h.cfg.Subscriptions,
	}
	if len(h.cfg.AuthorizationServers) > 0 {
		doc["authorization_servers"] = h.cfg.AuthorizationServers
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}
