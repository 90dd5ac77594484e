#!/usr/bin/env bash
# CI smoke of the benchmark harness: checks that it works end to end (every target answers,
# no failed request or stream, usage reaches the control plane, scale and propagation run),
# not how fast anything is. Uses the debug binaries, which CI builds anyway; ~1 s per load
# point, about a minute in all after the build.
# Needs nginx and wrk (apt-get install -y nginx-light wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p tollgate-bench -p tollgate-control-plane -p tollgate-data-plane
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bin=target/debug/tollgate-bench
# The harness kills what it started on success, failure, SIGINT and SIGTERM.
timeout -s TERM 150 "$bin" load --quick --out "$out"
# The upstream over HTTPS: nginx and the data plane verify a throwaway CA.
timeout -s TERM 90 "$bin" load --quick --upstream-tls --concurrency 1,16 --out "$out/tls"
timeout -s TERM 60 "$bin" scale --quick --out "$out"
timeout -s TERM 60 "$bin" propagation --quick --out "$out"
for f in load scale propagation tls/load; do
    test -s "$out/$f.json" && test -s "$out/$f.md"
done
echo "bench smoke: ok"
