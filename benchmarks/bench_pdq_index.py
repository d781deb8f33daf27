"""Benchmark: Bastion's PdqIndex against python-threatexchange's PDQIndex (the index HMA uses).

Banks of N random PDQ-like hashes (each with exactly 128 of 256 bits set, as real PDQ hashes
have) plus 1,000 planted near-duplicates at distances 0..31 (k % 32), their flipped bits spread
evenly over the hash (the hardest case for substring pigeonholing). Each photo query is the
planted one's source hash plus 7 unrelated hashes standing in for its other dihedral variants.

Prints, per bank size: build time, snapshot save/load time, resident memory per hash (RSS
delta, hashes and ids included) beside the arrays' own bytes, per-query latency p50/p99 for one
variant and for all 8 variants in one call, recall of the planted ones, time from insert to
matchable, merge time, where the time of an 8-variant query goes, and the same queries through
threatexchange's ``PDQIndex`` (one call per variant) with the ratios.

Single-threaded: OMP/BLAS threads are set to 1 and the process is pinned to one CPU (``--cpu``).
The machine is shared with other engineers' jobs: figures are indicative; the load average is
printed with them.

    .venv/bin/python benchmarks/bench_pdq_index.py --sizes 1M
    .venv/bin/python benchmarks/bench_pdq_index.py --sizes 1M,10M --te-queries 200
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from bastion.index import PdqIndex, words_to_hex  # noqa: E402
from bastion.index.pdq import _plan  # noqa: E402
from bastion.index.pdq_flat import hamming_rows  # noqa: E402
from bastion.index.pdq_mih import plan_cost  # noqa: E402

PLANTED = 1_000
MAX_PLANTED_DISTANCE = 31


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss(trim: bool = False) -> int:
    """Resident bytes of this process; ``trim``: first hand freed heap pages back to the
    system (glibc keeps freed build temporaries otherwise; a server would reuse them)."""
    gc.collect()
    if trim:
        _malloc_trim()
    return int(psutil.Process().memory_info().rss)


def balanced_words(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 256-bit hashes with exactly 128 bits set, as (n, 4) uint64 words.

    Uniform random bits, then rows off 128 get random single-bit flips toward 128 until all
    are balanced. Every step treats the 256 positions alike, so the result is uniform over all
    hashes of weight 128 (any permutation-invariant distribution on one weight class is).
    """
    out = np.empty((n, 4), dtype=np.uint64)
    one = np.uint64(1)
    for lo in range(0, n, 1 << 20):
        w = rng.integers(0, 2**64, size=(min(n, lo + (1 << 20)) - lo, 4), dtype=np.uint64)
        pc = np.bitwise_count(w).sum(axis=1, dtype=np.int64)
        active = np.flatnonzero(pc != 128)
        while active.size:
            pos = rng.integers(0, 256, size=active.size)
            col = pos >> 6
            shift = (63 - (pos & 63)).astype(np.uint64)
            bit = (w[active, col] >> shift) & one
            want = (pc[active] > 128).astype(np.uint64)  # flip a 1 if too many, else a 0
            ok = bit == want
            rows, c, s = active[ok], col[ok], shift[ok]
            w[rows, c] ^= one << s
            pc[rows] += np.where(want[ok] == 1, -1, 1)
            active = active[pc[active] != 128]
        out[lo : lo + w.shape[0]] = w
    return out


