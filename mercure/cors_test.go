package mercure

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestCORS(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+HubPath, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization, last-event-id")
		return e.do(req)
	}
	resp := preflight("https://app.example.com")
	if resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		resp.Header.Get("Access-Control-Allow-Methods") != corsMethods ||
		resp.Header.Get("Access-Control-Allow-Headers") != corsHeaders {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp = preflight("https://evil.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("disallowed origin got CORS headers: %v", resp.Header)
	}

	// A cross-origin stream exposes the cursor headers.
	c := e.subscribe("topic=a&last_event_id=earliest", http.Header{"Origin": {"https://app.example.com"}})
	if c.resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("stream headers %v", c.resp.Header)
	}
	if got := c.resp.Header.Get("Access-Control-Expose-Headers"); got != corsExpose {
		t.Fatalf("exposed %q", got)
	}
	// So does a failed request (the browser can read the error).
	_, resp = e.open("", http.Header{"Origin": {"https://app.example.com"}})
	if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("error response: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCORSWildcard(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORSOrigins = []string{"*"} })
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+HubPath, nil)
	req.Header.Set("Origin", "https://any.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp := e.do(req)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("wildcard: %v", resp.Header)
	}
}

func TestCORSOff(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+HubPath, nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp := e.do(req)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS without configuration: %v", resp.Header)
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Subscriptions = true
		c.CookieName = "mercure_token"
		c.AuthorizationServers = []string{testIssuer}
	})
	resp, body := e.get(MetadataPath, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var doc struct {
		Resource      string   `json:"resource"`
		Bearer        []string `json:"bearer_methods_supported"`
		Servers       []string `json:"authorization_servers"`
		DetailTypes   []string `json:"authorization_details_types_supported"`
		Cookie        string   `json:"mercure_cookie"`
		Subscriptions bool     `json:"mercure_subscriptions"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != e.resource() || len(doc.Bearer) != 1 || doc.Bearer[0] != "header" || len(doc.Servers) != 1 ||
		len(doc.DetailTypes) != 1 || doc.DetailTypes[0] != AuthorizationDetailType || doc.Cookie != "mercure_token" || !doc.Subscriptions {
		t.Fatalf("document %s", body)
	}

	// No key, no document: the hub looks classic.
	e2 := newEnv(t, func(c *Config) { c.PublisherKey, c.SubscriberKey = nil, nil })
	if resp, _ := e2.get(MetadataPath, nil); resp.StatusCode != 404 {
		t.Fatalf("without keys: %d", resp.StatusCode)
	}
	if resp, _ := e.get("/elsewhere", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
}
