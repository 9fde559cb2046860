#!/usr/bin/env bash
# CPU per claim at saturation (issue #7 A/B runs): the simulated gateway and claimgate serve on loopback
# (free ports), VISITS registered visits, wrk -c CONN for DUR seconds with benches/load.lua; prints wrk's
# RESULT line, claimgate's CPU ticks over the run (/proc/<pid>/stat) and its data files. PERF=1 also records
# a perf profile (call graphs) of claimgate into perf.data; METRICS=1 prints the quantiles of claimgate's
# own latency histograms over the run (request, check, upstream, history; benches/histq.py).
# Bounded: DUR (10) + ~10 s. Loopback only.
# Usage: BIN=target/release/claimgate benches/cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/claimgate}
ENVELOPE=${ENVELOPE_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/load_envelope}
. benches/ports.sh
SIM=$(free_port); CG=$(free_port)
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf $W' EXIT
"$BIN" sim-gateway --listen 127.0.0.1:$SIM 2>/dev/null &
wait_port "$SIM"
mkdir -p $W/data
RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:$CG --rules rulesets/national-baseline --data $W/data \
  --upstream http://127.0.0.1:$SIM/fsi/api/rsfComIfsService/callService 2>$W/cg.log &
CGPID=$!
wait_port "$CG"
"$ENVELOPE" rulesets/national-baseline > $W/body.json 2>/dev/null
python3 benches/register.py "$CG" "${VISITS:-8000}" "$W/visits"
# The runs walk the visits in turn (see load.sh): no visit gets an upload the per-visit rules block.
run() { LOAD_BODY=$W/body.json LOAD_VISITS=$W/visits LOAD_TAG=$1 LOAD_DELAY_MS=${DELAY:-0} LOAD_THREADS=2 \
  LOAD_START="$(cat $W/start 2>/dev/null || echo 0)" LOAD_STATE=$W/start wrk -t2 -c${CONN:-32} -d$2s -s benches/load.lua http://127.0.0.1:$CG | grep '^RESULT'; }
run W 3 >/dev/null
[ "${METRICS:-0}" = 1 ] && curl -s http://127.0.0.1:$CG/metrics > $W/m0
T0=$(awk '{print $14+$15}' /proc/$CGPID/stat)
if [ "${PERF:-0}" = 1 ]; then
  perf record -F 999 --call-graph dwarf,32768 -p $CGPID -o perf.data -- sleep 8 >/dev/null 2>&1 &
  PP=$!
fi
run S ${DUR:-10}
T1=$(awk '{print $14+$15}' /proc/$CGPID/stat)
[ "${PERF:-0}" = 1 ] && wait $PP
echo "claimgate cpu ticks during run: $((T1-T0))"
if [ "${METRICS:-0}" = 1 ]; then
  curl -s http://127.0.0.1:$CG/metrics > $W/m1
  python3 benches/histq.py $W/m0 $W/m1
fi; ls -la $W/data | grep -i "sqlite"
