#!/usr/bin/env python3
"""Derive the benchmark's two text sets from ../shared/data into a scratch directory.

    prepare.py DATA_ROOT OUT_DIR N

writes OUT_DIR/kb.jsonl (N one-kilobyte documents) and OUT_DIR/short.jsonl (N short texts),
one `{"text": ...}` per line, plus OUT_DIR/<set>.stats (`docs bytes`, bytes = UTF-8 bytes
of the texts themselves). Nothing is written into the repository.

- kb: WikiExtractor output in DATA_ROOT/wikipedia-en-sample/text/*/wiki_*.gz, files in
  sorted order. Each document body (the lines between `<doc ...>` and `</doc>`) is cut into
  consecutive 1000-byte chunks, each cut back to a UTF-8 character boundary; a body's
  trailing chunk shorter than 900 bytes is dropped.
- short: the `tweet` column of DATA_ROOT/davidson-hate-offensive/labeled_data.csv.gz, in
  file order (about 100 characters each).
"""
import csv
import glob
import gzip
import io
import json
import os
import sys

CHUNK = 1000
MIN_TAIL = 900


def utf8_cut(b: bytes, n: int) -> int:
    """Largest cut <= n that does not split a UTF-8 character of b."""
    if n >= len(b):
        return len(b)
    while n > 0 and (b[n] & 0xC0) == 0x80:
        n -= 1
    return n


def wiki_bodies(root):
    files = sorted(glob.glob(os.path.join(root, "wikipedia-en-sample", "text", "*", "wiki_*.gz")))
    if not files:
        sys.exit(f"prepare.py: no wiki_*.gz under {root}/wikipedia-en-sample/text")
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            body = None
            for line in f:
                if line.startswith("<doc "):
                    body = []
                elif line.startswith("</doc>"):
                    if body is not None:
                        yield "".join(body).strip()
                    body = None
                elif body is not None:
                    body.append(line)


def kb_docs(root, n):
    out = []
    for body in wiki_bodies(root):
        b = body.encode("utf-8")
        i = 0
        while i < len(b):
            j = utf8_cut(b, i + CHUNK)
            if j <= i:  # cannot happen with CHUNK >= 4, but never loop forever
                break
            chunk = b[i:j]
            i = j
            if len(chunk) < MIN_TAIL:
                break
            out.append(chunk.decode("utf-8"))
            if len(out) == n:
                return out
    sys.exit(f"prepare.py: only {len(out)} one-kilobyte documents available, wanted {n}")


def short_texts(root, n):
    path = os.path.join(root, "davidson-hate-offensive", "labeled_data.csv.gz")
    out = []
    with gzip.open(path, "rb") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace")):
            t = row["tweet"]
            if t.strip():
                out.append(t)
                if len(out) == n:
                    return out
    sys.exit(f"prepare.py: only {len(out)} short texts in {path}, wanted {n}")


def write(out_dir, name, texts):
    with open(os.path.join(out_dir, name + ".jsonl"), "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False))
            f.write("\n")
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    with open(os.path.join(out_dir, name + ".stats"), "w") as f:
        f.write(f"{len(texts)} {nbytes}\n")
    print(f"prepare.py: {name}: {len(texts)} texts, {nbytes} bytes "
          f"(mean {nbytes / len(texts):.0f} B)", file=sys.stderr)


def main():
    root, out_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    write(out_dir, "kb", kb_docs(root, n))
    write(out_dir, "short", short_texts(root, n))


if __name__ == "__main__":
    main()
