#!/usr/bin/env python3
"""Build a test corpus (with ground truth) for `warden curate`.

Usage:
  scripts/make_curate_corpus.py --out DIR [--wiki-files N] [--seed S] [--data ../shared/data]
                                [--dev-jsonl PATH] [--big-line-mb 50] [--per-code 40]
                                [--mixed 40] [--warden target/release/warden] [--force]

DIR must lie outside the git repository (the corpus is derived from shared data, which never
goes into the repository). Written there:

  DIR/corpus/wiki-<dir>-<NN>.jsonl.gz   the first N Wikipedia sample files (sorted), one record
                                        per document: {"id": "wiki-<pageid>", "url", "title",
                                        "text"}; paragraphs joined by "\\n\\n", the repeated title
                                        line dropped.
  DIR/corpus/injected.jsonl.gz          toxic documents "tox-<k>", benign controls "ctl-<k>" and
                                        wiki copies "mix-<k>" with one toxic paragraph inserted
                                        between two paragraphs, in a seeded shuffled order.
  DIR/corpus/malformed.jsonl.gz         bad lines (invalid JSON, a JSON array, no text field,
                                        null text, numeric text, invalid UTF-8, one line of
                                        --big-line-mb MB, one empty line) between valid docs.
  DIR/truth.jsonl                       one line per injected item (see below).
  DIR/corpus.json                       per shard: file name, documents, lines, sha256 and the
                                        document ids (lets curate_check.py see lost documents).

truth.jsonl lines: {"id", "kind": "toxic"|"control"|"mixed"|"valid"|"malformed",
"categories": [positive codes], "labelled": [codes labelled at all], "labels": {raw dev
labels}, "stratum": the code the row was sampled for, "source_dataset", "dev_id", "shard",
"line", and for mixed docs "span": {"start", "end"} (UTF-8 byte offsets of the inserted
paragraph in the text, separators excluded) and "wiki_id"; for malformed-shard lines
"expect_kind": invalid_json | not_an_object | missing_text | text_not_string | invalid_utf8 |
line_too_long | skipped_empty, or "valid" for the good documents around them (kind "valid").

Toxic texts and controls come from the DEV split of Warden's unified training set (the model
is trained on the train split only). Unless --dev-jsonl is given, the script runs
`warden data build --out <tmpdir>` from the repository root. A label value >= 0.5 counts as
positive, 0 as negative; controls are rows that are 0 on every code they are labelled for.
Decontamination: `warden data build` already drops every row whose normalised text hash is in
the held-out decontamination list (it reports the count in stats.json); this script never
reads that list itself and only takes rows from that build's dev.jsonl, so no held-out text
can enter the corpus. A --dev-jsonl file must likewise be a `warden data build` output.

Everything is deterministic for a given seed and inputs (gzip with mtime 0, no file name in
the gzip header). Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CODES = ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
PARENT = {"S3": "S", "H2": "H", "V2": "V"}
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024  # warden-corpus DEFAULT_MAX_LINE_BYTES
DOC_RE = re.compile(r'^<doc id="(\d+)" url="([^"]*)" title="(.*)">\s*$')


def die(msg: str) -> None:
    print(f"make_curate_corpus: {msg}", file=sys.stderr)
    sys.exit(2)


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class GzWriter:
    """Deterministic .jsonl.gz writer that tracks line numbers and byte offsets."""

    def __init__(self, path: Path):
        self.path = path
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
        self.lines = 0
        self.offset = 0
        self.ids: list[str] = []

    def write_bytes_line(self, data: bytes) -> tuple[int, int]:
        """Writes one physical line (data must not contain b"\\n"); returns (line, offset)."""
        self.lines += 1
        line, off = self.lines, self.offset
        self._gz.write(data + b"\n")
        self.offset += len(data) + 1
        return line, off

    def write_record(self, rec: dict) -> tuple[int, int]:
        if "id" in rec and isinstance(rec.get("text"), str):
            self.ids.append(rec["id"])
        return self.write_bytes_line(dumps(rec).encode("utf-8"))

    def close(self) -> dict:
        self._gz.close()
        self._raw.close()
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return {"file": self.path.name, "documents": len(self.ids), "lines": self.lines,
                "sha256": h.hexdigest(), "ids": self.ids}


# ---------------------------------------------------------------------------------------------
# Wikipedia


def wiki_files(data: Path) -> list[Path]:
    root = data / "wikipedia-en-sample" / "text"
    if not root.is_dir():
        die(f"{root}: not found (use --data)")
    files = sorted(root.glob("*/wiki_*.gz"), key=lambda p: (p.parent.name, p.name))
    if not files:
        die(f"{root}: no wiki_NN.gz files")
    return files


def read_wiki(path: Path):
    """Yields (pageid, url, title, paragraphs) per <doc> in a WikiExtractor file."""
    cur = None
    with gzip.open(path, "rt", encoding="utf-8", errors="strict", newline="\n") as f:
        for raw in f:
            line = raw.rstrip("\n").rstrip("\r")
            if cur is None:
                m = DOC_RE.match(line)
                if m:
                    cur = (m.group(1), m.group(2), m.group(3), [])
                continue
            if line.strip() == "</doc>":
                pageid, url, title, body = cur
                # The first non-empty body line repeats the title.
                while body and not body[0].strip():
                    body.pop(0)
                if body and body[0].strip() == title.strip():
                    body.pop(0)
                paras = [p for p in (b.strip() for b in body) if p]
                yield pageid, url, title, paras
                cur = None
                continue
            cur[3].append(line)
    if cur is not None:
        print(f"warning: {path}: unterminated <doc id={cur[0]}> skipped", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Dev split of the unified training set


def load_dev(args) -> tuple[list[dict], str]:
    if args.dev_jsonl:
        path = Path(args.dev_jsonl)
        if not path.is_file():
            die(f"{path}: not found")
        return read_jsonl(path), str(path)
    warden = Path(args.warden)
    if not warden.is_absolute():
        warden = (REPO / warden) if (REPO / warden).exists() else warden.resolve()
    if not warden.exists():
        die(f"{warden}: warden binary not found (use --warden or --dev-jsonl)")
    with tempfile.TemporaryDirectory(prefix="curate-devbuild-") as tmp:
        cmd = [str(warden), "data", "build", "--data-root", str(Path(args.data).resolve()), "--out", tmp]
        print("running:", " ".join(cmd), f"(cwd {REPO})", file=sys.stderr)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            die(f"warden data build failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        msg = (proc.stdout + proc.stderr).strip().splitlines()
        try:
            stats = json.load(open(Path(tmp) / "stats.json"))
            dropped = sum(s.get("dropped_decontaminated", 0) for s in stats.get("sources", []))
            print(f"warden data build: {msg[-1] if msg else ''}; rows dropped as held-out "
                  f"(decontaminated): {dropped}", file=sys.stderr)
        except (OSError, ValueError):
            pass
        return read_jsonl(Path(tmp) / "dev.jsonl"), "warden data build (temporary)"


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def label_info(row: dict):
    labels = {k: v for k, v in (row.get("labels") or {}).items() if k in CODES and v is not None}
    pos = [c for c in CODES if c in labels and labels[c] >= 0.5]
    labelled = [c for c in CODES if c in labels]
    soft = any(0 < labels[c] < 1 for c in labelled)
    return labels, pos, labelled, soft


def tier(code: str, pos: list[str], soft: bool) -> int:
    """Lower is better: hard labels, and positive on exactly `code` (plus its parent)."""
    want = {code} | ({PARENT[code]} if code in PARENT else set())
    return (2 if soft else 0) + (0 if set(pos) == want else 1)


def round_robin_order(rows: list[dict], key_tier, rng: random.Random) -> list[dict]:
    """Sort by tier, then interleave sources (random order within each source)."""
    keyed = []
    by = {}
    for r in rows:
        by.setdefault((key_tier(r), r["source"]), []).append(r)
    for (t, src), group in sorted(by.items()):
        rng.shuffle(group)
        src_key = rng.random()
        for i, r in enumerate(group):
            keyed.append(((t, i, src_key), r))
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed]


def sample_rows(dev: list[dict], args, rng: random.Random):
    seen_text = set()
    pos_rows, neg_rows = [], []
    for r in dev:
        text = r.get("text")
        if not isinstance(text, str):
            continue
        n = len(text)
        if n < args.min_chars or n > args.max_chars:
            continue
        key = " ".join(text.split()).lower()
        if key in seen_text:
            continue
        seen_text.add(key)
        labels, pos, labelled, soft = label_info(r)
        if not labelled:
            continue
        r = dict(r, _labels=labels, _pos=pos, _labelled=labelled, _soft=soft)
        if pos:
            pos_rows.append(r)
        elif all(labels[c] == 0 for c in labelled):
            neg_rows.append(r)
    pos_rows.sort(key=lambda r: r["id"])
    neg_rows.sort(key=lambda r: r["id"])

    chosen, chosen_ids = [], set()
    ordered_by_code = {}
    for code in CODES:
        cands = [r for r in pos_rows if code in r["_pos"]]
        ordered_by_code[code] = round_robin_order(cands, lambda r, c=code: tier(c, r["_pos"], r["_soft"]), rng)
    # Rarest codes first, so that rows positive on S3 (also S) are recorded under S3.
    for code in sorted(CODES, key=lambda c: (len(ordered_by_code[c]), CODES.index(c))):
        ordered = ordered_by_code[code]
        k = 0
        for r in ordered:
            if k >= args.per_code:
                break
            if r["id"] in chosen_ids:
                continue
            chosen.append((code, r))
            chosen_ids.add(r["id"])
            k += 1

    # Mixed paragraphs: other positives where possible (short ones read as one paragraph).
    mixed_rows = []
    mixed_ids = set()
    codes_cycle = [c for c in CODES if ordered_by_code[c]]
    if args.mixed and codes_cycle:
        per = {c: [r for r in ordered_by_code[c] if len(r["text"]) <= args.mixed_max_chars] for c in codes_cycle}
        fresh = {c: [r for r in per[c] if r["id"] not in chosen_ids] for c in codes_cycle}
        i = 0
        guard = 0
        while len(mixed_rows) < args.mixed and guard < args.mixed * 20:
            c = codes_cycle[i % len(codes_cycle)]
            i += 1
            guard += 1
            pool = [r for r in fresh[c] if r["id"] not in mixed_ids] or \
                   [r for r in per[c] if r["id"] not in mixed_ids]
            if not pool:
                continue
            r = pool[0]
            mixed_rows.append((c, r))
            mixed_ids.add(r["id"])

    # Controls: as many as toxic docs, matching the toxic sample's source mix where possible.
    want = {}
    for _, r in chosen:
        want[r["source"]] = want.get(r["source"], 0) + 1
    neg_by_src = {}
    for r in neg_rows:
        neg_by_src.setdefault(r["source"], []).append(r)
    for group in neg_by_src.values():
        rng.shuffle(group)
    controls, used = [], set()
    for src in sorted(want):
        for r in neg_by_src.get(src, [])[: want[src]]:
            controls.append(r)
            used.add(r["id"])
    rest = [r for r in neg_rows if r["id"] not in used]
    rng.shuffle(rest)
    controls.extend(rest[: max(0, len(chosen) - len(controls))])
    return chosen, controls, mixed_rows


# ---------------------------------------------------------------------------------------------


def inside_git_repo(path: Path) -> Path | None:
    p = path.resolve()
    repo = REPO.resolve()
    if p == repo or repo in p.parents:
        return repo
    for q in [p, *p.parents]:
        if (q / ".git").exists():
            return q
    return None


def big_line(mb: float) -> bytes:
    target = int(mb * 1024 * 1024)
    head = b'{"id":"big-line","url":"https://big.example/1","text":"'
    tail = b'"}'
    sentence = b"The quick brown fox jumps over the lazy dog near the quiet river bank. "
    para = sentence * 14 + b"\\n\\n"  # JSON-escaped paragraph break
    body_len = max(0, target - len(head) - len(tail))
    reps = body_len // len(para) + 1
    body = (para * reps)[:body_len]
    # Do not end in the middle of an escape sequence.
    while body.endswith(b"\\") and not body.endswith(b"\\\\"):
        body = body[:-1] + b" "
    return head + body + tail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (outside the git repository)")
    ap.add_argument("--wiki-files", type=int, default=None, help="convert the first N wiki files (default: all)")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="shared data root")
    ap.add_argument("--dev-jsonl", help="dev.jsonl from `warden data build` (default: run it)")
    ap.add_argument("--warden", default="target/release/warden", help="warden binary (relative to the repo root)")
    ap.add_argument("--big-line-mb", type=float, default=50.0)
    ap.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
                    help="the reader's longest accepted line (decides whether the big line is an error)")
    ap.add_argument("--per-code", type=int, default=40, help="toxic rows sampled per category code")
    ap.add_argument("--mixed", type=int, default=40, help="wiki documents with one inserted toxic paragraph")
    ap.add_argument("--min-chars", type=int, default=40)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--mixed-max-chars", type=int, default=600, help="longest toxic text used as an inserted paragraph")
    ap.add_argument("--force", action="store_true", help="overwrite an existing corpus in --out")
    args = ap.parse_args()

    out = Path(args.out)
    repo = inside_git_repo(out)
    if repo is not None:
        die(f"refusing to write into {out.resolve()}: it is inside the git repository {repo}")
    data = Path(args.data)
    if data.exists() and (out.resolve() == data.resolve() or data.resolve() in out.resolve().parents):
        die("refusing to write inside the shared data directory")
    corpus = out / "corpus"
    if (out / "truth.jsonl").exists() or (corpus.exists() and any(corpus.iterdir())):
        if not args.force:
            die(f"{out} already holds a corpus; use --force to overwrite it")
        for p in list(corpus.glob("wiki-*.jsonl.gz")) + [corpus / "injected.jsonl.gz", corpus / "malformed.jsonl.gz"]:
            if p.exists():
                p.unlink()
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    # --- toxic / control rows from dev --------------------------------------------------------
    dev, dev_from = load_dev(args)
    chosen, controls, mixed_rows = sample_rows(dev, args, random.Random(rng.random()))

    # --- Wikipedia ------------------------------------------------------------------------------
    files = wiki_files(data)
    n_files = len(files) if args.wiki_files is None else max(0, min(args.wiki_files, len(files)))
    shards = []
    reservoir: list[tuple] = []
    eligible = 0
    res_rng = random.Random(rng.random())
    wiki_docs = 0
    wiki_bytes = 0
    for path in files[:n_files]:
        nn = path.name[len("wiki_"):].split(".")[0]
        w = GzWriter(corpus / f"wiki-{path.parent.name}-{nn}.jsonl.gz")
        for pageid, url, title, paras in read_wiki(path):
            text = "\n\n".join(paras)
            w.write_record({"id": f"wiki-{pageid}", "url": url, "title": title, "text": text})
            wiki_docs += 1
            wiki_bytes += len(text.encode("utf-8"))
            if len(paras) >= 4 and 1000 <= len(text) <= 20000:
                eligible += 1
                item = (pageid, url, title, paras)
                if len(reservoir) < args.mixed:
                    reservoir.append(item)
                else:
                    j = res_rng.randrange(eligible)
                    if j < args.mixed:
                        reservoir[j] = item
        shards.append(w.close())
        print(f"  {path.parent.name}/{path.name} -> {w.path.name}: {w.lines} docs", file=sys.stderr)

    truth = []

    # --- injected shard -------------------------------------------------------------------------
    items = []
    for k, (code, r) in enumerate(chosen, 1):
        rec = {"id": f"tox-{k}", "url": f"https://forum{k % 7}.example/t/{k}", "text": r["text"]}
        t = {"id": rec["id"], "kind": "toxic", "categories": r["_pos"], "labelled": r["_labelled"],
             "labels": r["_labels"], "stratum": code, "source_dataset": r["source"], "dev_id": r["id"]}
        items.append((rec, t))
    for k, r in enumerate(controls, 1):
        rec = {"id": f"ctl-{k}", "url": f"https://forum{k % 7}.example/c/{k}", "text": r["text"]}
        t = {"id": rec["id"], "kind": "control", "categories": [], "labelled": r["_labelled"],
             "labels": r["_labels"], "source_dataset": r["source"], "dev_id": r["id"]}
        items.append((rec, t))
    if len(reservoir) < len(mixed_rows):
        print(f"warning: only {len(reservoir)} wiki documents qualify for mixed docs "
              f"(>= 4 paragraphs, 1000..20000 chars); making {len(reservoir)}", file=sys.stderr)
    reservoir.sort(key=lambda it: int(it[0]))
    mix_rng = random.Random(rng.random())
    mix_rng.shuffle(reservoir)
    for k, ((code, r), (pageid, url, title, paras)) in enumerate(zip(mixed_rows, reservoir), 1):
        para = " ".join(r["text"].split())
        at = mix_rng.randrange(1, len(paras))  # between paragraph at-1 and at
        before = "\n\n".join(paras[:at]) + "\n\n"
        text = before + para + "\n\n" + "\n\n".join(paras[at:])
        start = len(before.encode("utf-8"))
        end = start + len(para.encode("utf-8"))
        assert text.encode("utf-8")[start:end].decode("utf-8") == para
        rec = {"id": f"mix-{k}", "url": url, "title": title, "text": text}
        t = {"id": rec["id"], "kind": "mixed", "categories": r["_pos"], "labelled": r["_labelled"],
             "labels": r["_labels"], "stratum": code, "source_dataset": r["source"], "dev_id": r["id"],
             "wiki_id": f"wiki-{pageid}", "span": {"start": start, "end": end},
             "paragraph_index": at, "paragraphs": len(paras) + 1}
        items.append((rec, t))
    rng.shuffle(items)
    w = GzWriter(corpus / "injected.jsonl.gz")
    for rec, t in items:
        line, off = w.write_record(rec)
        t.update({"shard": w.path.name, "line": line, "byte_offset": off})
        truth.append(t)
    shards.append(w.close())

    # --- malformed shard ------------------------------------------------------------------------
    w = GzWriter(corpus / "malformed.jsonl.gz")
    ok_k = 0

    def valid(text: str):
        nonlocal ok_k
        ok_k += 1
        rec = {"id": f"mal-ok-{ok_k}", "url": f"https://valid.example/{ok_k}", "text": text}
        line, off = w.write_record(rec)
        truth.append({"id": rec["id"], "kind": "valid", "categories": [], "labelled": [],
                      "source_dataset": "synthetic", "shard": w.path.name, "line": line,
                      "byte_offset": off, "expect_kind": "valid"})

    def bad(data: bytes, expect: str, what: str):
        line, off = w.write_bytes_line(data)
        m = re.match(rb'\{"id":"([^"]+)"', data)
        t = {"id": f"malformed-line-{line}", "kind": "malformed", "categories": [], "labelled": [],
             "source_dataset": "synthetic", "shard": w.path.name, "line": line,
             "byte_offset": off, "expect_kind": expect, "detail": what, "line_bytes": len(data)}
        if m:
            t["record_id"] = m.group(1).decode()  # must not show up as a document
        truth.append(t)

    benign = [
        "The library opens at nine on weekdays and at ten on Saturdays.\n\nBooks can be returned at the front desk or through the slot by the door.",
        "Preheat the oven to 180 degrees. Mix the flour, sugar and butter, then add the eggs one at a time.",
        "Der Zug nach München fährt um 14:05 von Gleis 3 ab. Café au lait coûte 3,50 € — naïve résumé façade.",
        "Tomorrow's forecast: light rain in the morning, clearing in the afternoon with highs around 18 °C.",
        "Our community garden meets every Sunday. New volunteers are welcome; gloves and tools are provided.",
    ]
    valid(benign[0])
    bad(b'{"id":"bad-json","text":"this line is cut off', "invalid_json", "unterminated JSON string")
    valid(benign[1])
    bad(b'["not","an","object"]', "not_an_object", "a JSON array")
    bad(b'{"id":"no-text","body":"the text field is missing"}', "missing_text", "record without the text field")
    bad(b'{"id":"null-text","text":null}', "missing_text", "text is null")
    bad(b'{"id":"num-text","text":42}', "text_not_string", "text is a number")
    line, off = w.write_bytes_line(b"")
    truth.append({"id": f"malformed-line-{line}", "kind": "malformed", "categories": [], "labelled": [],
                  "source_dataset": "synthetic", "shard": w.path.name, "line": line, "byte_offset": off,
                  "expect_kind": "skipped_empty", "detail": "empty line: readers skip it (it still counts as a line)"})
    valid(benign[2])
    bad(b'{"id":"bad-utf8","text":"caf\xe9 na\xefve \xff\xfe end"}', "invalid_utf8", "Latin-1 bytes and 0xFF 0xFE")
    big = big_line(args.big_line_mb)
    if len(big) > args.max_line_bytes:
        bad(big, "line_too_long", f"{len(big)} bytes > max {args.max_line_bytes}")
    else:
        line, off = w.write_bytes_line(big)
        w.ids.append("big-line")
        truth.append({"id": "big-line", "kind": "valid", "categories": [], "labelled": [],
                      "source_dataset": "synthetic", "shard": w.path.name, "line": line, "byte_offset": off,
                      "expect_kind": "valid", "line_bytes": len(big),
                      "detail": f"big line of {len(big)} bytes, within the max line of {args.max_line_bytes}"})
    valid(benign[3])
    bad(b'{"id":"trailing-garbage","text":"ok"} trailing', "invalid_json", "valid object followed by garbage")
    valid(benign[4])
    shards.append(w.close())

    # --- truth and summary ----------------------------------------------------------------------
    with open(out / "truth.jsonl", "w", encoding="utf-8") as f:
        for t in truth:
            f.write(dumps(t) + "\n")
    summary = {
        "generator": "scripts/make_curate_corpus.py",
        "seed": args.seed,
        "dev_from": dev_from,
        "wiki_files": n_files,
        "wiki_documents": wiki_docs,
        "wiki_text_bytes": wiki_bytes,
        "big_line_bytes": len(big),
        "max_line_bytes": args.max_line_bytes,
        "shards": shards,
    }
    with open(out / "corpus.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
        f.write("\n")

    kinds = {}
    for t in truth:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
    print(f"corpus: {out.resolve()}")
    print(f"  wiki: {n_files} files -> {wiki_docs} documents ({wiki_bytes / 1e6:.1f} MB text)")
    print(f"  injected.jsonl.gz: {len(items)} docs; malformed.jsonl.gz: {shards[-1]['lines']} lines, "
          f"{shards[-1]['documents']} valid docs")
    print("  truth:", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    hdr = "  per code    toxic(stratum)  toxic(positive)  mixed(stratum)"
    print(hdr)
    for c in CODES:
        st = sum(1 for t in truth if t["kind"] == "toxic" and t.get("stratum") == c)
        po = sum(1 for t in truth if t["kind"] == "toxic" and c in t["categories"])
        mx = sum(1 for t in truth if t["kind"] == "mixed" and t.get("stratum") == c)
        print(f"  {c:<10} {st:>14} {po:>16} {mx:>15}")
    srcs = {}
    for t in truth:
        if t["kind"] in ("toxic", "control"):
            d = srcs.setdefault(t["source_dataset"], [0, 0])
            d[0 if t["kind"] == "toxic" else 1] += 1
    print("  source dataset              toxic  control")
    for s, (a, b) in sorted(srcs.items()):
        print(f"  {s:<26} {a:>6} {b:>8}")
    exp = [f"line {t['line']}: {t['expect_kind']}" for t in truth if t.get("shard") == "malformed.jsonl.gz"]
    print("  malformed shard:", "; ".join(exp))


if __name__ == "__main__":
    main()
