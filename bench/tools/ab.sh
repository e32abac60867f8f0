#!/bin/bash
# A/B of builds under the small-append load, side by side. Each build is a copy of dist/
# (e.g. `cp -r dist /tmp/ab/B`, with /tmp/ab/node_modules linked to this repo's); each
# round runs every build once, in rotating order, on a fresh data dir, and prints req/s
# and the server's CPU ms per 1k requests; the last lines are the means.
#   bash bench/tools/ab.sh ROUNDS DIR1 DIR2 ...   (env: DUR seconds, NV versions, FSYNC mode)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
R=$1; shift; VS=("$@")
for i in $(seq "$R"); do
  n=${#VS[@]}; ORDER=()
  for k in $(seq 0 $((n - 1))); do ORDER+=("${VS[$(((k + i) % n))]}"); done
  for V in "${ORDER[@]}"; do
    D=$(mktemp -d); LOG=$(mktemp)
    node "$V/server.js" --port 0 --data-dir "$D" --fsync "${FSYNC:-batch}" >"$LOG" 2>&1 &
    PID=$!
    for _ in $(seq 100); do grep -q listening "$LOG" && break; sleep 0.1; done
    URL=$(grep -o 'http://[^ ]*' "$LOG")
    node "$HERE/load.mjs" "$URL" 1 >/dev/null
    T0=$(awk '{print $14+$15}' "/proc/$PID/stat")
    OUT=$(node "$HERE/load.mjs" "$URL" "${DUR:-6}" "${NV:-100}")
    T1=$(awk '{print $14+$15}' "/proc/$PID/stat")
    RPS=$(echo "$OUT" | awk '{print $2}')
    echo "$V $RPS $(((T1 - T0) * 10 * 1000 / (RPS * ${DUR:-6} + 1)))"
    kill -INT $PID; wait $PID 2>/dev/null; rm -rf "$D" "$LOG"
  done
done | awk '{print; n[$1]++; r[$1]+=$2; c[$1]+=$3} END {for (v in n) printf "mean %s req/s %.0f cpu_ms/1k %.1f\n", v, r[v]/n[v], c[v]/n[v]}'
