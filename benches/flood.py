#!/usr/bin/env python3
"""A flood of stalled connections from one loopback address (#19): N connections from SRC (e.g.
127.0.0.2), each sending a request head and the start of a 100,000-byte body, held HOLD seconds,
then closed. Prints claimgate's resident memory (PID) before, during and SETTLE seconds after.
Loopback only, bounded by N (at most the process's open-file limit) and HOLD + SETTLE.
Usage: python3 benches/flood.py PORT PID [N=9000] [SRC=127.0.0.2] [HOLD=14] [SETTLE=45]
"""
import socket, sys, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
src = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.2"
hold = float(sys.argv[5]) if len(sys.argv) > 5 else 14
settle = float(sys.argv[6]) if len(sys.argv) > 6 else 45
assert src.startswith("127."), "loopback only"


def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(l.split(":")[1].strip() for l in f if l.startswith("VmRSS"))


head = (b"POST /fsi/api/rsfComIfsService/callService HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
body = b'{"infno":"2204","msgid":"X","input":{"feedetail":['
print(f"before: {rss()}", flush=True)
socks, t0 = [], time.time()
for _ in range(n):
    try:
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(head + body)
        socks.append(s)
    except OSError:
        pass
print(f"opened {len(socks)} in {time.time() - t0:.1f} s; during: {rss()}", flush=True)
time.sleep(hold)
for s in socks:
    s.close()
time.sleep(settle)
print(f"after {settle:.0f} s: {rss()}", flush=True)
