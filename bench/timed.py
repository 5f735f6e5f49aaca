#!/usr/bin/env python3
"""Run a command repeatedly; print its wall time and peak RSS.

    timed.py --label "cli kb" [--docs N --bytes B] [--warmup 1] [--runs 3]
             [--stdin FILE] [--stdout FILE] [--log FILE] [--expect-lines N] -- CMD...

Prints `RESULT <label> <docs> <bytes> <best_s> <median_s> <peak_rss_kb>`: the best and
median wall time of the timed runs (warm-up runs are not timed) and the largest peak RSS
of any run (per child, from wait4's rusage; no /usr/bin/time needed). A failing run stops
everything with its exit status. --expect-lines checks the warm-up (or first) run's stdout
file has that many lines.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def run_once(cmd, stdin, stdout, log):
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
    flog = open(log, "ab") if log else None
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=flog)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for f in (fin, fout, flog):
            if hasattr(f, "close"):
                f.close()
    if p.returncode != 0:
        where = f" (see {log})" if log else ""
        sys.exit(f"timed.py: {' '.join(cmd)} failed with status {p.returncode}{where}")
    return wall, ru.ru_maxrss  # ru_maxrss is KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--docs", type=int, default=0)
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stdin")
    ap.add_argument("--stdout")
    ap.add_argument("--log")
    ap.add_argument("--expect-lines", type=int)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        sys.exit("timed.py: no command")

    checked = False

    def check():
        nonlocal checked
        if a.expect_lines is not None and not checked:
            with open(a.stdout, "rb") as f:
                n = sum(1 for _ in f)
            if n != a.expect_lines:
                sys.exit(f"timed.py: {a.label}: expected {a.expect_lines} output lines, got {n}")
            checked = True

    rss = 0
    for _ in range(a.warmup):
        _, r = run_once(cmd, a.stdin, a.stdout, a.log)
        rss = max(rss, r)
        check()
    times = []
    for _ in range(max(1, a.runs)):
        t, r = run_once(cmd, a.stdin, a.stdout, a.log)
        times.append(t)
        rss = max(rss, r)
        check()
    print(f"RESULT {a.label} {a.docs} {a.bytes} {min(times):.6f} "
          f"{statistics.median(times):.6f} {rss}", flush=True)


if __name__ == "__main__":
    main()
