// Command healthcheck asks a sluice hub in the same container whether it is
// ready, for images without a shell or curl (the Dockerfile's HEALTHCHECK):
// it exits 0 when GET /healthz answers 200 within 5 s, and 1 otherwise,
// printing why.
//
// It asks the loopback address of the port in SLUICE_ADDR (the hub's
// --addr; default :8080), over https when SLUICE_TLS_CERT is set (without
// verifying the certificate, which names the public host, not the
// loopback address the check connects to). An argument overrides the URL.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// timeout bounds the whole check.
const timeout = 5 * time.Second

func main() {
	os.Exit(check(context.Background(), os.Args[1:], os.LookupEnv, os.Stderr))
}

// check runs the health check and returns the exit status.
func check(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	url, insecure, err := target(args, lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the hub is local: never ask a proxy
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // loopback only, see the package doc
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s: %s %s\n", url, resp.Status, body)
		return 1
	}
	return 0
}

// target returns the URL to check and whether it is https to loopback.
func target(args []string, lookupEnv func(string) (string, bool)) (string, bool, error) {
	if len(args) > 1 {
		return "", false, fmt.Errorf("want at most one argument, the URL")
	}
	if len(args) == 1 {
		return args[0], false, nil
	}
	addr, ok := lookupEnv("SLUICE_ADDR")
	if !ok || addr == "" {
		addr = ":8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("SLUICE_ADDR %q: %w", addr, err)
	}
	scheme := "http"
	if cert, ok := lookupEnv("SLUICE_TLS_CERT"); ok && cert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/healthz", scheme == "https", nil
}
