# sluice — common tasks. `make test` is the one command that runs every test.
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# VERSION is stamped into the binaries of make dist (sluice version).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
# PLATFORMS are the GOOS/GOARCH pairs of make dist.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: test test-ha lint fuzz bench serve install dist

test: ## vet and run every test (starts throwaway Redis/NATS when available)
	./scripts/test.sh

test-ha: ## the HA tests: hubs on a NATS cluster, Redis Sentinel and Redis Cluster while the log's leader dies (1-2 min)
	./scripts/test-ha.sh

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run=NONE -fuzz=FuzzReader -fuzztime=$${FUZZTIME:-30s} ./sse/
	$(GO) test -run=NONE -fuzz=FuzzRoundTrip -fuzztime=$${FUZZTIME:-30s} ./sse/
	$(GO) test -run=NONE -fuzz=FuzzReservedNamespace -fuzztime=$${FUZZTIME:-30s} ./mercure/
	$(GO) test -run=NONE -fuzz=FuzzSurelyUnreserved -fuzztime=$${FUZZTIME:-30s} ./mercure/
	$(GO) test -run=NONE -fuzz=FuzzParseFormFields -fuzztime=$${FUZZTIME:-30s} ./mercure/
	$(GO) test -run=NONE -fuzz=FuzzSelectorCompile -fuzztime=$${FUZZTIME:-30s} ./mercure/
	$(GO) test -run=NONE -fuzz=FuzzDecode -fuzztime=$${FUZZTIME:-30s} ./store/boltstore/
	$(GO) test -run=NONE -fuzz=FuzzParseID -fuzztime=$${FUZZTIME:-30s} ./stream/

serve: ## run the hub on localhost:8080 with its history in ./sluice.db
	$(GO) run ./cmd/sluice serve

install: ## build sluice into $(go env GOBIN) or $(go env GOPATH)/bin, with the version stamped
	$(GO) install -ldflags "-X main.version=$(VERSION)" ./cmd/sluice

dist: ## static binaries for every PLATFORMS pair in dist/, with VERSION stamped, and their SHA256SUMS
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/sluice-$(VERSION)-$$os-$$arch; \
		echo "$$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
			-ldflags "-s -w -X main.version=$(VERSION)" -o $$out ./cmd/sluice; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum sluice-*; else shasum -a 256 sluice-*; fi > SHA256SUMS

bench: ## the wire-format benchmarks, side by side with go-sse
	cd bench && $(GO) test -run=NONE -bench=. -benchmem ./...
