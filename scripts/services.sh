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
# It also exports SLUICE_TEST_NATS_SERVER, the nats-server binary it runs.

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

wait_port() { # wait_port PORT [PID]: up to 30 s; fails at once if PID exits
  for _ in $(seq 1 300); do
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
      return 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_server NAME CMD...: runs CMD (with @PORT@ in its arguments replaced
# by a free port) until it listens, on another port when it could not bind
# the one picked (another process took it meanwhile), up to 5 times. It
# sets started_port.
start_server() {
  local name=$1 attempt pid
  shift
  for attempt in 1 2 3 4 5; do
    started_port=$(free_port) || return 1
    "${@//@PORT@/$started_port}" &
    pid=$!
    # The port answering may be another process's, which took it first:
    # then ours exits at once, having failed to bind.
    if wait_port "$started_port" "$pid" && sleep 0.3 && kill -0 "$pid" 2>/dev/null; then
      services_pids+=("$pid")
      return 0
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "services: $name did not start on port $started_port (attempt $attempt)" >&2
  done
  return 1
}

if [ -z "${SLUICE_TEST_REDIS_URL:-}" ] && ensure_binary redis-server redis-server; then
  mkdir -p "$services_dir/redis"
  if start_server redis redis-server --port @PORT@ --bind 127.0.0.1 --dir "$services_dir/redis" \
    --save "" --appendonly no --daemonize no --logfile "$services_dir/redis.log"; then
    export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$started_port/0"
    echo "services: redis on 127.0.0.1:$started_port" >&2
  else
    echo "services: redis did not start:" >&2
    tail -5 "$services_dir/redis.log" >&2 || true
  fi
fi

# The NATS store's History reads with batched direct gets from nats-server
# 2.11 on (older servers take the slower consumer path). When the
# nats-server on PATH (Debian's is 2.9) is older and Go is there, one is
# built from the Go module proxy once into ${XDG_CACHE_HOME:-~/.cache}/
# sluice/bin (about 3 minutes with cold Go caches, seconds with warm ones)
# and used instead; if that fails, the one on PATH is.
# SLUICE_NATS_SERVER_VERSION picks the version built.
nats_server_version=${SLUICE_NATS_SERVER_VERSION:-v2.15.2}

nats_at_least_2_11() { # nats_at_least_2_11 BIN
  local v major minor
  v=$("$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
  read -r major minor <<<"$v"
  [ -n "${minor:-}" ] && { [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 11 ]; }; }
}

nats_server_bin() { # prints the nats-server to run, if any
  local onpath dir cached tmp
  onpath=$(command -v nats-server 2>/dev/null || true)
  if [ -n "$onpath" ] && nats_at_least_2_11 "$onpath"; then
    echo "$onpath"
    return 0
  fi
  dir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sluice/bin"
  cached="$dir/nats-server-$nats_server_version"
  if [ ! -x "$cached" ] && command -v go >/dev/null 2>&1 && mkdir -p "$dir" 2>/dev/null &&
    tmp=$(mktemp -d "$dir/.build.XXXXXX" 2>/dev/null); then
    echo "services: building nats-server $nats_server_version (${onpath:-no nats-server on PATH}${onpath:+ is older than 2.11}); once, into $dir" >&2
    local start=$SECONDS
    if (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false GOWORK=off go install "github.com/nats-io/nats-server/v2@$nats_server_version") >"$services_dir/nats-build.log" 2>&1 &&
      mv -f "$tmp/nats-server" "$cached"; then
      echo "services: built nats-server $nats_server_version in $((SECONDS - start)) s" >&2
    else
      echo "services: building nats-server $nats_server_version failed${onpath:+; using $onpath}:" >&2
      tail -5 "$services_dir/nats-build.log" >&2 || true
    fi
    rm -rf "$tmp"
  fi
  if [ -x "$cached" ]; then
    echo "$cached"
  elif [ -n "$onpath" ]; then
    echo "$onpath"
  fi
}

if [ -z "${SLUICE_TEST_NATS_URL:-}" ]; then
  ensure_binary nats-server nats-server || true
  nats_bin=$(nats_server_bin) || true
fi
if [ -z "${SLUICE_TEST_NATS_URL:-}" ] && [ -n "${nats_bin:-}" ]; then
  if start_server nats "$nats_bin" -a 127.0.0.1 -p @PORT@ -js -sd "$services_dir/nats" -l "$services_dir/nats.log"; then
    export SLUICE_TEST_NATS_URL="nats://127.0.0.1:$started_port"
    # Tests that start a nats-server of their own run this one too.
    export SLUICE_TEST_NATS_SERVER="$nats_bin"
    echo "services: nats on 127.0.0.1:$started_port ($("$nats_bin" --version 2>/dev/null || echo "$nats_bin"))" >&2
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
