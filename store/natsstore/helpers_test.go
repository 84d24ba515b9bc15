package natsstore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

const hang = 30 * time.Second // fails a wait instead of hanging

// natsURL returns the test NATS server's URL, skipping (or, in CI, failing)
// the test when there is none.
func natsURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_NATS_URL")
	if u == "" {
		msg := "SLUICE_TEST_NATS_URL is not set: run `source scripts/services.sh` (or `make test`) to start a throwaway nats-server -js"
		storetest.Unavailable(t, msg)
	}
	return u
}

// uniqueStream returns a stream name no other test run uses.
func uniqueStream(t testing.TB) string {
	return "T_" + storetest.UniqueName(t, "_", 40)
}

// deleteStream deletes the stream when t ends, with a connection of its
// own (the stores are closed by then).
func deleteStream(t testing.TB, url, stream string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, name := range []string{stream, stream + "_KEPT"} {
			if err := js.DeleteStream(ctx, name); err != nil && !strings.Contains(err.Error(), "not found") {
				t.Logf("cleanup: deleting stream %s: %v", name, err)
			}
		}
	})
}

// open opens a store on url, closed when t ends.
func open(t testing.TB, url string, cfg natsstore.Config) *natsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, url, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore opens a store on the test server in a new stream, deleted when
// t ends.
func newStore(t testing.TB, cfg natsstore.Config) (*natsstore.Store, string) {
	t.Helper()
	url := natsURL(t)
	if cfg.Stream == "" {
		cfg.Stream = uniqueStream(t)
	}
	deleteStream(t, url, cfg.Stream)
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 5 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 200 * time.Millisecond
	}
	return open(t, url, cfg), cfg.Stream
}
