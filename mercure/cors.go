package mercure

import (
	"net/http"
	"slices"
)

// CORS response values (MERCURE.md §7). The cursor headers are exposed so
// that cross-origin fetch() clients can read them.
const (
	corsMethods = "GET, HEAD, POST, QUERY"
	corsHeaders = "authorization, cache-control, last-event-id, content-type"
	corsExpose  = "Link, Mercure-Last-Event-ID, Last-Event-ID, Sluice-Reset, WWW-Authenticate"
)

// CORS applies the hub's cross-origin rules (Config.CORSOrigins) to a
// request of another endpoint served beside the hub (sluice serve's
// relays): it adds the CORS headers for an allowed origin and answers an
// OPTIONS request (a preflight) itself, reporting whether it did; the
// caller serves the request otherwise, and may add the response headers
// of its own that cross-origin scripts should read to
// Access-Control-Expose-Headers.
func (h *Hub) CORS(w http.ResponseWriter, r *http.Request) bool { return h.cors(w, r) }

// cors adds the CORS headers for an allowed origin and answers preflight
// requests. It reports whether the request was answered. Origins are never
// reflected unless listed; with "*" in the list credentials are off and
// the answer is "*".
func (h *Hub) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if len(h.cfg.CORSOrigins) == 0 || origin == "" {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, HEAD, POST, QUERY, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if preflight {
		hdr.Add("Vary", "Access-Control-Request-Method")
		hdr.Add("Vary", "Access-Control-Request-Headers")
	}
	wildcard := slices.Contains(h.cfg.CORSOrigins, "*")
	if !originAllowed(origin, h.cfg.CORSOrigins) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	if wildcard {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		if preflight {
			hdr.Set("Access-Control-Allow-Methods", corsMethods)
			hdr.Set("Access-Control-Allow-Headers", corsHeaders)
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	hdr.Set("Access-Control-Expose-Headers", corsExpose)
	return false
}
