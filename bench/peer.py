#!/usr/bin/env python3
"""Time alt-profanity-check's predict_prob on prepared JSONL sets (run inside the bench venv).

    peer.py RUNS BATCH NAME=FILE.jsonl...

For each set: load the texts, one untimed warm-up pass, then RUNS timed passes; prints one
line per set: `RESULT peer NAME docs bytes best_s median_s peak_rss_kb`. BATCH is how many
texts go to one predict_prob call (0 = the whole list in one call). Import time and file
reading are excluded. Thread pools are pinned to one thread by the caller
(OMP/OPENBLAS/MKL_NUM_THREADS=1); scoring runs on the main thread.
"""
import json
import resource
import statistics
import sys
import time

from profanity_check import predict_prob  # noqa: E402  (import excluded from timings)


def score(texts, batch):
    if batch <= 0:
        return float(predict_prob(texts).sum())
    s = 0.0
    for i in range(0, len(texts), batch):
        s += float(predict_prob(texts[i:i + batch]).sum())
    return s


def main():
    runs, batch = int(sys.argv[1]), int(sys.argv[2])
    for spec in sys.argv[3:]:
        name, path = spec.split("=", 1)
        with open(path, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        score(texts, batch)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            score(texts, batch)
            times.append(time.perf_counter() - t0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"RESULT peer {name} {len(texts)} {nbytes} {min(times):.6f} "
              f"{statistics.median(times):.6f} {rss}", flush=True)


if __name__ == "__main__":
    main()
