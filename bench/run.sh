#!/usr/bin/env bash
# The project's own benchmark, all on loopback (docs/benchmarks.md):
#   bench/run.sh              release build, then load (3 s per point, 5 rounds), scale and
#                             propagation; results in bench/results/
#   bench/run.sh load --quick any subcommand and options of tollgate-bench instead
# Needs nginx and wrk (apt-get install -y nginx-light wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tollgate-bench -p tollgate-control-plane -p tollgate-data-plane
bin=target/release/tollgate-bench
if [ $# -gt 0 ]; then
    exec "$bin" "$@"
fi
"$bin" load
"$bin" scale
"$bin" propagation
