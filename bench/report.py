#!/usr/bin/env python3
"""Turn the RESULT lines collected by bench/run.sh into one markdown table.

    report.py RESULTS_FILE META_FILE

RESULTS_FILE: lines `RESULT <kind> <set> <docs> <bytes> <best_s> <median_s> <peak_rss_kb>`
with kind in warm|cold|warm-ngrams (in-process bench), cli (`warden score`), peer
(alt-profanity-check), train (`warden train`). META_FILE: `key<TAB>value` lines.
"""
import sys

TARGET = 20_000  # one-kilobyte documents per second per core (the target)

SETS = [("kb", "1 KB docs"), ("short", "short texts")]
KINDS = [
    ("warm", "warden in-process `FastModel::score_one`, warm word cache"),
    ("cold", "warden in-process `FastModel::score_one`, cold word cache"),
    ("warm-ngrams", "warden in-process, warm word cache, n-gram heads alone (static probe off)"),
    ("cli", "`warden score` CLI end-to-end (JSONL in/out, process start + model load)"),
    ("peer", "alt-profanity-check `predict_prob`"),
]


def main():
    res, meta = {}, {}
    with open(sys.argv[1]) as f:
        for line in f:
            p = line.split()
            if len(p) == 8 and p[0] == "RESULT":
                res[(p[1], p[2])] = dict(docs=int(p[3]), bytes=int(p[4]), best=float(p[5]),
                                         median=float(p[6]), rss_kb=int(p[7]))
    with open(sys.argv[2]) as f:
        for line in f:
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                meta[k] = v

    out = []
    w = out.append
    w(f"## Warden benchmark — {meta.get('date', '?')}")
    w("")
    w(f"- Machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, "
      f"{meta.get('mem', '?')} RAM, {meta.get('kernel', '?')}")
    w(f"- Load average before / after: {meta.get('load_before', '?')} / {meta.get('load_after', '?')}"
      f"{' — other processes were busy: ' + meta['busy'] if meta.get('busy') else ''}")
    w(f"- Warden {meta.get('rev', '?')}, {meta.get('rustc', '?')}; model: {meta.get('model', '?')}")
    w(f"- Peer: {meta.get('peer', '?')}, `predict_prob` {meta.get('peer_batch', '?')}")
    if meta.get("static_probe"):
        w(f"- Model: {meta['static_probe']}; training is timed with `--static-probe all`")
    w(f"- Texts: {meta.get('texts', '?')}")
    w(f"- Each row: {meta.get('protocol', '?')}")
    w("")
    w("| Measurement | Texts | Time (best) | docs/s per core (best) | docs/s per core (median) "
      "| MB/s per core (best) | vs alt-profanity-check (speed ratio, >1 = warden faster) | Peak RSS |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s, sname in SETS:
        peer = res.get(("peer", s))
        for k, kname in KINDS:
            r = res.get((k, s))
            if r is None:
                continue
            dps = r["docs"] / r["best"]
            med = r["docs"] / r["median"]
            mbs = r["bytes"] / 1e6 / r["best"]
            if k == "peer":
                ratio = "1.00× (peer)"
            elif peer:
                ratio = f"{dps / (peer['docs'] / peer['best']):.1f}×"
            else:
                ratio = "n/a"
            rss = f"{r['rss_kb'] / 1024:.0f} MB" + (" ¹" if k in ("warm", "cold", "warm-ngrams") else "")
            w(f"| {sname}: {kname} | {r['docs']:,} | {r['best']:.3f} s | {dps:,.0f} | {med:,.0f} "
              f"| {mbs:.2f} | {ratio} | {rss} |")
    sw, sp = res.get(("startup", "warden")), res.get(("startup", "peer"))
    if sw:
        ratio = f"{sp['best'] / sw['best']:.1f}×" if sp else "n/a"
        w(f"| startup: `warden score x` (process start + model load + 1 text) | 1 | {sw['best']:.3f} s "
          f"| — | — | — | {ratio} | {sw['rss_kb'] / 1024:.0f} MB |")
    if sp:
        w(f"| startup: peer (Python start + `import profanity_check` + `predict_prob` on 1 text) "
          f"| 1 | {sp['best']:.3f} s | — | — | — | 1.00× (peer) | {sp['rss_kb'] / 1024:.0f} MB |")
    t = res.get(("train", "all"))
    if t:
        w(f"| `warden train` (default data from ../shared/data, {meta.get('train_threads', '?')} threads) "
          f"| — | {t['best']:.1f} s (median {t['median']:.1f} s) | — | — | — "
          f"| — (peer ships no trainer) | {t['rss_kb'] / 1024:.0f} MB |")
    w("")
    w("¹ The in-process bench scores both sets in one process; its peak RSS (VmHWM) is for "
      "the whole process so far, texts held in memory included.")
    w("")
    for k, label in (("warm", "in-process (warm cache)"), ("cold", "in-process (cold cache)"),
                     ("cli", "`warden score` CLI")):
        r = res.get((k, "kb"))
        if r:
            dps = r["docs"] / r["best"]
            verdict = "meets" if dps >= TARGET else "MISSES"
            w(f"- Target ≥ {TARGET:,} one-kilobyte docs/s per core: {label} {dps:,.0f} → {verdict} it.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
