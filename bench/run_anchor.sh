#!/usr/bin/env bash
# Run the shared anchor workload (../shared/anchor-bench/anchor_http.py) against a fresh
# `orion start` on SQLite or PostgreSQL: bench/run_anchor.sh sqlite|postgres [anchor args...]
# Results go to bench/results/anchor-<backend>.json (not committed). Needs httpx in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?sqlite or postgres}; shift
anchor=${ANCHOR:-../shared/anchor-bench/anchor_http.py}
port=${PORT:-4290}
home=$(mktemp -d)
mkdir -p bench/results
if [ "$backend" = postgres ]; then
    psql -X -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS orion_anchor WITH (FORCE)" \
        -c "CREATE DATABASE orion_anchor"
    export ORION_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/orion_anchor
fi
ORION_HOME=$home .venv/bin/orion start --port "$port" >"$home/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/api/health" >/dev/null; do sleep 0.05; done
pids=$(echo $server $(pgrep -P $server) | tr ' ' ',')
.venv/bin/python "$anchor" "http://127.0.0.1:$port/api" --server-pids "$pids" \
    --out "bench/results/anchor-$backend.json" "$@"
