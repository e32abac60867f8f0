#!/bin/bash
# A/B of builds under the small-append load, side by side. Each build is a copy of dist/
# (e.g. `cp -r dist /tmp/ab/B`, with /tmp/ab/node_modules linked to this repo's); each
# round runs every build once, in rotating order, on a fresh data dir. Per run it prints
# req/s and CPU microseconds per request: the whole server, its main thread, and the load
# generator (which shares the two cores); the last lines are the means.
#   bash bench/tools/ab.sh ROUNDS DIR1 DIR2 ...
# env: DUR seconds (6), NV versions (100), FSYNC mode (batch), NODE_FLAGS for every server.
# A build dir may hold a NODEFLAGS file (node flags for that build only), an ARGS file
# (server options, e.g. `--index false`) or an FSYNC file.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
R=$1; shift; VS=("$@")
DUR=${DUR:-6}
cpu() { awk '{print $14+$15}' "$1"; } # user+system clock ticks of /proc/.../stat
for i in $(seq "$R"); do
  n=${#VS[@]}; ORDER=()
  for k in $(seq 0 $((n - 1))); do ORDER+=("${VS[$(((k + i) % n))]}"); done
  for V in "${ORDER[@]}"; do
    D=$(mktemp -d); LOG=$(mktemp)
    MODE=$(cat "$V/FSYNC" 2>/dev/null || echo "${FSYNC:-batch}")
    # shellcheck disable=SC2046
    node ${NODE_FLAGS:-} $(cat "$V/NODEFLAGS" 2>/dev/null) "$V/server.js" --port 0 --data-dir "$D" --fsync "$MODE" $(cat "$V/ARGS" 2>/dev/null) >"$LOG" 2>&1 &
    PID=$!
    for _ in $(seq 100); do grep -q listening "$LOG" && break; sleep 0.1; done
    URL=$(grep -o 'http://[^ ]*' "$LOG")
    node "$HERE/load.mjs" "$URL" 1 >/dev/null
    OUT=$(mktemp)
    node "$HERE/load.mjs" "$URL" "$((DUR + 2))" "${NV:-100}" >"$OUT" &
    CLIENT=$!
    # The middle DUR seconds of the load: no ramp-up, no tail.
    sleep 1
    S0=$(cpu "/proc/$PID/stat"); M0=$(cpu "/proc/$PID/task/$PID/stat"); C0=$(cpu "/proc/$CLIENT/stat")
    sleep "$DUR"
    S1=$(cpu "/proc/$PID/stat"); M1=$(cpu "/proc/$PID/task/$PID/stat"); C1=$(cpu "/proc/$CLIENT/stat")
    wait "$CLIENT"
    RPS=$(awk '{print $2}' "$OUT")
    per() { echo $((($2 - $1) * 10000 / (RPS * DUR + 1))); } # ticks are 10 ms
    echo "$V $RPS $(per "$S0" "$S1") $(per "$M0" "$M1") $(per "$C0" "$C1")"
    kill -INT $PID; wait $PID 2>/dev/null; rm -rf "$D" "$LOG" "$OUT"
  done
done | awk '
  BEGIN { print "build req/s server_us/req main_us/req client_us/req" }
  { print; n[$1]++; r[$1] += $2; s[$1] += $3; m[$1] += $4; c[$1] += $5 }
  END { for (v in n) printf "mean %s req/s %.0f server %.1f main %.1f client %.1f us/req\n", v, r[v]/n[v], s[v]/n[v], m[v]/n[v], c[v]/n[v] }'
