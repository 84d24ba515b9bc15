package mercure_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/mercure"
	"github.com/sluicehq/sluice/sse"
	"github.com/sluicehq/sluice/store"
)

// Mount a Mercure hub in a Go application: publishers POST to
// /.well-known/mercure with a JWT, EventSource clients subscribe there. The
// Mercure hub is a protocol on a sluice engine of the application's.
func Example() {
	st := store.NewMemory(store.MemoryConfig{})
	defer st.Close()
	engine, err := hub.New(hub.Config{Store: st})
	if err != nil {
		log.Fatal(err)
	}

	pubKey, err := mercure.ParseKey([]byte("!ChangeThisMercureHubJWTSecretKey!"), "HS256")
	if err != nil {
		log.Fatal(err)
	}
	h, err := mercure.New(mercure.Config{
		Hub:          engine,
		PublisherKey: &pubKey,
		Anonymous:    true, // public updates without a token
		CORSOrigins:  []string{"https://app.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/.well-known/", h) // the hub, its subscriptions API and metadata
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = engine.Shutdown(ctx) // before the server's own shutdown
	}()

	// A subscriber (what `new EventSource(url)` does in a browser).
	resp, err := http.Get(srv.URL + "/.well-known/mercure?topic=" + url.QueryEscape("https://example.com/books/{id}"))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()

	// A publisher, as Symfony's Mercure component does it.
	token, err := mercure.NewToken([]byte("!ChangeThisMercureHubJWTSecretKey!"), "HS256", []string{"*"}, nil, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	body := url.Values{"topic": {"https://example.com/books/1"}, "data": {`{"title":"Dune"}`}, "id": {"book-1-v2"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/.well-known/mercure", strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	pub, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	id, _ := io.ReadAll(pub.Body)
	pub.Body.Close()
	fmt.Println("published", string(id))

	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("received", ev.ID, ev.Data)
	// Output:
	// published book-1-v2
	// received book-1-v2 {"title":"Dune"}
}
