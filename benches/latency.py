#!/usr/bin/env python3
"""Added latency of claimgate over a direct call to the simulated gateway, loopback only.

Starts `claimgate sim-gateway` and `claimgate serve --upstream <sim>` on free 127.0.0.1 ports, sends the
same typical 20-line 2204 (fresh feedetl_sn each time) N times sequentially over one keep-alive connection
to each, and prints p50/p90/p99/p99.9 for both and their difference. Bounded: N requests each.
VISITS (default 200) outpatient visits of as many patients take the uploads in turn, so each patient's
history grows to N / VISITS uploads; VISITS=1 sends every upload to one visit of one patient (its history
grows to N × 20 lines: the cost of a growing history shows). claimgate's data goes to a temporary directory.
Usage: [VISITS=n] python3 benches/latency.py [path/to/claimgate] [N]
"""
import http.client, json, os, shutil, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/claimgate"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
VISITS = int(os.environ.get("VISITS", "200"))
DATA = tempfile.mkdtemp(prefix="claimgate-latency-")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")

def envelope(infno, msgid, inp):
    return {"infno": infno, "msgid": msgid, "mdtrtarea_admvs": "410700", "insuplc_admdvs": "410700", "recer_sys_code": "HIS",
            "infver": "V1.0", "opter_type": "1", "opter": "0153", "opter_name": "收费员", "inf_time": "2025-06-10 09:00:00",
            "fixmedins_code": "H41070100001", "fixmedins_name": "新乡市某县人民医院", "sign_no": "1", "input": inp}

def post(conn, body):
    t0 = time.perf_counter()
    conn.request("POST", "/fsi/api/rsfComIfsService/callService", body, {"content-type": "application/json"})
    r = conn.getresponse(); data = r.read()
    return time.perf_counter() - t0, json.loads(data)

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))] * 1e3

sim_port, cg_port = free_port(), free_port()
procs = [subprocess.Popen([BIN, "sim-gateway", "--listen", f"127.0.0.1:{sim_port}"], cwd=ROOT, stderr=subprocess.DEVNULL)]
wait(sim_port)
procs.append(subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{cg_port}", "--rules", "rulesets/national-baseline", "--data", DATA,
    "--upstream", f"http://127.0.0.1:{sim_port}/fsi/api/rsfComIfsService/callService"], cwd=ROOT, stderr=subprocess.DEVNULL,
    env={**os.environ, "RUST_LOG": "warn"}))
wait(cg_port)
try:
    results = {}
    for name, port in (("direct", sim_port), ("claimgate", cg_port)):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        visits = []
        for v in range(VISITS):
            psn = f"4100001100000000001{v:07}"
            _, r = post(conn, json.dumps(envelope("2201", f"{name}-reg{v}", {"data": {"psn_no": psn, "insutype": "310",
                "begntime": "2025-06-10 09:00:00", "dept_code": "100301", "caty": "A03"}})))
            visits.append((r["output"]["data"]["mdtrt_id"], psn))
        codes = [("001102000010000", 1, "20.00"), ("XC08CAA079A001010104321", 14, "1.50"), ("002503020010000", 1, "6.00"), ("003101000010000", 1, "10.00")]
        lat = []
        for i in range(N):
            visit, psn = visits[i % VISITS]
            lines = []
            for k in range(20):
                code, cnt, pric = codes[k % len(codes)] if k < 4 else ("002201000010000" if k % 2 else "002503010010000", 1, "5.00")
                amt = f"{cnt * float(pric):.2f}"
                lines.append({"feedetl_sn": f"{name}{i:06}{k:02}", "mdtrt_id": visit, "psn_no": psn,
                    "fee_ocur_time": "2025-06-10 09:10:00", "med_list_codg": code, "medins_list_codg": "H1", "det_item_fee_sumamt": amt,
                    "cnt": cnt, "pric": pric, "prd_days": 7, "bilg_dept_codg": "100301", "bilg_dept_name": "心血管内科",
                    "bilg_dr_codg": "D1", "bilg_dr_name": "王医生"})
            body = json.dumps(envelope("2204", f"{name}{i:08}", {"feedetail": lines}), ensure_ascii=False).encode()
            dt, resp = post(conn, body)
            assert resp["infcode"] == 0, resp
            if i >= 200:  # warm-up excluded
                lat.append(dt)
        results[name] = lat
    d, c = results["direct"], results["claimgate"]
    print(f"typical 20-line 2204, {len(d)} sequential requests each after 200 warm-up, {VISITS} visits in turn, one keep-alive connection, loopback")
    print(f"{'':10} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8}  (ms)")
    for name, xs in (("direct", d), ("claimgate", c)):
        print(f"{name:10} " + " ".join(f"{pct(xs, p):8.3f}" for p in (0.5, 0.9, 0.99, 0.999)))
    print("added     " + " ".join(f"{pct(c, p) - pct(d, p):8.3f}" for p in (0.5, 0.9, 0.99, 0.999)))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=10)
    shutil.rmtree(DATA, ignore_errors=True)
