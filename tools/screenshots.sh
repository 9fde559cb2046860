#!/usr/bin/env bash
# Regenerates the office and report screenshots in docs/screenshots/ from a generated month of a
# county hospital's traffic, sent through claimgate's proxy to the simulated gateway as the HIS
# would send it (the same path the tests take: tests/api/month.rs).
#
# Needs: a debug build (built here), python3 (sends the requests), chromium (renders the pages) and
# a Chinese font (Debian: apt-get install -y chromium fonts-wqy-microhei).
# Usage: tools/screenshots.sh [PATIENTS] [DAYS]
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS="${1:-300}"
DAYS="${2:-30}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
OUT=docs/screenshots
TOKEN="screenshot-$RANDOM$RANDOM"

if ! fc-list :lang=zh | grep -q .; then
    echo "no Chinese font: the screenshots would show boxes (apt-get install -y fonts-wqy-microhei)" >&2
    exit 1
fi
cargo build --quiet
BIN="$PWD/target/debug/claimgate"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    # KEEP_WORK=1 keeps the month, the data directory, the report and the PDF for a look.
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SIM_PORT="$(free_port)"
PORT="$(free_port)"

"$BIN" gen-traffic --seed 21 --patients "$PATIENTS" --days "$DAYS" -o "$WORK/month.jsonl" \
    --catalogue "$WORK/catalogue.csv"
"$BIN" sim-gateway --listen "127.0.0.1:$SIM_PORT" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
# Configured as the hospital would be: a 二级 hospital, its 医保目录对照 naming the items its fee
# uploads send as codes.
CLAIMGATE_ADMIN_TOKEN="$TOKEN" CLAIMGATE_INSTITUTION_TIER=2 CLAIMGATE_ITEM_CATALOGUE="$WORK/catalogue.csv" "$BIN" serve --listen "127.0.0.1:$PORT" \
    --upstream "http://127.0.0.1:$SIM_PORT/fsi/api/rsfComIfsService/callService" \
    --rules rulesets/national-baseline --rules rulesets/examples/xinxiang-2025 \
    --data "$WORK/data" >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.2
done

# The month's requests, in order, through the proxy.
python3 - "$WORK/month.jsonl" "http://127.0.0.1:$PORT/fsi/api/rsfComIfsService/callService" <<'PY'
import json, sys, urllib.request
path, url = sys.argv[1], sys.argv[2]
n = 0
with open(path, encoding="utf-8") as f:
    for line in f:
        body = json.dumps(json.loads(line)["request"], ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        urllib.request.urlopen(req).read()
        n += 1
print(f"{n} requests sent through the proxy", file=sys.stderr)
PY

mkdir -p "$OUT"
chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --virtual-time-budget=10000 \
        --user-data-dir="$WORK/profile-$1" "${@:2}" 2>/dev/null
}
# The office page: a local form logs the browser in (the token in no URL), then the page renders.
cat >"$WORK/login.html" <<HTML
<!DOCTYPE html><html><body><form method="post" action="http://127.0.0.1:$PORT/office/login"><input type="hidden" name="token" value="$TOKEN"></form><script>document.forms[0].submit()</script></body></html>
HTML
chrome office --window-size=1280,2600 --screenshot="$OUT/office.png" "file://$WORK/login.html"

# Stop claimgate (the journal flushes), then the month's report as HTML, a screenshot and a PDF.
kill -TERM "$SERVE"
wait "$SERVE" || true
FROM=2025-11-01
TO="$(date -d "$FROM + $((DAYS - 1)) days" +%F)"
"$BIN" report --from "$FROM" --to "$TO" --data "$WORK/data" -o "$WORK/report.html"
chrome report --window-size=1100,4200 --screenshot="$OUT/report.png" "file://$WORK/report.html"
chrome pdf --no-pdf-header-footer --print-to-pdf="$WORK/report.pdf" "file://$WORK/report.html"
echo "written: $OUT/office.png $OUT/report.png (the report printed to $(stat -c %s "$WORK/report.pdf") bytes of PDF)"