def flip_spread(words: np.ndarray, distances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``words`` with ``distances[i]`` bits of row i flipped, evenly spaced over the
    256 bits from a random phase."""
    out = words.copy()
    one = np.uint64(1)
    for i, d in enumerate(distances.tolist()):
        phase = int(rng.integers(0, 256))
        for k in range(d):
            b = (phase + (k * 256) // d) % 256
            out[i, b >> 6] ^= one << np.uint64(63 - (b & 63))
    return out


def fault_in_seconds_per_gib() -> float:
    """Seconds to fault in 1 GiB of fresh memory (measured on 256 MiB): build, merge and save
    times are dominated by this on a VM where it is slow."""
    t0 = time.perf_counter()
    a = np.empty(256 << 20, dtype=np.uint8)
    a[::4096] = 1
    dt = time.perf_counter() - t0
    del a
    return dt * 4


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) * 1e3


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "KM" else s) * mult)


def run(n: int, args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    print(f"\n=== bank of {n:,} random hashes + {PLANTED:,} planted (load {os.getloadavg()})")
    sources = balanced_words(rng, PLANTED)
    distances = np.arange(PLANTED) % (MAX_PLANTED_DISTANCE + 1)
    planted = flip_spread(sources, distances, rng)
    others = balanced_words(rng, PLANTED * 7)  # stand-ins for the other 7 dihedral variants
    base = rss(trim=True)
    t_gen, bank = timed(lambda: balanced_words(rng, n))
    words = np.concatenate([bank, planted])
    del bank
    ids = np.arange(n + PLANTED, dtype=np.int64)
    print(
        f"generated in {t_gen:.1f} s; faulting in fresh memory costs "
        f"{fault_in_seconds_per_gib():.1f} s/GiB here now"
    )
    res = run_bastion(n, args, rng, base, words, ids, sources, others, distances)
    gc.collect()
    if args.te_queries:
        res.update(run_threatexchange(n, args, words, ids, sources, others, distances))
    return res


def run_bastion(
    n: int,
    args: argparse.Namespace,
    rng: np.random.Generator,
    base: int,
    words: np.ndarray,
    ids: np.ndarray,
    sources: np.ndarray,
    others: np.ndarray,
    distances: np.ndarray,
) -> dict[str, float]:
    planted_ids = ids[n:]
    res: dict[str, float] = {}
    t_build, index = timed(lambda: PdqIndex.from_arrays(ids, words))
    mem_raw = rss() - base
    mem = rss(trim=True) - base
    st = index.stats()
    res["build_s"] = t_build
    res["rss_per_hash"] = mem / (n + PLANTED)
    widths = sorted(set(st.widths))
    print(f"build: {t_build:.2f} s; layout {len(st.widths)} tables of {widths} bits")
    print(
        f"memory: RSS delta {mem / 2**20:,.0f} MiB = {res['rss_per_hash']:.1f} B/hash after "
        f"malloc_trim ({mem_raw / (n + PLANTED):.1f} before); arrays "
        f"{st.nbytes / (n + PLANTED):.1f} B/hash; hashes and ids included"
    )

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        snap = Path(tmp) / "pdq.npz"
        t_save, _ = timed(lambda: index.save(snap, meta={"log_position": 1}))
        t_load, loaded = timed(lambda: PdqIndex.load(snap))
        size = snap.stat().st_size
        probe = words_to_hex(sources[:5])
        assert loaded.search(probe).tolist() == index.search(probe).tolist()
        del loaded
    res["load_s"] = t_load
    print(
        f"snapshot: save {t_save:.2f} s, load {t_load:.2f} s "
        f"({size / 2**20:,.0f} MiB, {size / (n + PLANTED):.0f} B/hash)"
    )

    # Queries: one variant (the planted one's source) and 8 variants in one call.
    q1: list[float] = []
    q8: list[float] = []
    found1 = found8 = 0
    for k in range(PLANTED):
        one = sources[k : k + 1]
        eight = np.concatenate([one, others[7 * k : 7 * k + 7]])
        dt, m = timed(lambda one=one: index.search(one))
        q1.append(dt)
        found1 += (planted_ids[k], int(distances[k])) in m.for_query(0)
        dt, m = timed(lambda eight=eight: index.search(eight))
        q8.append(dt)
        found8 += (planted_ids[k], int(distances[k])) in m.for_query(0)
    res.update(p50_1=pct(q1, 50), p99_1=pct(q1, 99), p50_8=pct(q8, 50), p99_8=pct(q8, 99))
    print(
        f"bastion   1 variant : p50 {res['p50_1']:.2f} ms  p99 {res['p99_1']:.2f} ms  "
        f"recall {found1}/{PLANTED}"
    )
    print(
        f"bastion   8 variants: p50 {res['p50_8']:.2f} ms  p99 {res['p99_8']:.2f} ms  "
        f"recall {found8}/{PLANTED}"
    )
    res["recall"] = min(found1, found8) / PLANTED

    # Where the time of an 8-variant query goes: each part timed on fresh queries (so its
    # memory reads are as cold as in a real query).
    main = index._main
    radii, _ = _plan(main.tables.layout, index.threshold, main.n)
    probes, cands = plan_cost(main.tables.layout, radii, main.n)
    t_all: list[float] = []
    t_cand: list[float] = []
    t_ver: list[float] = []
    n_cand = 0
    fresh = balanced_words(rng, 3 * 8 * 200).reshape(3, 200, 8, 4)
    for k in range(200):
        dt, _ = timed(lambda e=fresh[0, k]: index.search(e))
        t_all.append(dt)
        dt, (_, rows) = timed(lambda e=fresh[1, k]: main.tables.candidates(e, radii))
        t_cand.append(dt)
        n_cand += rows.size
        qi2, rows2 = main.tables.candidates(fresh[2, k], radii)
        dt, _ = timed(
            lambda r=rows2, q=qi2, e=fresh[2, k]: hamming_rows(
                np.take(main.words, r, axis=0), np.take(e, q, axis=0)
            )
        )
        t_ver.append(dt)
    c50, v50, a50 = (float(np.median(x)) * 1e3 for x in (t_cand, t_ver, t_all))
    print(
        f"8-variant query breakdown (p50 {a50:.2f} ms): {probes:.0f} buckets probed and "
        f"{n_cand / 200 / 8:,.0f} candidates per variant (model {cands:,.0f}); finding candidates "
        f"(offsets, posting runs) {c50:.2f} ms, checking them (gather 32-byte hashes, popcount) "
        f"{v50:.2f} ms, the rest (dedupe, tombstones, ids, delta, sort) "
        f"{max(0.0, a50 - c50 - v50):.2f} ms"
    )

    # Insert -> matchable, and merges.
    new = balanced_words(rng, 200)
    t_ins: list[float] = []
    t_add: list[float] = []
    for j in range(200):
        t0 = time.perf_counter()
        index.add([10**12 + j], new[j : j + 1])
        t1 = time.perf_counter()
        ok = (10**12 + j, 0) in index.search(new[j : j + 1]).for_query(0)
        t2 = time.perf_counter()
        assert ok, "inserted hash not matchable"
        t_add.append(t1 - t0)
        t_ins.append(t2 - t0)
    res["insert_p50_ms"] = pct(t_ins, 50)
    print(
        f"insert -> matchable: add p50 {pct(t_add, 50):.3f} ms; add + search finds it: "
        f"p50 {pct(t_ins, 50):.2f} ms, p99 {pct(t_ins, 99):.2f} ms (no rebuild)"
    )
    fill = balanced_words(rng, index.delta_capacity - 201)
    index.add(np.arange(2 * 10**12, 2 * 10**12 + fill.shape[0]), fill)
    dq: list[float] = []
    for k in range(100):
        eight = np.concatenate([sources[k : k + 1], others[7 * k : 7 * k + 7]])
        dt, _ = timed(lambda e=eight: index.search(e))
        dq.append(dt)
    t_merge, _ = timed(index.merge)
    res["merge_s"] = t_merge
    print(
        f"with a full delta ({index.delta_capacity - 1:,} rows): 8 variants p50 "
        f"{pct(dq, 50):.2f} ms; merging it into the tables: {t_merge:.2f} s "
        f"(in a background thread with background_merge=True)"
    )
    return res


def run_threatexchange(
    n: int,
    args: argparse.Namespace,
    words: np.ndarray,
    ids: np.ndarray,
    sources: np.ndarray,
    others: np.ndarray,
    distances: np.ndarray,
) -> dict[str, float]:
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    faiss.omp_set_num_threads(1)
    base = rss(trim=True)
    hexes = words_to_hex(words)
    t_build, te = timed(lambda: PDQIndex(zip(hexes, ids.tolist(), strict=True)))
    hexes.clear()
    mem = rss(trim=True) - base
    print(
        f"threatexchange PDQIndex: build {t_build:.1f} s, RSS delta {mem / 2**20:,.0f} MiB = "
        f"{mem / (n + PLANTED):.0f} B/hash"
    )
    src_hex = words_to_hex(sources)
    oth_hex = words_to_hex(others)
    q1: list[float] = []
    q8: list[float] = []
    found1 = found8 = 0
    nq = min(args.te_queries, PLANTED)
    for k in range(nq):
        want = (n + k, int(distances[k]))
        dt, m = timed(lambda k=k: te.query(src_hex[k]))
        q1.append(dt)
        found1 += want in {(x.metadata, x.similarity_info.distance) for x in m}
        variants = [src_hex[k], *oth_hex[7 * k : 7 * k + 7]]
        dt, ms = timed(lambda v=variants: [te.query(h) for h in v])
        q8.append(dt)
        found8 += want in {(x.metadata, x.similarity_info.distance) for x in ms[0]}
    out = {
        "te_p50_1": pct(q1, 50),
        "te_p99_1": pct(q1, 99),
        "te_p50_8": pct(q8, 50),
        "te_p99_8": pct(q8, 99),
    }
    print(
        f"threatexchange 1 variant : p50 {out['te_p50_1']:.2f} ms  p99 {out['te_p99_1']:.2f} ms"
        f"  recall {found1}/{nq}"
    )
    print(
        f"threatexchange 8 variants: p50 {out['te_p50_8']:.2f} ms  p99 {out['te_p99_8']:.2f} ms"
        f"  recall {found8}/{nq}"
    )
    out["te_sum_p50_8"] = 8 * out["te_p50_1"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1M", help="comma-separated bank sizes, e.g. 1M,10M")
    p.add_argument(
        "--te-queries",
        type=int,
        default=200,
        help="queries sent to threatexchange's PDQIndex (0 skips it)",
    )
    p.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: no pinning)")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--tmp", default=None, help="folder for the snapshot file")
    args = p.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}")
    print("figures are indicative: the 2-core machine is shared with other engineers' jobs")
    results = {}
    for size in args.sizes.split(","):
        n = parse_size(size)
        results[n] = run(n, args)
    print("\n=== summary (ms; ratio = threatexchange / bastion)")
    for n, r in results.items():
        line = (
            f"{n:>11,}: bastion 1 variant p50 {r['p50_1']:.2f} p99 {r['p99_1']:.2f}; "
            f"8 variants p50 {r['p50_8']:.2f} p99 {r['p99_8']:.2f}; recall {r['recall']:.0%}; "
            f"build {r['build_s']:.1f} s, load {r['load_s']:.1f} s; "
            f"{r['rss_per_hash']:.0f} B/hash RSS"
        )
        if "te_p50_1" in r:
            line += (
                f"\n{'':>13}threatexchange 1 variant p50 {r['te_p50_1']:.2f}, 8 variants p50 "
                f"{r['te_p50_8']:.2f}; ratio 1 variant {r['te_p50_1'] / r['p50_1']:.1f}x, "
                f"8 variants {r['te_p50_8'] / r['p50_8']:.1f}x (against 8 x its 1-variant p50: "
                f"{r['te_sum_p50_8'] / r['p50_8']:.1f}x)"
            )
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
