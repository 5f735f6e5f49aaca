#!/usr/bin/env python3
"""Re-derives the per-category thresholds of policies/curate/default.toml for a model.

For each category the threshold is the larger of (a) the model's own moderation policy
threshold (`policy.toml` in the model directory: F1-optimal on the training data's dev split)
and (b) the 99.99th percentile of the model's chunk scores on clean encyclopedic text, the
Wikipedia files AD/wiki_50..wiki_99 (the default model trains on paragraphs of
AD/wiki_00..wiki_49; the evaluation in docs/curate.md uses the AB and AC files), rounded up
to two decimals. (b) bounds false removals on long clean documents at about 1e-4 per chunk
and category.

Usage: scripts/curate_thresholds.py MODEL_DIR [--warden target/release/warden]
       [--data ../shared/data] [--work DIR]
Prints the percentiles and a `thresholds = { ... }` line for the policy.
"""
import argparse, glob, gzip, importlib.util, json, math, os, re, subprocess, sys, tempfile, tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--warden", default=str(HERE.parent / "target/release/warden"))
    ap.add_argument("--data", default=os.environ.get("WARDEN_DATA", str(HERE.parent.parent / "shared/data")))
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("mcc", HERE / "make_curate_corpus.py")
    mcc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mcc)
    work = Path(a.work or tempfile.mkdtemp(prefix="curate-thresholds-"))
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    files = [f for f in sorted(glob.glob(f"{a.data}/wikipedia-en-sample/text/AD/wiki_*.gz"))
             if int(re.search(r"wiki_(\d+)", f).group(1)) >= 50]
    if len(files) != 50:
        sys.exit(f"expected 50 files AD/wiki_50..99 under {a.data}, found {len(files)}")
    for f in files:
        # The same document rendering as make_curate_corpus.py: paragraphs joined by a blank line.
        with gzip.open(corpus / (Path(f).name[:-3] + ".jsonl.gz"), "wt") as out:
            for pageid, url, title, paras in mcc.read_wiki(Path(f)):
                out.write(json.dumps({"id": f"wiki-{pageid}", "url": url, "title": title, "text": "\n\n".join(paras)}) + "\n")
    run = work / "run"
    subprocess.run([a.warden, "curate", "--input", str(corpus / "*.jsonl.gz"), "--output", str(run), "--model", a.model],
                   check=True, stderr=subprocess.DEVNULL)
    manifest = json.load(open(Path(a.model) / "manifest.json"))
    codes = [c["code"] for c in manifest["taxonomy"]["category"]]
    policy = tomllib.load(open(Path(a.model) / "policy.toml", "rb"))["thresholds"]
    scores = [[] for _ in codes]
    for f in glob.glob(str(run / "attributes" / "*.gz")):
        for line in gzip.open(f, "rt"):
            for chunk in json.loads(line).get("chunks", []):
                for i, s in enumerate(chunk.get("fast", [])):
                    scores[i].append(s)
    n = len(scores[0])
    print(f"{len(files)} files, {n} chunks; model {a.model}")
    out = {}
    for i, code in enumerate(codes):
        v = sorted(scores[i])
        p = v[min(n - 1, math.ceil(0.9999 * n) - 1)]
        t = math.ceil(max(p, policy[code]) * 100) / 100
        out[code] = t
        print(f"{code:3} p99.99 {p:.4f}  policy {policy[code]:.4f}  -> {t:.2f}")
    print("thresholds = { " + ", ".join(f"{k} = {v:g}" for k, v in out.items()) + " }")


if __name__ == "__main__":
    main()
