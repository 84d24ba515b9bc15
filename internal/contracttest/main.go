// Command contracttest is the test service through which an SSE conformance
// harness (LaunchDarkly's sse-contract-tests) drives sluice's client:
//
//	go run ./internal/contracttest -addr 127.0.0.1:8000
//
// GET / lists the supported capabilities, POST / starts a client on a
// stream, POST /streams/{id} sends it a command (restart, listen), DELETE
// /streams/{id} stops it and DELETE / ends the process. Every event, comment
// and error a client produces is POSTed, in order, to the harness's
// callback URL followed by /1, /2, /3….
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var once sync.Once
	exit := func() { once.Do(stop) }
	srv := &http.Server{Addr: *addr, Handler: newService(nil, exit), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("contracttest: listening on %s", *addr)
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "contracttest:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("contracttest: shutdown: %v", err)
	}
}
