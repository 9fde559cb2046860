#!/usr/bin/env python3
"""Latency quantiles (bucket upper bounds) of claimgate's histograms between two /metrics scrapes, and the
embedded store's mean transactions per commit (its group commit) over the same interval.
Usage: python3 benches/histq.py BEFORE AFTER (files holding the two scrapes; used by benches/cpu.sh METRICS=1)
"""
import sys,re
def load(f):
    d={}
    for l in open(f):
        if l.startswith('#'): continue
        m=re.match(r'(\S+?)(\{.*\})? (\S+)$',l.strip())
        if m: d[m.group(1)+(m.group(2) or '')]=float(m.group(3))
    return d
a,b=load(sys.argv[1]),load(sys.argv[2])
for name in ['claimgate_request_seconds','claimgate_check_seconds','claimgate_upstream_seconds','claimgate_history_seconds']:
    keys=[k for k in b if k.startswith(name+'_bucket')]
    groups={}
    for k in keys:
        lab=re.sub(r',?le="[^"]*"','',k[len(name+'_bucket'):])
        le=re.search(r'le="([^"]*)"',k).group(1)
        groups.setdefault(lab,[]).append((float('inf') if le=='+Inf' else float(le), b[k]-a.get(k,0)))
    for lab,bs in groups.items():
        bs.sort(); tot=bs[-1][1]
        if tot<100: continue
        out=[]
        for q in (0.5,0.99,0.999):
            le=next(l for l,c in bs if c>=q*tot); out.append(f"p{q*100:g}<={le*1000:g}ms")
        print(name,lab,int(tot),' '.join(out))
name='claimgate_store_commit_transactions'
for k in sorted(b):
    if k.startswith(name+'_count'):
        lab=k[len(name+'_count'):]
        n=b[k]-a.get(k,0); t=b.get(name+'_sum'+lab,0)-a.get(name+'_sum'+lab,0)
        if n>0: print(name,lab,int(n),'commits',f"mean {t/n:.2f} transactions a commit")
