#!/usr/bin/env bash
# Runs the HA tests: three `sluice serve` hubs on a highly available log
# (a 3-server NATS cluster with an R3 stream; Redis with 2 replicas and 3
# Sentinels, with wait=1 and wait=0; a Redis Cluster of 3 primaries with a
# replica each) while the log's leader is killed under load. The tests start
# every server themselves (loopback ports, temp dirs); this script only
# makes sure the binaries are there: services.sh builds or finds a
# nats-server 2.11+ (SLUICE_TEST_NATS_SERVER) and installs redis-server
# (with redis-cli, and Sentinel mode built in) when running as root.
# `make test-ha` and CI run it; it takes about 1-2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh
trap stop_services EXIT

echo "== HA tests (SLUICE_TEST_HA=1)"
SLUICE_TEST_HA=1 SLUICE_REQUIRE_SERVICES=1 go test -count=1 -timeout 15m -v -run '^TestHA' ./cmd/sluice/ 2>&1 |
  grep -v '^=== \(RUN\|PAUSE\|CONT\)'
