// Package mercure serves the Mercure protocol on sluice's hub engine: it
// turns Mercure publish, subscribe and subscriptions-API requests, and their
// JWT authorization, into [hub.Hub] publishes and subscriptions, so that
// existing Mercure publishers (Symfony, API Platform, Laravel) and
// subscribers work unchanged while sluice's indexed store serves their
// cursors.
//
// It composes an engine the application creates ([Config].Hub): it builds
// each subscriber's [hub.Subscription] (its selectors, grants, cursor and
// token deadline, its callbacks for the subscriptions API) and serves it
// with [hub.Hub.Serve]; it publishes with [hub.Hub.Publish] and announces
// subscriptions with [hub.Hub.Notify]. The engine's settings — store,
// queues, heartbeats, write timeout, connection lifetime — are the
// application's, and Mercure overrides none. The same engine may serve
// sluice's native subscribers (its ServeHTTP) from the same log.
//
// # Protocol forms
//
// Both the classic (0.x) and the modern (1.0) protocol are accepted, decided
// per request and per token instead of by one global switch:
//
//   - Subscribing: "topic" gives classic selectors ("*", exact, RFC 6570
//     URI templates); "match"/"match_exact" and "match_urlpattern" (WHATWG
//     URL Pattern) give modern ones; both may be mixed. Compiled selectors
//     are shared through a bounded LRU.
//   - Tokens: a token whose typ is at+jwt or that has authorization_details
//     is validated strictly as an RFC 9068 access token (typ, exp, aud =
//     the resource identifier, iss in Config.Issuers); any other token is a
//     classic one whose "mercure" claim carries the grants, with exp and nbf
//     enforced only when present. When Config.Issuers is set a classic
//     token must carry a listed iss too, and when Config.Resource is set
//     that aud (a per-request derived resource is never required of
//     classic tokens); Config.ClassicSkipIssuerAudience lifts both for
//     classic tokens only. Publisher and subscriber keys are
//     separate (HS256/384/512 secrets, RS*, PS*, ES*, EdDSA public keys),
//     or the key set of a JWKS URL (NewJWKS, JWKS.Key): a token's kid and
//     alg choose its key; asymmetric keys only; the set is refreshed, and
//     an unknown kid refetches it within a rate limit (see JWKSConfig).
//   - Token transport: the Authorization header, the Config.CookieName
//     cookie, and with classic support the "authorization" query parameter
//     and the mercureAuthorization cookie; never the body, so the token is
//     checked, and a request that cannot be authorized refused, before any
//     body is read. Cookie-authenticated publishes must come from one of
//     Config.PublishOrigins (the Origin header, or the Referer only when
//     there is no Origin header; "Origin: null" is never allowed).
//   - The subscriptions API is never anonymous when a key is configured:
//     with a publisher key but no subscriber key it is refused to all.
//   - Errors use the modern 400/401/403 codes with RFC 6750
//     WWW-Authenticate challenges naming the metadata document; classic
//     clients only look at 2xx versus the rest. The challenge's
//     error_description and the body say why ("the token has expired",
//     "the token has no publish grant for topic …"); a request without a
//     token gets a bare challenge (RFC 6750 §3.1) and the reason in the
//     body. Refusals are logged at debug level with the request's context.
//   - Subscription events use the modern plain JSON document (event type
//     "mercure") for match* subscriptions, and the classic JSON-LD document
//     (no event type) for topic subscriptions.
//
// Config.DisableClassic refuses every classic form.
//
// # Cursors and lost history
//
// The cursor is read from the Last-Event-ID header, then last_event_id,
// then (classic) lastEventID and lastEventId. When one was sent, the
// response carries it back in both Mercure-Last-Event-ID and Last-Event-ID.
// "earliest" replays the whole retained history. Cursors are resolved by
// the store's index, so a recent id is found however long the history is;
// publisher-supplied ids work as cursors (a repeated id resolves to its
// first retained occurrence). Updates published without an id get the
// store's compact id, a relative reference consisting of a fragment as the
// protocol requires ("#k3j9x0a2-1z"), or an urn:uuid with Config.UUIDIDs.
// Publisher ids starting with "#" are reserved (400), and so is the form of
// the store's ids without the "#", which versions before it generated and
// which still resumes where it did. Clients that put a cursor in the query
// (last_event_id) must percent-encode it, "#" as %23: unencoded, "#" starts
// the URL's fragment, which never reaches the hub. EventSource's own
// Last-Event-ID header needs no encoding.
//
// A cursor the store cannot serve (unknown, or older than retention) is
// where Mercure and sluice differ: the Mercure reference hub replays
// nothing, goes live and answers the header "earliest", which a client only
// notices if it compares the header with what it sent. This package keeps
// that header, so Mercure clients behave as with the reference hub, and in
// addition never loses events silently: the stream carries sluice's reset
// signal, the Sluice-Reset response header and a "sluice-reset" event whose
// id is the head of the log (EventSource delivers it only to listeners of
// that type, so Mercure clients are not disturbed, and their next reconnect
// resumes from the head instead of the unknown id). The head is the store's
// own id of the hub's position, never a publisher's id, and a publisher's
// id of an update the subscriber is not authorized to receive is answered
// as an unknown one (reset, cursor headers "earliest"): a subscriber cannot
// learn a private update's id, nor probe whether one exists.
//
// # Topics, selectors and the reserved namespace
//
// Exact selectors and URI templates match a topic's text; URL patterns
// match the topic resolved as a URL reference against the hub's base
// (Config.Resource when it ends in the hub path, else
// http://mercure.invalid). Topics are resolved once per update for all
// the URL patterns of the hub, and patterns are compiled once and shared
// through a cache bounded in bytes (Config.SelectorCacheSize).
//
// So that both views name the same thing, an update's topics may not have
// "." or ".." path segments (also percent-encoded, also after "\" or
// ":"): a publisher granted https://example.com/users/{id}/feed could
// otherwise publish https://example.com/users/../feed, which URL patterns
// see as https://example.com/feed. And a topic is in the hub's reserved
// namespace, which only subscription events use, when either view contains
// the hub path as a path ("/.well-known/mercure" followed by "/", "?", "#"
// or the end, in any case, backslashes read as slashes, unreserved escapes
// decoded): no update can pass for a subscription event, whatever its
// scheme or separators.
//
// What a subscription may ask for is bounded (Config.MaxMatchers,
// MaxTopicParams, MaxSelectorLen, MaxPatternBytes), and so is what its
// patterns cost to match (Config.MaxSelectorCost: the matching threads they
// keep alive at once, which with the topic's length sets the time of a
// match). The engine matches every pattern subscription on a goroutine of
// its own group, off the dispatch loop, so what one connection asks for
// does not delay the others (see the hub package).
//
// # Wire format
//
// A stream starts with the ":" comment line, then the events: an "id" line
// always, "event" and "retry" when set, and at least one "data" line (the
// data split on every line break, so no payload can inject a field). The
// engine's priming is not sent on Mercure streams (hub.PrimingNone): the
// ":" stands for it, and a subscriber's cursor is the id of the last update
// it received. Heartbeats are ":" comments.
// A stream ends with a "retry:" when its lifetime (the engine's
// MaxLifetime) or its token's exp is reached, and when the engine shuts
// down.
//
// # Limits
//
// Request bodies (publish forms, QUERY parameters) are bounded in size
// (Config.MaxBodySize) and in the time to receive them (Config.ReadTimeout,
// from the start of the request: a slower client gets 408 and its
// connection closed). The bound is lifted once the body is read, so QUERY
// streams are not cut by it.
//
// # Active subscriptions
//
// With Config.Subscriptions, every selector of a connection is an active
// subscription, announced by a private update when the connection opens
// and another when it closes, and listed by the subscriptions API. A
// connection may then have at most Config.MaxActiveSubscriptions
// selectors. Subscription events are the engine's notices
// (hub.Hub.Notify), not log events: they are delivered to this instance's
// subscribers in order with the updates, and never written to the log, so
// that no client, however many connections it opens, takes room from the
// application's history (three anonymous connections with a thousand
// topics each used to evict a 5,000-event history). In exchange they carry
// no id (a client's cursor stays on the last update it received), they are
// not replayed to a client that was away (it reads the subscriptions API
// again, as after its first connection), and they are per hub instance,
// like the API: with a shared store, each instance announces and lists its
// own connections.
package mercure
