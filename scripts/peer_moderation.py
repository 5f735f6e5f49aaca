#!/usr/bin/env python3
"""AUPRC of alt-profanity-check on the moderation rows of a `warden data build` output.

The peer outputs one profanity probability; as in the issue's yardstick it is used as the
score of every category (and of `any`). Run with the bench virtualenv's python:
  target/bench-venv/bin/python scripts/peer_moderation.py out/data
"""
import json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
from cv_moderation import auprc, CODES
from profanity_check import predict_prob

rows = [json.loads(l) for s in ("train", "dev") for l in open(os.path.join(sys.argv[1], s + ".jsonl"))]
rows = [r for r in rows if r["source"] == "openai-moderation"]
p = predict_prob([r["text"] for r in rows])
out = {}
for c in CODES:
    s = [float(x) for x, r in zip(p, rows) if c in r["labels"]]
    l = [int(r["labels"][c] >= 0.5) for r in rows if c in r["labels"]]
    out[c] = auprc(s, l)
l = [int(any(v >= 0.5 for v in r["labels"].values())) for r in rows if r["labels"]]
s = [float(x) for x, r in zip(p, rows) if r["labels"]]
out["any"] = auprc(s, l)
print(" ".join(f"{k}={v:.3f}" for k, v in out.items()), f"| peer alt-profanity-check, rows={len(rows)}")
