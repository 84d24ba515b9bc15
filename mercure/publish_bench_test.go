package mercure

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/hub"
	"github.com/sluicehq/sluice/store"
)

// BenchmarkPublishHandler is the CPU and allocations of one publish POST in
// the Mercure handler, without the network: token check, form, validation,
// append to a memory store. Topics: a bare name (sluice bench's) and an
// absolute URL.
//
//	go test -run NONE -bench PublishHandler -benchmem ./mercure/
func BenchmarkPublishHandler(b *testing.B) {
	for _, topic := range []string{"bench", "https://example.com/books/1"} {
		b.Run(strings.ReplaceAll(topic, "/", "_"), func(b *testing.B) {
			st := store.NewMemory(store.MemoryConfig{MaxEvents: 1000})
			defer st.Close()
			key := mustKey(b, pubSecret)
			eng, err := hub.New(hub.Config{Store: st, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Shutdown(context.Background())
			h, err := New(Config{Hub: eng, PublisherKey: &key, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			auth := "Bearer " + classicToken(b, key, []string{"*"}, nil)
			body := "topic=" + topic + "&data=sb%3A0123abcd%3A12%3A345678%3A987654321"
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, HubPath, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
