#!/usr/bin/env bash
# Starts throwaway Redis and NATS (JetStream) servers for the integration
# tests, on free loopback ports with their data in a temp dir, so tests never
# touch a user's servers or data. Source it: it exports SLUICE_TEST_REDIS_URL
# and SLUICE_TEST_NATS_URL and defines stop_services, which stops only what
# it started. A server whose binary is missing is installed when running as
# root (CI); otherwise its tests skip, and say so.
#
# Set SLUICE_TEST_REDIS_URL / SLUICE_TEST_NATS_URL yourself to use servers you
# already run (use a database or account you do not mind the tests writing to).

services_dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-services.XXXXXX")
services_pids=()

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

ensure_binary() { # ensure_binary BIN DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing $2" >&2
    (apt-get update -qq >/dev/null 2>&1 || true)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || true
  fi
  command -v "$1" >/dev/null 2>&1
}

wait_port() { # wait_port PORT: up to 30 s
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

if [ -z "${SLUICE_TEST_REDIS_URL:-}" ] && ensure_binary redis-server redis-server; then
  port=$(free_port)
  mkdir -p "$services_dir/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$services_dir/redis" \
    --save "" --appendonly no --daemonize no --logfile "$services_dir/redis.log" &
  services_pids+=($!)
  if wait_port "$port"; then
    export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    echo "services: redis on 127.0.0.1:$port" >&2
  else
    echo "services: redis did not start:" >&2
    tail -5 "$services_dir/redis.log" >&2 || true
  fi
fi

if [ -z "${SLUICE_TEST_NATS_URL:-}" ] && ensure_binary nats-server nats-server; then
  port=$(free_port)
  nats-server -a 127.0.0.1 -p "$port" -js -sd "$services_dir/nats" -l "$services_dir/nats.log" &
  services_pids+=($!)
  if wait_port "$port"; then
    export SLUICE_TEST_NATS_URL="nats://127.0.0.1:$port"
    echo "services: nats on 127.0.0.1:$port" >&2
  else
    echo "services: nats did not start:" >&2
    tail -5 "$services_dir/nats.log" >&2 || true
  fi
fi

stop_services() {
  local pid
  for pid in "${services_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${services_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$services_dir"
}
