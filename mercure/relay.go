package mercure

import (
	"errors"
	"net/http"
	"slices"
)

// AuthorizeRelay reports whether r carries a token that grants the relay
// name: a subscriber's token (verified with Config.SubscriberKey, found
// where a subscriber's is: the Authorization header, the cookie, with
// classic support the query), with the grant
//
//   - in a classic token: "mercure": {"relay": ["name", …]};
//   - in a modern token: an authorization_details entry of type
//     AuthorizationDetailType with the action "relay" and the topic
//     {"match": "name"} (exact).
//
// A cookie-authenticated POST must come from one of Config.PublishOrigins,
// as a publish must. Otherwise it answers r as the hub answers a refused
// request (401 without a valid token, 403 when the token does not grant
// name) and returns false. Anonymous access grants no relay. A relay is
// what `sluice serve --relay` exposes: an upstream called with the
// server's credentials, so the grant is the only thing between a client
// and the upstream's bill.
func (h *Hub) AuthorizeRelay(w http.ResponseWriter, r *http.Request, name string) bool {
	names, ok := h.RelayGrants(w, r)
	if !ok {
		return false
	}
	if !slices.Contains(names, name) {
		h.writeAuthError(w, r, errInsufficientScope("the token does not grant the relay %q", clip(name)))
		return false
	}
	return true
}

// RelayGrants authenticates r as AuthorizeRelay does and returns the
// relays its token grants, at least one; otherwise it answers r (401, or
// 403 for a token that grants no relay) and returns ok false. It serves a
// request about a relay whose name it does not carry (sluice serve's
// cancel: any token that may start relays may stop one whose id it
// knows).
func (h *Hub) RelayGrants(w http.ResponseWriter, r *http.Request) (names []string, ok bool) {
	key := h.cfg.SubscriberKey
	if key == nil {
		h.writeAuthError(w, r, errInsufficientScope("this hub has no subscriber key: it grants no relay"))
		return nil, false
	}
	c, aerr := h.authenticate(r, key)
	if aerr != nil {
		h.writeAuthError(w, r, aerr)
		return nil, false
	}
	if c == nil {
		h.writeAuthError(w, r, &authError{status: http.StatusUnauthorized,
			err: errors.New("no token: a relay needs a JWT granting it (mercure.relay), in an Authorization: Bearer header or the " + h.cfg.CookieName + " cookie")})
		return nil, false
	}
	if len(c.relay) == 0 {
		h.writeAuthError(w, r, errInsufficientScope("the token grants no relay"))
		return nil, false
	}
	return c.relay, true
}
