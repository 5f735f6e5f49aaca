#!/usr/bin/env python3
"""K-fold cross-validation of a training recipe on the in-domain moderation set.

The moderation set (even half, 841 rows after decontamination) is the only source labelled
with exactly our taxonomy, and its dev slice alone (~170 rows) is too small to compare
recipes. This script folds *all* its rows: for fold k, the model trains on every other
source's train split plus the moderation rows outside fold k, and scores fold k. The
out-of-fold scores of all folds are pooled, and AUPRC per category and for `any` is
computed over all 841 rows. Moderation rows outside the fold keep their train/dev place from
the real split, so dev (early stopping, calibration, thresholds) is as in production.

Usage: scripts/cv_moderation.py DATA_DIR WARDEN_BIN [--folds 5] [-- extra train args]
where DATA_DIR holds train.jsonl / dev.jsonl from `warden data build`.
"""
import hashlib, json, os, subprocess, sys, tempfile

def auprc(scores, labels):
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    npos = sum(labels)
    if npos == 0:
        return None
    tp = fp = 0
    ap = 0.0
    prev_recall = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            tp += pairs[j][1]
            fp += 1 - pairs[j][1]
            j += 1
        recall = tp / npos
        ap += (recall - prev_recall) * tp / (tp + fp)
        prev_recall = recall
        i = j
    return ap

CODES = ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
NAMES = ["sexual", "hate", "violence", "harassment", "self-harm", "sexual/minors", "hate/threatening", "violence/graphic"]

def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    data_dir, warden = args[0], args[1]
    folds = int(args[args.index("--folds") + 1]) if "--folds" in args else 5
    rows = {s: [json.loads(l) for l in open(os.path.join(data_dir, s + ".jsonl"))] for s in ("train", "dev")}
    mod = [r for s in rows for r in rows[s] if r["source"] == "openai-moderation"]
    mod_dev = {r["id"] for r in rows["dev"] if r["source"] == "openai-moderation"}
    # EXCLUDE=a,b drops whole sources (to measure what each contributes).
    excluded = set(filter(None, os.environ.get("EXCLUDE", "").split(",")))
    rest = {s: [r for r in rows[s] if r["source"] != "openai-moderation" and r["source"] not in excluded] for s in rows}
    # EXTRA_TRAIN=file.jsonl adds rows (e.g. unlabelled-domain negatives) to every fold's train split.
    extra_train = [json.loads(l) for l in open(os.environ["EXTRA_TRAIN"])] if os.environ.get("EXTRA_TRAIN") else []
    fold_of = lambda r: hashlib.sha256(r["text"].encode()).digest()[0] % folds
    pooled = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(folds):
            test = [r for r in mod if fold_of(r) == k]
            # Moderation rows outside fold k keep their place in the real split, so early
            # stopping, calibration and thresholds see in-domain dev rows as in production.
            train = rest["train"] + [r for r in mod if fold_of(r) != k and r["id"] not in mod_dev] + extra_train
            dev = rest["dev"] + [r for r in mod if fold_of(r) != k and r["id"] in mod_dev]
            for name, part in (("train", train), ("dev", dev), ("test", test)):
                with open(os.path.join(tmp, name + ".jsonl"), "w") as f:
                    for r in part:
                        f.write(json.dumps(r) + "\n")
            model = os.path.join(tmp, "model")
            env = dict(os.environ, CI="1")
            subprocess.run([warden, "train", "--out", model, "--train-file", os.path.join(tmp, "train.jsonl"),
                            "--dev-file", os.path.join(tmp, "dev.jsonl")] + extra,
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out = subprocess.run([warden, "score", "--model", model], input="".join(json.dumps({"text": r["text"]}) + "\n" for r in test),
                                 capture_output=True, text=True, check=True, env=env).stdout.splitlines()
            for r, line in zip(test, out):
                pooled.append((r["labels"], json.loads(line)["category_scores"]))
    if os.environ.get("DUMP"):
        with open(os.environ["DUMP"], "w") as f:
            for (lab, sc), r in zip(pooled, [r for k in range(folds) for r in mod if fold_of(r) == k]):
                f.write(json.dumps({"text": r["text"], "labels": lab, "scores": sc}) + "\n")
    result = {}
    for code, name in zip(CODES, NAMES):
        s = [sc[name] for lab, sc in pooled if code in lab]
        l = [int(lab[code] >= 0.5) for lab, sc in pooled if code in lab]
        result[code] = (auprc(s, l), sum(l))
    s = [max(sc.values()) for lab, sc in pooled if lab]
    l = [int(any(v >= 0.5 for v in lab.values())) for lab, sc in pooled if lab]
    result["any"] = (auprc(s, l), sum(l))
    print(" ".join(f"{k}={v[0]:.3f}" if v[0] is not None else f"{k}=NA" for k, v in result.items()),
          f"| rows={len(pooled)} extra={' '.join(extra)} excluded={','.join(sorted(excluded))}")

if __name__ == "__main__":
    main()
