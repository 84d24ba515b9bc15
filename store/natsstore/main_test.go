package natsstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestMain keeps one stream of its own on the test server while the tests
// run. nats-server 2.9 removes an account's storage directory when its last
// stream is deleted, and a stream created at that moment fails ("could not
// create storage directory"); the tests create and delete streams in
// parallel, so the account must never become empty.
func TestMain(m *testing.M) {
	url := os.Getenv("SLUICE_TEST_NATS_URL")
	if url == "" {
		os.Exit(m.Run())
	}
	anchor := fmt.Sprintf("T_anchor_%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsstore tests: %v\n", err)
		os.Exit(1)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: anchor, Subjects: []string{"sluicetest.anchor." + anchor}, Storage: jetstream.FileStorage})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsstore tests: creating the anchor stream: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	_ = js.DeleteStream(ctx2, anchor)
	nc.Close()
	os.Exit(code)
}
