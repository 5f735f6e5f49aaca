#!/usr/bin/env python3
"""Share of each source's benign dev rows that models flag: a guard for label changes.

A dev row is benign when it has at least one known label and every known label is
negative. Each model scores those rows with its own default policy (fast tier), and the
script prints one markdown row per source with the flagged share per model. Use it when a
dataset spec changes: a change that leaves a source with positives only can teach a head
that source's *style*, which the moderation-set CV (scripts/cv_moderation.py) cannot see
unless the moderation set holds text like it (docs/fast-tier.md, "Label conflicts with the
moderation set"). Build DATA_DIR with the specs *before* the change, so that "benign" means
what the old labels said.

Usage: scripts/benign_flags.py WARDEN_BIN DATA_DIR MODEL_DIR [MODEL_DIR ...]
"""
import json, os, subprocess, sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.split("\n\n")[-1])
    warden, data, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = [json.loads(l) for l in open(os.path.join(data, "dev.jsonl"))]
    benign = [r for r in rows if r["labels"] and all(v < 0.5 for v in r["labels"].values())]
    stdin = "".join(json.dumps({"text": r["text"]}) + "\n" for r in benign)
    env = dict(os.environ, WARDEN_TIER="fast")
    flagged = {}
    for m in models:
        out = subprocess.run([warden, "score", "--strict", "--model", m], input=stdin, capture_output=True,
                             text=True, env=env, check=True).stdout.splitlines()
        if len(out) != len(benign):
            sys.exit(f"{m}: {len(out)} results for {len(benign)} rows")
        flagged[m] = [json.loads(l)["flagged"] for l in out]
    print("| source | benign dev rows | " + " | ".join(models) + " |")
    print("|---|---:|" + "---:|" * len(models))
    for src in sorted({r["source"] for r in benign}):
        idx = [i for i, r in enumerate(benign) if r["source"] == src]
        cells = [f"{100 * sum(flagged[m][i] for i in idx) / len(idx):.1f}%" for m in models]
        print(f"| {src} | {len(idx)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
