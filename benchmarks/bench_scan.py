"""``bastion scan`` files per second on ../shared/data/images beside ``bastion hash``.

Runs each command as a user does (a subprocess, decode workers on every core), several
times, and prints the best wall time and files/s of each:

* ``bastion hash``                  the plain hashes (exact + PDQ with 8 dihedral);
* ``bastion hash --variants query`` the same hashing work a scan does (robustness variants);
* ``bastion scan``                  hashing with variants + matching against the sample bank
                                    + writing the content log.

The matching overhead is ``scan`` against ``hash --variants query`` (goal: under 10%).

    .venv/bin/python benchmarks/bench_scan.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / ".." / "shared" / "data" / "images"
BASTION = [sys.executable, "-m", "bastion.cli.main"]


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([*BASTION, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{args[0]} failed: {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    files = [p for p in IMAGES.rglob("*") if p.is_file()]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "BASTION_HOME": home}
        env.pop("BASTION_DATABASE_URL", None)
        subprocess.run([*BASTION, "bank", "sample"], env=env, check=True, capture_output=True)
        runs = {
            "hash": ["hash", "--json", str(IMAGES)],
            "hash --variants query": ["hash", "--json", "--variants", "query", str(IMAGES)],
            "scan (sample bank)": ["scan", "--json", str(IMAGES)],
        }
        best: dict[str, float] = {}
        for _ in range(opts.repeat):
            for name, args in runs.items():
                t = timed(args, env)
                best[name] = min(best.get(name, t), t)
    print(f"{len(files)} files in {IMAGES.resolve()}, {os.cpu_count()} cores, "
          f"best of {opts.repeat}")
    for name, t in best.items():
        print(f"  {name:<24} {t:6.2f} s  {len(files) / t:6.1f} files/s")
    overhead = best["scan (sample bank)"] / best["hash --variants query"] - 1
    print(f"  matching + content log over the same hashing: {overhead * 100:+.1f}% (goal < +10%)")
    print(f"  variants over plain hash: {best['hash --variants query'] / best['hash'] - 1:+.1%}")


if __name__ == "__main__":
    main()
