#!/usr/bin/env bash
# Runs every test of sluice: vet, the race-enabled test suite with the real
# servers the integration tests need, and the benchmark module's checks.
# This is what `make test` and CI run.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh
trap stop_services EXIT

echo "== go vet"
go vet ./...
(cd bench && go vet ./...)
(cd e2e && go vet ./...)

echo "== go test -race"
go test -race -timeout 5m ./...
(cd bench && go test -timeout 5m ./...)

echo "== browser tests (e2e; skipped without /usr/bin/chromium unless CI=true)"
(cd e2e && go test -timeout 10m ./...)
