#!/usr/bin/env python3
"""Registers N outpatient visits (2201) through a claimgate or gateway port on loopback and writes
"mdtrt_id psn_no" lines to OUT, for benches/load.lua. Used by benches/load.sh and benches/cpu.sh.
Usage: python3 benches/register.py PORT N OUT
"""
import http.client, json, sys

port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
with open(out, "w") as f:
    for i in range(n):
        psn = f"41000011000{port:05}{i:010}"
        env = {"infno": "2201", "msgid": f"REG{port:05}{i:010}", "mdtrtarea_admvs": "410700", "insuplc_admdvs": "410700",
               "recer_sys_code": "HIS", "infver": "V1.0", "opter_type": "1", "opter": "0153", "opter_name": "收费员",
               "inf_time": "2025-06-10 09:00:00", "fixmedins_code": "H41070100001", "fixmedins_name": "新乡市某县人民医院",
               "sign_no": "1", "input": {"data": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:00:00",
               "dept_code": "100301", "caty": "A03"}}}
        conn.request("POST", "/fsi/api/rsfComIfsService/callService", json.dumps(env).encode(), {"content-type": "application/json"})
        r = json.loads(conn.getresponse().read())
        assert r["infcode"] == 0, r
        f.write(f'{r["output"]["data"]["mdtrt_id"]} {psn}\n')
