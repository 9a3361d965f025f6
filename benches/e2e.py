#!/usr/bin/env python3
"""End-to-end benchmark: coffer against restic (and cat / zstd baselines) on a
realistic pg_dump-like stream, in the same run on the same machine.

Usage: python3 benches/e2e.py [--size 488M] [--runs 3] [--work DIR]

Needs: cargo, restic (`apt-get install restic`), zstd, GNU time (/usr/bin/time).
For every tool and run it makes a fresh repository, then measures, each as
wall time and peak RSS:
  new        backup of day A into the empty repository
  unchanged  backup of the same dump again
  scattered  backup of day B (2% of rows updated, every 50th row)
  clustered  backup of day C (2% of rows updated in one block)
  restore    restore of day A to /dev/null
and the bytes each day added to the repository. Prints medians as Markdown.
Not run in CI.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")


def sh(cmd, env=None, stdin=None, stdout=subprocess.DEVNULL):
    """Runs a command under GNU time; returns (wall seconds, peak RSS KiB)."""
    timed = ["/usr/bin/time", "-f", "%e %M", "-o", "/tmp/coffer-bench-time"] + cmd
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    try:
        subprocess.run(timed, env=env, stdin=fin, stdout=stdout, stderr=subprocess.DEVNULL, check=True)
    finally:
        if stdin:
            fin.close()
    wall, rss = open("/tmp/coffer-bench-time").read().split()[-2:]
    return float(wall), int(rss)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


class Coffer:
    name = "coffer"

    def __init__(self, repo, pwfile):
        self.env = dict(os.environ, COFFER_REPOSITORY=repo, COFFER_PASSWORD_FILE=pwfile)
        self.repo = repo

    def init(self):
        subprocess.run([f"{BIN}/coffer", "init"], env=self.env, check=True, stderr=subprocess.DEVNULL)

    def backup(self, path):
        return sh([f"{BIN}/coffer", "backup", "--stdin", "--stdin-filename", "db.sql"], self.env, stdin=path)

    def restore_first(self):
        out = subprocess.run([f"{BIN}/coffer", "snapshots", "--json"], env=self.env, check=True, capture_output=True)
        first = json.loads(out.stdout)[0]["id"]
        return sh([f"{BIN}/coffer", "restore", first], self.env)


class Restic:
    name = "restic"

    def __init__(self, repo, pwfile):
        self.env = dict(os.environ, RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=pwfile,
                        RESTIC_CACHE_DIR=repo + "-cache")
        self.repo = repo

    def init(self):
        subprocess.run(["restic", "init"], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def backup(self, path):
        return sh(["restic", "backup", "--quiet", "--stdin", "--stdin-filename", "db.sql"], self.env, stdin=path)

    def restore_first(self):
        out = subprocess.run(["restic", "snapshots", "--json"], env=self.env, check=True, capture_output=True)
        first = json.loads(out.stdout)[0]["id"]
        return sh(["restic", "dump", first, "db.sql"], self.env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="488M")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "coffer", "--bin", "gen-dump"], cwd=ROOT, check=True)
    work = args.work or tempfile.mkdtemp(prefix="coffer-bench-")
    os.makedirs(work, exist_ok=True)
    days = {}
    for day, change in [("A", "none"), ("B", "scattered"), ("C", "clustered")]:
        path = os.path.join(work, f"{day}-{args.size}.sql")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                subprocess.run([f"{BIN}/gen-dump", args.size, change], stdout=f, check=True)
        days[day] = path
    size = os.path.getsize(days["A"])
    pw = os.path.join(work, "password")
    open(pw, "w").write("benchmark password\n")
    zstd_size = int(subprocess.run(["sh", "-c", "zstd -3 -c " + days["A"] + " | wc -c"], capture_output=True).stdout)
    print(f"stream: {size / 1e6:.0f} MB, zstd -3: {zstd_size / 1e6:.1f} MB ({size / zstd_size:.1f}x)", file=sys.stderr)

    results = {}  # (tool, measure) -> list of (wall, rss) or bytes
    def rec(tool, measure, value):
        results.setdefault((tool, measure), []).append(value)

    for run in range(args.runs):
        # Baselines: the pipe itself and zstd on both cores.
        rec("cat", "new", sh(["cat", days["A"]]))
        rec("zstd -3 -T2", "new", sh(["zstd", "-q", "-3", "-T2", "-c", days["A"]]))
        for cls in (Coffer, Restic):
            repo = os.path.join(work, f"{cls.name}-repo")
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(repo + "-cache", ignore_errors=True)
            tool = cls(repo, pw)
            tool.init()
            rec(tool.name, "new", tool.backup(days["A"]))
            rec(tool.name, "unchanged", tool.backup(days["A"]))
            before = dir_bytes(repo)
            rec(tool.name, "scattered", tool.backup(days["B"]))
            mid = dir_bytes(repo)
            rec(tool.name, "clustered", tool.backup(days["C"]))
            after = dir_bytes(repo)
            rec(tool.name, "added scattered", mid - before)
            rec(tool.name, "added clustered", after - mid)
            subprocess.run(["sync"])
            rec(tool.name, "restore", tool.restore_first())
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)

    def mbps(tool, measure):
        walls = [w for w, _ in results[(tool, measure)]]
        return size / statistics.median(walls) / 1e6

    def rss(tool, measure):
        return statistics.median([r for _, r in results[(tool, measure)]]) / 1024

    print(f"\nMedians of {args.runs} runs, {size / 1e6:.0f} MB stream, MB/s = input bytes / wall time\n")
    print("| measure | coffer | restic | coffer / restic | coffer peak RSS | restic peak RSS |")
    print("|---|---|---|---|---|---|")
    for m in ["new", "unchanged", "scattered", "clustered", "restore"]:
        c, r = mbps("coffer", m), mbps("restic", m)
        print(f"| {m} | {c:.0f} MB/s | {r:.0f} MB/s | {c / r:.2f}x | {rss('coffer', m):.0f} MiB | {rss('restic', m):.0f} MiB |")
    for m in ["added scattered", "added clustered"]:
        c = statistics.median(results[("coffer", m)]) / 1e6
        r = statistics.median(results[("restic", m)]) / 1e6
        print(f"| {m} | {c:.1f} MB | {r:.1f} MB | {c / r:.2f}x | | |")
    for base in ["cat", "zstd -3 -T2"]:
        print(f"| baseline `{base}` | {mbps(base, 'new'):.0f} MB/s | | | {rss(base, 'new'):.0f} MiB | |")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
