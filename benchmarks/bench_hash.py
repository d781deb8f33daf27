"""Images hashed per second on one core: Bastion's whole path against plain pdqhash.

Usage: ``.venv/bin/python benchmarks/bench_hash.py [--rounds N]``

Pictures: the bridge photo (``../shared/data/images/bridge-mods/aaa-orig.jpg``) resized to
1000x750 and to 4000x3000 (12 megapixels), saved as JPEG quality 90 in a temporary folder.

Compared in the same run, interleaved round by round, pinned to one core:

- baseline: ``pdqhash.compute(np.asarray(Image.open(path).convert("RGB")))``, what Meta's
  Python library does (full-size PDQ, not reference-exact, no dihedral, no exact hashes);
- Bastion reference-exact: :func:`bastion.signals.compute.run_task` in-process: read, MD5 +
  SHA-1 + SHA-256, sniff, decode, squash to 512, PDQ with its 8 dihedral hashes;
- Bastion fast decode (``fast_decode=True``): the same with JPEG DCT-scaled decoding;
- isolation: the same reference-exact path through a one-worker :class:`DecodePool`, and
  the pool's cost per file on a 64x64 PNG.

Also the fast mode's drift from the reference-exact stored PDQ over every image in
``../shared/data/images`` (Hamming bits; median and max over all files, and over the files
the fast path actually decodes smaller). Figures on a shared 2-core machine are indicative.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from bastion.signals import image as image_mod
from bastion.signals.compute import HashOptions, HashTask, run_task
from bastion.signals.isolation import DecodePool
from bastion.signals.pdq import hamming

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "../shared/data/images"
BRIDGE = IMAGES / "bridge-mods/aaa-orig.jpg"


def baseline(path: Path) -> None:
    with Image.open(path) as im:
        pdqhash.compute(np.asarray(im.convert("RGB")))


def seconds_per_call(fn: Callable[[], object], min_time: float) -> float:
    """Median seconds of one call over batches that each last at least ``min_time``."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time or n < 2:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def stored_pdq(path: Path, fast: bool) -> str:
    res = run_task(HashTask(path=str(path), options=HashOptions(fast_decode=fast)))
    for s in res.signals:
        if s.signal_type == "pdq" and s.variant.kind == "stored":
            return str(s.value)
    raise RuntimeError(f"{path}: {res.reason}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    ap.add_argument("--min-time", type=float, default=0.6, help="seconds per measurement")
    ap.add_argument("--fast-min-side", type=int, default=image_mod.FAST_DECODE_MIN_SIDE,
                    help="shortest side fast decode keeps (FAST_DECODE_MIN_SIDE)")
    args = ap.parse_args()
    image_mod.FAST_DECODE_MIN_SIDE = args.fast_min_side
    print(f"fast decode keeps a shortest side of at least {args.fast_min_side} px")
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    print(f"pinned to core {cpu}; {os.cpu_count()} cores on this machine (shared: indicative)")

    with tempfile.TemporaryDirectory() as tmp, Image.open(BRIDGE) as src:
        rgb = src.convert("RGB")
        pictures = {}
        for name, size in (("1000x750", (1000, 750)), ("12 MP 4000x3000", (4000, 3000))):
            path = Path(tmp) / f"{size[0]}x{size[1]}.jpg"
            rgb.resize(size, Image.Resampling.LANCZOS).save(path, quality=90)
            pictures[name] = path
        tiny = Path(tmp) / "tiny.png"
        rgb.resize((64, 64)).save(tiny)

        with DecodePool(1) as pool:
            t0 = time.perf_counter()
            pool.run(HashTask(path=str(tiny)))
            startup = time.perf_counter() - t0
            print(f"\nworker start (interpreter + imports, first file): {startup * 1000:.0f} ms")
            print("\nimages/s on one core (median of rounds; ratio = Bastion / baseline)")
            header = f"{'picture':18} {'baseline':>9} {'bastion':>9} {'ratio':>6} " \
                     f"{'fast':>9} {'ratio':>6} {'pooled':>9} {'pool cost':>10}"
            print(header)
            for name, path in pictures.items():
                exact_task = HashTask(path=str(path))
                fast_task = HashTask(path=str(path), options=HashOptions(fast_decode=True))
                rows: dict[str, list[float]] = {"base": [], "exact": [], "fast": [], "pool": []}
                min_time = args.min_time * (3 if "12" in name else 1)
                for _ in range(args.rounds):
                    rows["base"].append(seconds_per_call(lambda p=path: baseline(p), min_time))
                    rows["exact"].append(
                        seconds_per_call(lambda t=exact_task: run_task(t), min_time))
                    rows["fast"].append(
                        seconds_per_call(lambda t=fast_task: run_task(t), min_time))
                    rows["pool"].append(
                        seconds_per_call(lambda t=exact_task: pool.run(t), min_time))
                med = {k: statistics.median(v) for k, v in rows.items()}
                print(f"{name:18} {1 / med['base']:9.1f} {1 / med['exact']:9.1f} "
                      f"{med['base'] / med['exact']:6.2f} {1 / med['fast']:9.1f} "
                      f"{med['base'] / med['fast']:6.2f} {1 / med['pool']:9.1f} "
                      f"{(med['pool'] - med['exact']) * 1000:8.2f}ms")

            tiny_task = HashTask(path=str(tiny))
            local = statistics.median(
                seconds_per_call(lambda: run_task(tiny_task), args.min_time) for _ in range(3))
            pooled = statistics.median(
                seconds_per_call(lambda: pool.run(tiny_task), args.min_time) for _ in range(3))
            print(f"\nisolation cost per file (64x64 PNG): in-process {local * 1000:.2f} ms, "
                  f"pooled {pooled * 1000:.2f} ms, overhead {(pooled - local) * 1000:.2f} ms")

    drifts: list[int] = []
    reduced: list[int] = []
    for path in sorted(IMAGES.rglob("*")):
        if not path.is_file() or path.suffix == ".tsv":
            continue
        d = hamming(stored_pdq(path, False), stored_pdq(path, True))
        drifts.append(d)
        res = run_task(HashTask(path=str(path), options=HashOptions(fast_decode=True)))
        if any("fast decode" in n for n in res.notes):
            reduced.append(d)
    print(f"\nfast-decode drift from reference-exact over {len(drifts)} images: "
          f"median {statistics.median(drifts):g}, max {max(drifts)} bits")
    if reduced:
        print(f"  over the {len(reduced)} JPEGs decoded smaller: median "
              f"{statistics.median(reduced):g}, max {max(reduced)} bits")


if __name__ == "__main__":
    main()
