package mercure

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AuthorizeRelay admits a subscriber token that grants the relay, in a
// classic or a modern token, and refuses anything else as the hub refuses
// a request: 401 without a valid token, 403 without the grant.
func TestAuthorizeRelay(t *testing.T) {
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.Handle(HubPath, e.h)
	mux.HandleFunc("POST /relay/{name}", func(w http.ResponseWriter, r *http.Request) {
		if e.h.AuthorizeRelay(w, r, r.PathValue("name")) {
			w.Write([]byte("ok"))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	aud := srv.URL + HubPath
	classic := func(secret string, relay any) string {
		m := map[string]any{"subscribe": []string{"*"}}
		if relay != nil {
			m["relay"] = relay
		}
		return signClaims(t, secret, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "mercure": m}, nil)
	}
	modern := func(actions []any, topic map[string]any) string {
		d := map[string]any{"type": AuthorizationDetailType, "actions": actions, "topics": []any{topic}}
		return signClaims(t, subSecret, jwt.MapClaims{"iss": testIssuer, "aud": aud, "exp": time.Now().Add(time.Hour).Unix(),
			"authorization_details": []any{d}}, map[string]any{"typ": "at+jwt"})
	}
	for _, tc := range []struct {
		name   string
		relay  string
		hdr    http.Header
		cookie string
		status int
	}{
		{"classic grant", "chat", bearer(classic(subSecret, []string{"chat", "other"})), "", 200},
		{"NewClassicToken's grant", "chat", bearer(mustClassic(t, ClassicToken{Relay: []string{"chat"}, TTL: time.Hour})), "", 200},
		{"NewClassicToken, another relay", "image", bearer(mustClassic(t, ClassicToken{Relay: []string{"chat"}})), "", 403},
		{"classic, another relay", "image", bearer(classic(subSecret, []string{"chat"})), "", 403},
		{"classic, no relay claim", "chat", bearer(classic(subSecret, nil)), "", 403},
		{"classic, malformed relay claim", "chat", bearer(classic(subSecret, "chat")), "", 401},
		{"the publisher's key", "chat", bearer(classic(pubSecret, []string{"chat"})), "", 401},
		{"modern grant", "chat", bearer(modern([]any{"relay"}, map[string]any{"match": "chat"})), "", 200},
		{"modern, subscribe only", "chat", bearer(modern([]any{"subscribe"}, map[string]any{"match": "chat"})), "", 403},
		{"modern, a pattern", "chat", bearer(modern([]any{"relay"}, map[string]any{"match": "/chat*", "match_type": "urlpattern"})), "", 401},
		{"no token", "chat", nil, "", 401},
		{"cookie without Origin", "chat", nil, classic(subSecret, []string{"chat"}), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/relay/"+tc.relay, strings.NewReader("{}"))
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tc.cookie})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("a 401 without a challenge")
			}
		})
	}
}

// mustClassic mints t with the test's subscriber key.
func mustClassic(t *testing.T, tok ClassicToken) string {
	t.Helper()
	s, err := NewClassicToken([]byte(subSecret), "", tok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
