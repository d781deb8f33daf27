"""vPDQ speed as a multiple of real time (media seconds hashed per wall-clock second).

Usage: ``.venv/bin/python benchmarks/bench_vpdq.py [VIDEO] [--repeat N]``
(default VIDEO: ``../shared/data/video/doorknob-hd-no-bar.mp4``, 1280x720, 30 fps, 4 s).

Prints, for Bastion's :func:`bastion.signals.video.hash_video` at one frame per second, at one
per second with bars trimmed (and halves), and at every frame: the best wall and CPU time of
``--repeat`` runs and the multiple of real time by each. Beside them, in the same run:
decoding alone
(PyAV, every frame, no conversion: the floor for any sampling rate, since H.264 frames
depend on each other) and a naive 1 fps path (PyAV's fast 8-bit RGB conversion +
``pdqhash.compute``, not reference-exact), each as a ratio. One process; on a shared machine
the wall figures are indicative only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import av
import pdqhash

from bastion.config import Limits
from bastion.signals.video import hash_video

DEFAULT = Path(__file__).resolve().parents[1] / "../shared/data/video/doorknob-hd-no-bar.mp4"


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """The fastest of ``repeat`` runs of ``fn``: (wall seconds, CPU seconds of this
    process). On a machine shared with other work, CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def decode_only(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def naive_one_fps(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = max(1, int(float(stream.average_rate or 30)))
        hashed = 0
        for i, frame in enumerate(container.decode(stream)):
            if i % step == 0:
                pdqhash.compute(frame.to_ndarray(format="rgb24"))
                hashed += 1
        return hashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    limits = Limits()
    probe = hash_video(args.video, limits=limits)
    media_s = probe.duration_s or 0.0
    with av.open(str(args.video)) as c:
        frames_total = c.streams.video[0].frames
    print(f"video: {args.video.name}  {probe.width}x{probe.height}  {media_s:.2f} s  "
          f"{probe.frame_rate or 0:.2f} fps  {frames_total} frames")
    print("(one process, one core, shared machine: indicative figures)\n")

    rows: list[tuple[str, tuple[float, float], int]] = []
    runs: list[tuple[str, Callable[[], object], int]] = [
        ("decode only (PyAV, every frame)", lambda: decode_only(args.video), 0),
        ("naive 1 fps (rgb24 + pdqhash)", lambda: naive_one_fps(args.video), 0),
        ("bastion vPDQ 1 fps", lambda: hash_video(args.video, limits=limits),
         len(probe.frames)),
        ("bastion vPDQ 1 fps + trimmed",
         lambda: hash_video(args.video, limits=limits, trim_borders=True), len(probe.frames)),
        ("bastion vPDQ 1 fps + trimmed + halves",
         lambda: hash_video(args.video, limits=limits, trim_borders=True, halves=True),
         len(probe.frames)),
        ("bastion vPDQ every frame",
         lambda: hash_video(args.video, every_frame=True, limits=limits), frames_total),
    ]
    for name, fn, hashed in runs:
        rows.append((name, best_of(args.repeat, fn), hashed))
    base = rows[2][1][1]
    print(f"{'path':38s} {'wall s':>7s} {'cpu s':>7s} {'x real (wall)':>13s} "
          f"{'x real (cpu)':>12s} {'cpu ms/hash':>11s} {'speed vs 1 fps':>14s}")
    for name, (wall, cpu), hashed in rows:
        per = f"{1000 * cpu / hashed:.1f}" if hashed else "-"
        print(f"{name:38s} {wall:7.3f} {cpu:7.3f} {media_s / wall:13.1f} {media_s / cpu:12.1f} "
              f"{per:>11s} {base / cpu:13.2f}x")


if __name__ == "__main__":
    main()
