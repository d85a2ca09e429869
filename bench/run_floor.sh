#!/usr/bin/env bash
# The floor of the stack on this machine, now: ../shared/anchor-bench/floor's bare Flask +
# peewee app (one trivial write per request) under gunicorn gthread, driven by its
# lifecycle client. bench/run_floor.sh sqlite|postgres [lifecycles] prints three rounds.
# Its figure is the yardstick for the anchor's lifecycles/s measured in the same session:
# this VM's speed drifts by a factor of two between days.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?sqlite or postgres}
lifecycles=${2:-1000}
floor=$(cd "${FLOOR:-../shared/anchor-bench/floor}" && pwd)
port=${PORT:-8901}
dir=$(mktemp -d)
if [ "$backend" = postgres ]; then
    psql -X -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS floor WITH (FORCE)" \
        -c "CREATE DATABASE floor"
fi
FLOOR_DB=$backend FLOOR_DIR=$dir .venv/bin/gunicorn -b "127.0.0.1:$port" -w 1 -k gthread \
    --threads 4 --chdir "$floor" floorapp:app >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$dir"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.05; done
for round in 1 2 3; do
    echo "floor $backend round $round: $(.venv/bin/python "$floor/floorclient.py" \
        "http://127.0.0.1:$port" "$lifecycles")"
done
