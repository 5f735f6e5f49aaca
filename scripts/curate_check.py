#!/usr/bin/env python3
"""Check a `warden curate` run against the truth written by scripts/make_curate_corpus.py.

Usage:
  scripts/curate_check.py RUN_DIR TRUTH.jsonl [--json OUT] [--corpus DIR] [--no-outputs] [--partial]
                          [--min-toxic-removed F] [--max-control-removed F]
                          [--max-wiki-removed F] [--min-mixed-removed F] [--min-mixed-redacted F]
                          [--min-span-recall F] [--min-span-precision F]
                          [--min-category-recall F [--min-category-n N]]

Reads every RUN_DIR/attributes/*.jsonl.gz (one line per document) and RUN_DIR/errors/*.jsonl
(one line per unreadable input line), discovering files by glob (names are not relied on), and
reports:
  - toxic docs: fraction removed (drop or redact); per category code, recall = share of the
    toxic docs positive on that code whose reasons name that code, and how many were removed
    only for other categories; per source dataset;
  - controls (benign dev rows): false-removal rate, per source, the highest-scoring removals;
  - wiki docs (ids "wiki-..."): removal rate overall and per category, with the 10
    highest-scoring removed doc ids per category (the over-filtering cases to read);
  - mixed docs (a wiki doc with one inserted toxic paragraph): share redacted / dropped; for
    redacted ones the byte overlap between the union of `redacted` spans and the truth span
    (precision, recall) and whether the rest of the document was kept;
  - malformed shard: every expected error present in errors/*.jsonl with the expected kind
    (matched by line number), the empty line skipped silently, the valid docs present.
Unless --no-outputs is given it also reads kept/*.jsonl.gz and removed/*.jsonl.gz: every
document must be in kept (keep, redact) or removed (drop); kept truth docs must be the original
record unchanged, dropped ones must carry the original record. The original records come from
--corpus (default: the `corpus` folder next to TRUTH.jsonl) when it exists; corpus.json next to
TRUTH.jsonl (if present) lets the check see documents lost from any shard of the run. A truth
shard with no document and no error in the run is a failure (the shard was lost), unless
--partial says the run covered only some shards.

Exit status: 0 when all hard invariants hold and every given threshold is met; 1 otherwise;
2 for usage errors. Hard invariants: no truth id missing from attributes, no duplicate id in
attributes, every malformed line reported (with the expected kind, at the expected line), no
malformed line turned into a document, no unexpected read error, no document of a shard of the
run lost, valid actions only, and (with outputs) every document in the right output file with
kept/dropped originals unchanged. Accuracy numbers are reported, not asserted, unless a
threshold flag asks for it. Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

CODES = ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
NAMES = ["sexual", "hate", "violence", "harassment", "self-harm", "sexual/minors",
         "hate/threatening", "violence/graphic"]
_CAT = {}
for _c, _n in zip(CODES, NAMES):
    _CAT[_c.lower()] = _c
    _CAT[re.sub(r"[^a-z0-9]", "", _n)] = _c
ACTIONS = ("keep", "drop", "redact")

# Accepted spellings of each expected error kind (compared lower-case, alphanumerics only).
KIND_ALIASES = {
    "invalid_json": {"invalidjson", "json", "jsonerror", "parseerror", "badjson", "malformedjson"},
    "not_an_object": {"notanobject", "notobject", "nonobject", "notajsonobject", "notjsonobject"},
    "missing_text": {"missingtext", "textmissing", "notext", "nulltext", "textnull"},
    "text_not_string": {"textnotstring", "textnotastring", "textnotstr", "textisnotastring",
                        "invalidtexttype", "texttype", "nonstringtext", "textnonstring"},
    "invalid_utf8": {"invalidutf8", "utf8", "badutf8", "notutf8", "nonutf8", "utf8error"},
    "line_too_long": {"linetoolong", "toolong", "linetoolarge", "oversizedline", "linelength"},
}


def norm_kind(k) -> str:
    return re.sub(r"[^a-z0-9]", "", str(k).lower())


def kind_matches(expected: str, actual) -> bool:
    a = norm_kind(actual)
    return a == norm_kind(expected) or a in KIND_ALIASES.get(expected, set())


def cat_code(c) -> str:
    if c is None:
        return "?"
    return _CAT.get(re.sub(r"[^a-z0-9]", "", str(c).lower()), str(c))


def open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "rt", encoding="utf-8", errors="replace")


def read_lines(path: Path, problems: list, label: str):
    with open_text(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except ValueError as e:
                problems.append(f"{label} {path.name}:{i}: not JSON ({e})")


def merge(spans):
    out = []
    for s, e in sorted((int(s), int(e)) for s, e in spans if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def span_of(x):
    if isinstance(x, dict) and "start" in x and "end" in x:
        return int(x["start"]), int(x["end"])
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return int(x[0]), int(x[1])
    return None


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def rate(a, b):
    return (a / b) if b else None


def fmt_counter(c: Counter, n=6) -> str:
    return " ".join(f"{k}:{v}" for k, v in c.most_common(n)) or "-"


class Doc:
    """One attributes line, with convenience accessors."""

    def __init__(self, rec: dict, file: str, idx: int):
        self.rec = rec
        self.file = file
        self.idx = idx
        self.id = str(rec.get("id"))
        self.action = rec.get("action")
        self.reasons = [r for r in (rec.get("reasons") or []) if isinstance(r, dict)]

    @property
    def removed(self) -> bool:
        return self.action in ("drop", "redact")

    def reason_cats(self) -> set:
        return {cat_code(r.get("category")) for r in self.reasons}

    def score(self, code: str) -> float:
        best = None
        for r in self.reasons:
            if cat_code(r.get("category")) == code and isinstance(r.get("score"), (int, float)):
                best = r["score"] if best is None else max(best, r["score"])
        if best is not None:
            return float(best)
        sc = self.rec.get("scores")
        if isinstance(sc, list) and len(sc) == len(CODES) and isinstance(sc[CODES.index(code)], (int, float)):
            return float(sc[CODES.index(code)])
        if isinstance(sc, dict):
            for k, v in sc.items():
                if cat_code(k) == code and isinstance(v, (int, float)):
                    return float(v)
        return float("nan")

    def max_reason(self):
        best = None
        for r in self.reasons:
            s = r.get("score")
            s = float(s) if isinstance(s, (int, float)) else float("-inf")
            if best is None or s > best[0]:
                best = (s, r)
        return best[1] if best else None

    def redacted(self):
        spans = [span_of(x) for x in (self.rec.get("redacted") or [])]
        return merge([s for s in spans if s])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("truth")
    ap.add_argument("--json", help="write the report as JSON to this file")
    ap.add_argument("--corpus", help="corpus folder with the original shards (default: <truth dir>/corpus)")
    ap.add_argument("--no-outputs", action="store_true", help="do not read kept/ and removed/")
    ap.add_argument("--partial", action="store_true",
                    help="the run covered only some shards: skip truth items of shards with no document or error")
    ap.add_argument("--top", type=int, default=10, help="how many highest-scoring cases to list")
    ap.add_argument("--min-toxic-removed", type=float)
    ap.add_argument("--max-control-removed", type=float)
    ap.add_argument("--max-wiki-removed", type=float)
    ap.add_argument("--min-mixed-removed", type=float)
    ap.add_argument("--min-mixed-redacted", type=float)
    ap.add_argument("--min-span-recall", type=float, help="mean over redacted mixed docs")
    ap.add_argument("--min-span-precision", type=float, help="mean over redacted mixed docs")
    ap.add_argument("--min-category-recall", type=float, help="for each code with >= --min-category-n toxic docs")
    ap.add_argument("--min-category-n", type=int, default=5)
    args = ap.parse_args()

    run = Path(args.run_dir)
    truth_path = Path(args.truth)
    attr_files = sorted((run / "attributes").glob("*.jsonl.gz")) + sorted((run / "attributes").glob("*.jsonl"))
    if not attr_files:
        print(f"curate_check: no attributes/*.jsonl.gz in {run}", file=sys.stderr)
        return 2
    if not truth_path.is_file():
        print(f"curate_check: {truth_path}: not found", file=sys.stderr)
        return 2

    failures: list[str] = []   # hard invariants
    warnings: list[str] = []
    report: dict = {"run_dir": str(run.resolve()), "truth": str(truth_path.resolve())}

    def fail(msg):
        failures.append(msg)

    truth = [t for _, t in read_lines(truth_path, warnings, "truth")]
    by_kind = defaultdict(list)
    for t in truth:
        by_kind[t.get("kind")].append(t)

    # ---------------------------------------------------------------- manifest
    manifest_path = run / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.load(open(manifest_path, encoding="utf-8"))
            report["manifest"] = {k: v for k, v in manifest.items() if isinstance(v, (str, int, float, bool))} \
                if isinstance(manifest, dict) else None
        except ValueError as e:
            fail(f"manifest.json is not JSON: {e}")
    else:
        warnings.append("no manifest.json in the run directory")

    # ---------------------------------------------------------------- attributes
    docs: dict[str, Doc] = {}
    docs_by_file: dict[str, list[Doc]] = defaultdict(list)
    dups = []
    bad_actions = Counter()
    for path in attr_files:
        for i, rec in read_lines(path, failures, "attributes"):
            d = Doc(rec, path.name, i)
            docs_by_file[path.name].append(d)
            if d.action not in ACTIONS:
                bad_actions[str(d.action)] += 1
            if d.id in docs:
                dups.append(f"{d.id} ({docs[d.id].file}:{docs[d.id].idx} and {path.name}:{i})")
            else:
                docs[d.id] = d
    n_attr = sum(len(v) for v in docs_by_file.values())
    if dups:
        fail(f"{len(dups)} duplicate ids in attributes, e.g. {'; '.join(dups[:5])}")
    if bad_actions:
        fail(f"invalid actions in attributes: {dict(bad_actions)}")
    actions = Counter(d.action for ds in docs_by_file.values() for d in ds)
    report["attributes"] = {"files": [p.name for p in attr_files], "documents": n_attr,
                            "actions": dict(actions), "duplicate_ids": len(dups)}

    # Read errors (needed to tell which truth shards were inputs of this run).
    err_files = sorted((run / "errors").glob("*.jsonl")) + sorted((run / "errors").glob("*.jsonl.gz"))
    errors = []
    for path in err_files:
        for i, rec in read_lines(path, failures, "errors"):
            rec["_errfile"] = path.name
            errors.append(rec)
    truth_shards = {t["shard"] for t in truth if t.get("shard")}

    def err_shard(e) -> str | None:
        f = e.get("file")
        if isinstance(f, str):
            return f.replace("\\", "/").rsplit("/", 1)[-1]
        for s in truth_shards:  # no file field: fall back to the errors file name
            if s.split(".")[0] in e["_errfile"]:
                return s
        return None

    in_run = {t["shard"] for t in truth if t.get("shard") and t["id"] in docs} | \
        {err_shard(e) for e in errors if err_shard(e) in truth_shards}
    not_in_run = sorted(truth_shards - in_run)
    if not_in_run:
        msg = f"truth shards with no document and no error in this run: {', '.join(not_in_run)}"
        if args.partial:
            warnings.append(msg + " (skipped: --partial)")
            truth = [t for t in truth if t.get("shard") not in not_in_run]
            by_kind = defaultdict(list)
            for t in truth:
                by_kind[t.get("kind")].append(t)
        else:
            fail(msg + " (were they inputs? use --partial for a run over some shards only)")
    report["shards_not_in_run"] = not_in_run

    # Truth ids present?
    missing = [t["id"] for t in truth if t.get("kind") in ("toxic", "control", "mixed", "valid") and t["id"] not in docs]
    if missing:
        fail(f"{len(missing)} truth documents missing from attributes (lost), e.g. {', '.join(missing[:8])}")
    line_mismatch = [f"{t['id']} (truth line {t['line']}, attributes line {docs[t['id']].rec.get('line')})"
                     for t in truth if t.get("kind") in ("toxic", "control", "mixed", "valid")
                     and t["id"] in docs and "line" in t and docs[t["id"]].rec.get("line") != t["line"]]
    if line_mismatch:
        fail(f"{len(line_mismatch)} truth documents with a wrong line number, e.g. {'; '.join(line_mismatch[:5])}")

    # Shards of the run: nothing lost (corpus.json lists each shard's document ids).
    corpus_json = truth_path.parent / "corpus.json"
    shard_report = []
    if corpus_json.is_file():
        cj = json.load(open(corpus_json, encoding="utf-8"))
        known_ids = set()
        for sh in cj.get("shards", []):
            ids = sh.get("ids") or []
            known_ids.update(ids)
            present = sum(1 for i in ids if i in docs)
            state = "absent from run" if present == 0 else ("complete" if present == len(ids) else "INCOMPLETE")
            shard_report.append({"file": sh.get("file"), "documents": len(ids), "present": present, "state": state})
            if 0 < present < len(ids):
                lost = [i for i in ids if i not in docs]
                fail(f"shard {sh.get('file')}: {len(lost)} of {len(ids)} documents missing from attributes, "
                     f"e.g. {', '.join(lost[:5])}")
        extra = [i for i in docs if i not in known_ids]
        if extra:
            warnings.append(f"{len(extra)} attribute ids not in corpus.json (other inputs?), e.g. {', '.join(extra[:5])}")
        report["shards"] = shard_report
    else:
        warnings.append(f"{corpus_json} not found: lost wiki documents cannot be detected")

    # ---------------------------------------------------------------- errors / malformed shard
    mal_truth = [t for t in truth if t.get("shard") and t.get("expect_kind")]
    mal_shards = {t["shard"] for t in mal_truth}

    errs_at = defaultdict(list)
    unexpected_errors = []
    for e in errors:
        s = err_shard(e)
        if s in mal_shards:
            errs_at[(s, e.get("line"))].append(e)
        else:
            unexpected_errors.append(e)
    mal_rows = []
    n_valid_present = 0
    expected_lines = set()
    for t in mal_truth:
        key = (t["shard"], t["line"])
        expected_lines.add(key)
        got = errs_at.get(key, [])
        exp = t["expect_kind"]
        row = {"line": t["line"], "expect": exp, "got": ", ".join(str(e.get("kind")) for e in got) or "-", "ok": True}
        if exp == "valid":
            d = docs.get(t["id"])
            row["got"] = f"doc {d.action}" if d else ("error " + row["got"] if got else "MISSING")
            row["ok"] = d is not None and not got
            n_valid_present += d is not None
            if got:
                fail(f"{t['shard']} line {t['line']}: a valid document was reported as an error ({row['got']})")
        elif exp == "skipped_empty":
            files = {docs[x["id"]].file for x in mal_truth if x["shard"] == t["shard"] and x["id"] in docs}
            in_attr = [d.id for f in files for d in docs_by_file[f] if d.rec.get("line") == t["line"]]
            if in_attr:
                fail(f"{t['shard']} line {t['line']}: the empty line became a document ({in_attr[0]})")
            row["got"] = "error " + row["got"] if got else "skipped"
            row["ok"] = not got and not in_attr
            if got:
                fail(f"{t['shard']} line {t['line']}: the empty line was reported as an error ({row['got']})")
        else:
            if not got:
                row["ok"] = False
                fail(f"{t['shard']} line {t['line']}: expected error {exp} not reported")
            elif not any(kind_matches(exp, e.get("kind")) for e in got):
                row["ok"] = False
                fail(f"{t['shard']} line {t['line']}: expected error {exp}, got {row['got']}")
            else:
                e = got[0]
                if "byte_offset" in t and e.get("byte_offset") is not None and e.get("byte_offset") != t["byte_offset"]:
                    warnings.append(f"{t['shard']} line {t['line']}: error byte_offset {e.get('byte_offset')} "
                                    f"!= expected {t['byte_offset']}")
                for fld in ("file", "line", "byte_offset", "kind", "message", "excerpt"):
                    if fld not in e:
                        warnings.append(f"{t['shard']} line {t['line']}: error record has no '{fld}' field")
            rid = t.get("record_id")
            if rid and rid in docs:
                row["ok"] = False
                fail(f"{t['shard']} line {t['line']}: malformed record '{rid}' also appears as a document")
        mal_rows.append(row)
    for (s, line), es in errs_at.items():
        if (s, line) not in expected_lines:
            fail(f"{s} line {line}: unexpected error {es[0].get('kind')}: {str(es[0].get('message'))[:120]}")
    if unexpected_errors:
        ex = unexpected_errors[0]
        fail(f"{len(unexpected_errors)} read errors outside the malformed shard, e.g. "
             f"{ex.get('file')}:{ex.get('line')} {ex.get('kind')}: {str(ex.get('message'))[:120]}")
    n_valid = sum(1 for t in mal_truth if t["expect_kind"] == "valid")
    report["malformed"] = {"expected": mal_rows, "valid_docs": n_valid, "valid_docs_present": n_valid_present,
                           "error_records": len(errors), "unexpected_errors": len(unexpected_errors)}

    # ---------------------------------------------------------------- toxic docs
    def present(kind):
        return [(t, docs[t["id"]]) for t in by_kind.get(kind, []) if t["id"] in docs]

    tox = present("toxic")
    tox_removed = sum(d.removed for _, d in tox)
    per_cat = {}
    for c in CODES:
        rows = [(t, d) for t, d in tox if c in t.get("categories", [])]
        if not rows:
            continue
        hit = sum(1 for _, d in rows if c in d.reason_cats())
        other = [(t, d) for t, d in rows if d.removed and c not in d.reason_cats()]
        other_cats = Counter(x for _, d in other for x in d.reason_cats())
        scores = [d.score(c) for _, d in rows]
        scores = [s for s in scores if s == s]
        per_cat[c] = {"n": len(rows), "removed": sum(d.removed for _, d in rows), "recall": rate(hit, len(rows)),
                      "hit": hit, "removed_other_category": len(other), "other_categories": dict(other_cats),
                      "kept": sum(1 for _, d in rows if d.action == "keep"),
                      "median_score": statistics.median(scores) if scores else None}
    by_src = defaultdict(lambda: [0, 0])
    for t, d in tox:
        by_src[t.get("source_dataset")][0] += 1
        by_src[t.get("source_dataset")][1] += d.removed
    layers = Counter(r.get("layer") for _, d in tox for r in d.reasons)
    missed = sorted(((t, d) for t, d in tox if not d.removed), key=lambda td: td[0]["id"])
    report["toxic"] = {"n": len(tox), "removed": tox_removed, "removed_rate": rate(tox_removed, len(tox)),
                       "dropped": sum(d.action == "drop" for _, d in tox),
                       "redacted": sum(d.action == "redact" for _, d in tox),
                       "per_category": per_cat, "reason_layers": dict(layers),
                       "per_source": {s: {"n": a, "removed": b, "rate": rate(b, a)} for s, (a, b) in sorted(by_src.items())},
                       "missed": [{"id": t["id"], "categories": t.get("categories"), "source": t.get("source_dataset"),
                                   "dev_id": t.get("dev_id")} for t, _ in missed]}

    # ---------------------------------------------------------------- controls
    ctl = present("control")
    ctl_removed = [(t, d) for t, d in ctl if d.removed]
    cs = defaultdict(lambda: [0, 0])
    for t, d in ctl:
        cs[t.get("source_dataset")][0] += 1
        cs[t.get("source_dataset")][1] += d.removed

    def top_case(t, d):
        r = d.max_reason() or {}
        return {"id": d.id, "action": d.action, "source": t.get("source_dataset") if t else None,
                "categories": sorted(d.reason_cats()), "layer": r.get("layer"), "category": cat_code(r.get("category")),
                "score": r.get("score"), "threshold": r.get("threshold"), "span": r.get("span"),
                "detail": r.get("detail"), "dev_id": t.get("dev_id") if t else None}

    ctl_top = sorted(ctl_removed, key=lambda td: -max([s for s in (x.get("score") for x in td[1].reasons)
                                                         if isinstance(s, (int, float))] or [0]))[: args.top]
    report["controls"] = {"n": len(ctl), "removed": len(ctl_removed), "false_removal_rate": rate(len(ctl_removed), len(ctl)),
                          "reason_categories": dict(Counter(x for _, d in ctl_removed for x in d.reason_cats())),
                          "reason_layers": dict(Counter(r.get("layer") for _, d in ctl_removed for r in d.reasons)),
                          "per_source": {s: {"n": a, "removed": b, "rate": rate(b, a)} for s, (a, b) in sorted(cs.items())},
                          "top": [top_case(t, d) for t, d in ctl_top]}

    # ---------------------------------------------------------------- wiki docs
    wiki = [d for d in docs.values() if d.id.startswith("wiki-")]
    wiki_removed = [d for d in wiki if d.removed]
    wcat = {}
    for c in CODES + ["?"]:
        rows = [d for d in wiki_removed if c in d.reason_cats()]
        if not rows and c == "?":
            continue
        rows.sort(key=lambda d: -(d.score(c) if d.score(c) == d.score(c) else 0))
        top = []
        for d in rows[: args.top]:
            rs = [r for r in d.reasons if cat_code(r.get("category")) == c]
            r = max(rs, key=lambda r: r.get("score") if isinstance(r.get("score"), (int, float)) else -1) if rs else {}
            top.append({"id": d.id, "action": d.action, "score": r.get("score"), "threshold": r.get("threshold"),
                        "layer": r.get("layer"), "span": r.get("span"), "detail": r.get("detail"),
                        "file": d.file, "line": d.rec.get("line")})
        wcat[c] = {"removed": len(rows), "rate": rate(len(rows), len(wiki)),
                   "dropped": sum(d.action == "drop" for d in rows), "redacted": sum(d.action == "redact" for d in rows),
                   "top": top}
    report["wiki"] = {"n": len(wiki), "removed": len(wiki_removed), "removed_rate": rate(len(wiki_removed), len(wiki)),
                      "dropped": sum(d.action == "drop" for d in wiki), "redacted": sum(d.action == "redact" for d in wiki),
                      "redacted_bytes": sum(e - s for d in wiki for s, e in d.redacted()),
                      "bytes": sum(d.rec.get("bytes") or 0 for d in wiki),
                      "reason_layers": dict(Counter(r.get("layer") for d in wiki_removed for r in d.reasons)),
                      "per_category": wcat}

    # ---------------------------------------------------------------- originals (corpus)
    corpus_dir = Path(args.corpus) if args.corpus else truth_path.parent / "corpus"
    originals: dict[str, dict] = {}
    want_shards = {t.get("shard") for t in truth if t.get("shard")}
    if corpus_dir.is_dir():
        for s in sorted(want_shards):
            p = corpus_dir / s
            if not p.is_file():
                continue
            with gzip.open(p, "rb") as f:
                for raw in f:
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and isinstance(rec.get("text"), str) and "id" in rec:
                        originals[str(rec["id"])] = rec
    else:
        warnings.append(f"corpus folder {corpus_dir} not found: original texts unavailable")

    # bytes field vs the UTF-8 length of the text (spans are byte offsets into it)
    bad_bytes = [f"{i} ({docs[i].rec.get('bytes')} vs {len(o['text'].encode('utf-8'))})" for i, o in originals.items()
                 if i in docs and docs[i].rec.get("bytes") is not None
                 and docs[i].rec.get("bytes") != len(o["text"].encode("utf-8"))]
    if bad_bytes:
        warnings.append(f"{len(bad_bytes)} docs whose 'bytes' is not the UTF-8 length of the text, e.g. {'; '.join(bad_bytes[:3])}")

    # ---------------------------------------------------------------- mixed docs
    mix = present("mixed")
    mrows = []
    for t, d in mix:
        ts, te = t["span"]["start"], t["span"]["end"]
        row = {"id": t["id"], "action": d.action, "categories": t.get("categories"),
               "reason_categories": sorted(d.reason_cats()),
               "category_hit": bool(set(t.get("categories", [])) & d.reason_cats())}
        if d.action == "redact":
            red = d.redacted()
            if not red:
                warnings.append(f"{d.id}: action redact but no redacted spans")
            total = sum(e - s for s, e in red)
            overlap = sum(max(0, min(e, te) - max(s, ts)) for s, e in red)
            outside = total - overlap
            orig = originals.get(t["id"])
            if orig is not None:
                b = orig["text"].encode("utf-8")
                outside_nonws = sum(1 for s, e in red for i in range(s, min(e, len(b)))
                                    if not (ts <= i < te) and b[i] not in b" \t\r\n")
            else:
                outside_nonws = None
            row.update({"redacted": red, "truth_span": [ts, te], "precision": rate(overlap, total),
                        "recall": rate(overlap, te - ts), "outside_bytes": outside,
                        "outside_non_ws_bytes": outside_nonws,
                        "rest_kept": (outside_nonws == 0) if outside_nonws is not None else outside <= 4,
                        "exact": red == [[ts, te]]})
        mrows.append(row)
    red_rows = [r for r in mrows if r["action"] == "redact"]

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    report["mixed"] = {"n": len(mix), "redacted": len(red_rows), "dropped": sum(r["action"] == "drop" for r in mrows),
                       "kept": sum(r["action"] == "keep" for r in mrows),
                       "removed_rate": rate(sum(r["action"] in ("drop", "redact") for r in mrows), len(mrows)),
                       "redacted_rate": rate(len(red_rows), len(mrows)),
                       "category_hit": sum(r["category_hit"] for r in mrows),
                       "span_precision_mean": mean(r["precision"] for r in red_rows),
                       "span_recall_mean": mean(r["recall"] for r in red_rows),
                       "span_exact": sum(r["exact"] for r in red_rows),
                       "rest_kept": sum(r["rest_kept"] for r in red_rows),
                       "docs": mrows}

    # ---------------------------------------------------------------- kept / removed outputs
    if not args.no_outputs:
        kept_files = sorted((run / "kept").glob("*.jsonl.gz"))
        removed_files = sorted((run / "removed").glob("*.jsonl.gz"))
        kept: dict[str, dict] = {}
        kept_order: dict[str, list] = defaultdict(list)
        removed: dict[str, dict] = {}
        out_dups = []
        for p in kept_files:
            for i, rec in read_lines(p, failures, "kept"):
                if not isinstance(rec, dict) or "id" not in rec:
                    fail(f"kept {p.name}:{i}: record without id")
                    continue
                k = str(rec["id"])
                if k in kept:
                    out_dups.append(k)
                kept[k] = rec
                kept_order[p.name].append(k)
        for p in removed_files:
            for i, rec in read_lines(p, failures, "removed"):
                r = rec.get("record") if isinstance(rec, dict) else None
                w = rec.get("warden") if isinstance(rec, dict) else None
                if not isinstance(r, dict) or not isinstance(w, dict):
                    fail(f"removed {p.name}:{i}: not {{\"record\": ..., \"warden\": ...}}")
                    continue
                k = str(r.get("id"))
                if k in removed or k in kept:
                    out_dups.append(k)
                removed[k] = rec
                if w.get("action") != "drop" or not w.get("reasons"):
                    fail(f"removed {p.name}:{i}: warden.action is {w.get('action')!r} / no reasons")
        if out_dups:
            fail(f"{len(out_dups)} ids written twice to kept/removed, e.g. {', '.join(out_dups[:5])}")
        wrong_place, modified, not_redacted, para_left = [], [], [], []
        for d in docs.values():
            if d.action in ("keep", "redact") and d.id not in kept:
                wrong_place.append(f"{d.id} ({d.action}, not in kept)")
            elif d.action == "drop" and d.id not in removed:
                wrong_place.append(f"{d.id} (drop, not in removed)")
            elif d.action in ("keep", "redact") and d.id in removed:
                wrong_place.append(f"{d.id} ({d.action}, also in removed)")
            o = originals.get(d.id)
            if o is None:
                continue
            if d.action == "keep" and d.id in kept and kept[d.id] != o:
                modified.append(d.id)
            if d.action == "drop" and d.id in removed and removed[d.id].get("record") != o:
                modified.append(d.id)
            if d.action == "redact" and d.id in kept:
                kt = kept[d.id].get("text")
                if kt == o["text"]:
                    not_redacted.append(d.id)
        for t, d in mix:
            if d.action == "redact" and d.id in kept and t["id"] in originals:
                b = originals[t["id"]]["text"].encode("utf-8")
                para = b[t["span"]["start"]:t["span"]["end"]].decode("utf-8")
                if para in str(kept[d.id].get("text")):
                    para_left.append(d.id)
        extra = [k for k in list(kept) + list(removed) if k not in docs]
        if wrong_place:
            fail(f"{len(wrong_place)} documents not in the output their action says, e.g. {'; '.join(wrong_place[:5])}")
        if extra:
            fail(f"{len(extra)} output records with no attributes line, e.g. {', '.join(extra[:5])}")
        if modified:
            fail(f"{len(modified)} kept/dropped records differ from the original, e.g. {', '.join(modified[:5])}")
        if not_redacted:
            fail(f"{len(not_redacted)} redacted documents whose kept text equals the original, e.g. {', '.join(not_redacted[:5])}")
        order_bad = []
        for name, ds in docs_by_file.items():
            if name in kept_order:
                want = [d.id for d in ds if d.action in ("keep", "redact")]
                if want != kept_order[name]:
                    order_bad.append(name)
        if order_bad:
            warnings.append(f"kept order differs from attributes order in {', '.join(order_bad[:5])}")
        report["outputs"] = {"kept_files": len(kept_files), "removed_files": len(removed_files), "kept": len(kept),
                             "removed": len(removed), "misplaced": len(wrong_place), "modified": len(modified),
                             "redacted_unchanged": len(not_redacted), "mixed_paragraph_left_in_kept_text": para_left}

    # ---------------------------------------------------------------- thresholds
    thr_fail = []

    def need(name, value, bound, higher=True):
        if bound is None:
            return
        if value is None or (value < bound if higher else value > bound):
            thr_fail.append(f"{name} = {pct(value).strip()} {'<' if higher else '>'} {bound:g}")

    need("toxic removed", report["toxic"]["removed_rate"], args.min_toxic_removed)
    need("control false-removal", report["controls"]["false_removal_rate"], args.max_control_removed, higher=False)
    need("wiki removed", report["wiki"]["removed_rate"], args.max_wiki_removed, higher=False)
    need("mixed removed", report["mixed"]["removed_rate"], args.min_mixed_removed)
    need("mixed redacted", report["mixed"]["redacted_rate"], args.min_mixed_redacted)
    need("span recall", report["mixed"]["span_recall_mean"], args.min_span_recall)
    need("span precision", report["mixed"]["span_precision_mean"], args.min_span_precision)
    if args.min_category_recall is not None:
        for c, v in per_cat.items():
            if v["n"] >= args.min_category_n:
                need(f"recall {c}", v["recall"], args.min_category_recall)

    report["failures"] = failures
    report["threshold_failures"] = thr_fail
    report["warnings"] = warnings
    report["ok"] = not failures and not thr_fail

    print_report(report, args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
            f.write("\n")
    return 0 if report["ok"] else 1


def print_report(r: dict, args) -> None:
    p = print
    a = r["attributes"]
    p(f"run {r['run_dir']}: {a['documents']} documents in {len(a['files'])} attributes files; "
      f"actions {a['actions']}")
    if r.get("manifest"):
        p("manifest: " + ", ".join(f"{k}={v}" for k, v in list(r["manifest"].items())[:12]))
    for s in r.get("shards", []):
        if s["state"] != "complete":
            p(f"  shard {s['file']}: {s['present']}/{s['documents']} ({s['state']})")

    t = r["toxic"]
    p(f"\nTOXIC docs: {t['n']}, removed {t['removed']} ({pct(t['removed_rate']).strip()}): "
      f"drop {t['dropped']}, redact {t['redacted']}; reason layers {t['reason_layers']}")
    p(f"  {'code':<5} {'n':>4} {'removed':>8} {'recall':>7} {'other-cat':>9}  {'median score':>12}  other categories")
    for c, v in t["per_category"].items():
        ms = "-" if v["median_score"] is None else f"{v['median_score']:.3f}"
        p(f"  {c:<5} {v['n']:>4} {v['removed']:>8} {pct(v['recall']):>7} {v['removed_other_category']:>9}  "
          f"{ms:>12}  {fmt_counter(Counter(v['other_categories']))}")
    c = r["controls"]
    p(f"\nCONTROLS: {c['n']}, falsely removed {c['removed']} ({pct(c['false_removal_rate']).strip()}); "
      f"categories {c['reason_categories']}; layers {c['reason_layers']}")
    p(f"  {'source dataset':<26} {'toxic n':>7} {'removed':>8} {'ctl n':>6} {'removed':>8}")
    srcs = sorted(set(t["per_source"]) | set(c["per_source"]), key=str)
    for s in srcs:
        x = t["per_source"].get(s, {"n": 0, "rate": None})
        y = c["per_source"].get(s, {"n": 0, "rate": None})
        p(f"  {str(s):<26} {x['n']:>7} {pct(x['rate']):>8} {y['n']:>6} {pct(y['rate']):>8}")
    if c["top"]:
        p("  highest-scoring false removals:")
        for x in c["top"]:
            p(f"    {x['id']:<9} {x['action']:<6} {x['layer']}/{x['category']} score {x['score']} thr {x['threshold']} "
              f"({x['source']}, {x['dev_id']})")
    w = r["wiki"]
    p(f"\nWIKI docs: {w['n']}, removed {w['removed']} ({pct(w['removed_rate']).strip()}): drop {w['dropped']}, "
      f"redact {w['redacted']} ({w['redacted_bytes']} of {w['bytes']} bytes redacted); layers {w['reason_layers']}")
    for code, v in w["per_category"].items():
        if not v["removed"]:
            continue
        p(f"  {code:<4} removed {v['removed']:>5} ({pct(v['rate']).strip()}; drop {v['dropped']}, redact {v['redacted']}); top: "
          + ", ".join(f"{x['id']}({x['action'][0]} {x['score']})" for x in v["top"]))
    m = r["mixed"]
    p(f"\nMIXED docs: {m['n']}: redacted {m['redacted']} ({pct(m['redacted_rate']).strip()}), dropped {m['dropped']}, "
      f"kept {m['kept']}; category hit {m['category_hit']}")
    if m["redacted"]:
        p(f"  redacted spans vs truth: precision {pct(m['span_precision_mean']).strip()}, recall "
          f"{pct(m['span_recall_mean']).strip()}, exact {m['span_exact']}/{m['redacted']}, rest kept "
          f"{m['rest_kept']}/{m['redacted']}")
    bad = [d for d in m["docs"] if d["action"] != "redact" or not d.get("rest_kept") or (d.get("recall") or 0) < 1]
    for d in bad[: args.top]:
        extra = "" if d["action"] != "redact" else \
            f" P={pct(d['precision']).strip()} R={pct(d['recall']).strip()} outside={d['outside_bytes']}"
        p(f"    {d['id']:<8} {d['action']:<6} truth {d['categories']} reasons {d['reason_categories']}{extra}")
    mf = r["malformed"]
    p(f"\nMALFORMED shard: valid docs present {mf['valid_docs_present']}/{mf['valid_docs']}; error records {mf['error_records']}")
    for x in mf["expected"]:
        p(f"  line {x['line']:>3}  expect {x['expect']:<16} got {x['got']:<24} {'ok' if x['ok'] else 'FAIL'}")
    if "outputs" in r:
        o = r["outputs"]
        p(f"\nOUTPUTS: kept {o['kept']} records in {o['kept_files']} files, removed {o['removed']} in "
          f"{o['removed_files']} files; misplaced {o['misplaced']}, modified {o['modified']}, "
          f"redacted-but-unchanged {o['redacted_unchanged']}, mixed paragraph still in kept text "
          f"{len(o['mixed_paragraph_left_in_kept_text'])}")
    for x in r["warnings"]:
        p(f"warning: {x}")
    for x in r["threshold_failures"]:
        p(f"THRESHOLD: {x}")
    for x in r["failures"]:
        p(f"FAIL: {x}")
    p("\nOK" if r["ok"] else f"\nFAILED ({len(r['failures'])} invariant failures, {len(r['threshold_failures'])} threshold failures)")


if __name__ == "__main__":
    sys.exit(main())
