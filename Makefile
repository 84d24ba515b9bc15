# sluice — common tasks. `make test` is the one command that runs every test.
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint fuzz bench serve

test: ## vet and run every test (starts throwaway Redis/NATS when available)
	./scripts/test.sh

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

serve: ## run the hub on localhost:8080 with its history in ./sluice.db
	$(GO) run ./cmd/sluice serve

bench: ## the wire-format benchmarks, side by side with go-sse
	cd bench && $(GO) test -run=NONE -bench=. -benchmem ./...
