#!/usr/bin/env bash
# Throughput and latency on loopback (issue #7): the simulated gateway called directly, the same
# gateway behind a bare pass-through proxy (nginx, no checking), and claimgate in front of it
# (parse, history lookup, evaluation, forward, learning into history.sqlite, journal.sqlite: the real
# path). Load generator: wrk (Debian package) with benches/load.lua, each request a realistic 20-line
# 2204 from claimgate::gen (benches/load_envelope.rs) for one of VISITS registered visits, with a
# fresh msgid and fresh line numbers. Every answer is checked (HTTP 200 and infcode 0).
# The runs against a target walk VISITS (8,000) visits in turn, so no visit gets more than three
# uploads while a target takes under 24,000 requests, and the per-day and per-visit rules (which see
# the earlier uploads) never block: every answer is a forwarded one.
# Per target: 2 s warm-up, FIXED_S at ~RATE (1k) req/s (connections each pausing 10 ms between requests,
# as many as a 2 s calibration says offer RATE; wrk has no open-loop rate, so the achieved rate is shown),
# SAT_S at saturation (32 connections, no pause). Bounded: about 90 s in all. Loopback only.
# At saturation each line also splits the machine's CPU per request (/proc/stat and /proc/<pid>/stat):
# the simulated gateway, the proxy (nginx's master and workers, or claimgate), and the rest (wrk and its Lua,
# the kernel's loopback work not charged to either, anything else running). With both cores busy, a proxy's
# ratio to nginx is bounded by these: 0.7x nginx leaves claimgate 2 cores / (0.7 x nginx's req/s) minus the
# gateway's and the rest's share a request.
# Needs: wrk, nginx (apt-get install -y wrk nginx-light), python3.
# Usage: benches/load.sh   (builds claimgate and the example with the bench profile first, unless
# CLAIMGATE_BIN and ENVELOPE_BIN name built binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
FIXED_S=${FIXED_S:-10}
RATE=${RATE:-1000}
SAT_S=${SAT_S:-10}
VISITS=${VISITS:-8000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
for t in wrk nginx python3; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "load.sh: $t is missing (apt-get install -y wrk nginx-light)" >&2; exit 2; }
done
BIN=${CLAIMGATE_BIN:-$TARGET_DIR/release/claimgate}
ENVELOPE=${ENVELOPE_BIN:-$TARGET_DIR/release/examples/load_envelope}
if [ -z "${CLAIMGATE_BIN:-}" ] || [ -z "${ENVELOPE_BIN:-}" ]; then
  cargo build --quiet --profile bench --bin claimgate --example load_envelope
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. benches/ports.sh
# Registers VISITS visits (2201) through the given port; writes "mdtrt_id psn_no" lines.
register() {
  python3 benches/register.py "$1" "$VISITS" "$2"
}

"$ENVELOPE" rulesets/national-baseline > "$WORK/body.json"
SIM=$(free_port); NGX=$(free_port); CG=$(free_port)
"$BIN" sim-gateway --listen "127.0.0.1:$SIM" 2>/dev/null & PIDS+=($!)
wait_port "$SIM"
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream sim { server 127.0.0.1:$SIM; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGX
/usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
wait_port "$NGX"
mkdir -p "$WORK/data"
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$CG" --rules rulesets/national-baseline --data "$WORK/data" \
  --upstream "http://127.0.0.1:$SIM/fsi/api/rsfComIfsService/callService" 2>"$WORK/claimgate.log" & PIDS+=($!)
wait_port "$CG"

echo "load.sh $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name port tag connections seconds delay
  LOAD_BODY="$WORK/body.json" LOAD_VISITS="$WORK/visits-$1" LOAD_TAG="$3" LOAD_DELAY_MS="$6" LOAD_THREADS=2 \
    LOAD_START="$(cat "$WORK/start-$1" 2>/dev/null || echo 0)" LOAD_STATE="$WORK/start-$1" \
    wrk -t2 -c"$4" -d"$5"s -s benches/load.lua "http://127.0.0.1:$2" | grep '^RESULT'
}
# CPU ticks (user + system) of the given processes, all their threads counted (as cpu.sh reads
# claimgate's), and of the whole machine (busy, not idle).
ticks() {
  local s=0 p
  for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$s"
}
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
NGINX_PIDS="${PIDS[1]} $(pgrep -P "${PIDS[1]}" | tr '\n' ' ')"
for target in direct:$SIM nginx:$NGX claimgate:$CG; do
  name=${target%%:*}; port=${target##*:}
  case $name in direct) proxy=;; nginx) proxy=$NGINX_PIDS;; claimgate) proxy=${PIDS[2]};; esac
  register "$port" "$WORK/visits-$name"
  run "$name" "$port" "W${name:0:1}" 10 2 0 >/dev/null
  # The fixed rate: each connection sends, waits for the answer, pauses 10 ms. A 2 s calibration
  # at 2 connections gives the unloaded p50; RATE × (10 ms + p50) connections then offer ~RATE req/s.
  p50=$(run "$name" "$port" "C${name:0:1}" 2 2 10 | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  conns=$(python3 -c "import math; print(max(1, math.ceil($RATE * (10 + ${p50:-1}) / 1000)))")
  echo "$name fixed      $(run "$name" "$port" "F${name:0:1}" "$conns" "$FIXED_S" 10) connections=$conns"
  b0=$(busy); g0=$(ticks "${PIDS[0]}"); p0=$(ticks $proxy)
  sat=$(run "$name" "$port" "S${name:0:1}" 32 "$SAT_S" 0)
  b1=$(busy); g1=$(ticks "${PIDS[0]}"); p1=$(ticks $proxy)
  n=$(echo "$sat" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  cpu=$(python3 -c "n=max(1,${n:-0}); ms=1000/$HZ/n; b=$b1-$b0; g=$g1-$g0; p=$p1-$p0
print('cpu_ms_per_request: all=%.3f gateway=%.3f proxy=%.3f rest=%.3f' % (b*ms, g*ms, p*ms, (b-g-p)*ms))")
  echo "$name saturation $sat $cpu"
done
echo "claimgate data after the run: history $(du -h "$WORK/data/history.sqlite" 2>/dev/null | cut -f1), journal $(du -h "$WORK/data/journal.sqlite" 2>/dev/null | cut -f1)"
echo "claimgate resident after the run: $(grep VmRSS /proc/${PIDS[2]}/status | tr -s ' ')"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
