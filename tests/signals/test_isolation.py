"""Isolated decode workers: a crash, a hang, a CPU spin or a memory hog costs one file.

The simulated decoders below are module-level runners the workers import by name; each wraps
the real :func:`run_task` and misbehaves after the exact hashes were sent (or before, for
``early-``) when the file name asks for it.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import struct
import time
import zlib
from pathlib import Path

import pytest

from bastion.config import Limits
from bastion.signals.base import Signal
from bastion.signals.compute import ExactPart, HashTask, OnExact, hash_bytes, hash_file, run_task
from bastion.signals.isolation import DecodePool
from bastion.signals.result import HashResult

ROOT = Path(__file__).resolve().parents[2]
JPEG = ROOT / "../shared/data/images/bridge-mods/aaa-orig.jpg"


def _misbehave(name: str) -> None:
    if "segv" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "abort" in name:
        os.abort()
    if "hang" in name:
        time.sleep(3600)
    if "spin" in name:
        while True:
            pass
    if "hog" in name:
        blocks = []
        while True:  # grows until the address-space limit refuses an allocation
            blocks.append(bytearray(256 * 1024 * 1024))


def faulty_runner(task: HashTask, on_exact: OnExact) -> HashResult:
    """Runs the real hashing, misbehaving as the file name asks."""
    name = Path(task.path or task.label or "").name
    if name.startswith("early-"):
        _misbehave(name)

    def exact_then_fault(part: ExactPart) -> None:
        on_exact(part)
        _misbehave(name)

    return run_task(task, exact_then_fault)


def limits_runner(task: HashTask, on_exact: OnExact) -> HashResult:
    """Reports the worker's resource limits and pid as notes."""
    result = run_task(task, on_exact)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.notes = [
        f"core={resource.getrlimit(resource.RLIMIT_CORE)}",
        f"as={resource.getrlimit(resource.RLIMIT_AS)[0]}",
        f"cpu={resource.getrlimit(resource.RLIMIT_CPU)[0]}",
        f"used={usage.ru_utime + usage.ru_stime}",
        f"pid={os.getpid()}",
    ]
    return result


def _note(result: HashResult, key: str) -> str:
    (value,) = [n.split("=", 1)[1] for n in result.notes if n.startswith(key + "=")]
    return value


def exact(result: HashResult) -> dict[str, str]:
    return {s.signal_type: s.value for s in result.signals
            if isinstance(s, Signal) and s.signal_type in ("md5", "sha1", "sha256")}


def copy_as(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(JPEG.read_bytes())
    return path


JPEG_MD5 = hashlib.md5(JPEG.read_bytes()).hexdigest()


def test_crashing_decoder_costs_only_that_file(tmp_path: Path) -> None:
    names = ["a.jpg", "segv.jpg", "b.jpg", "abort.jpg", "early-segv.jpg", "c.jpg"]
    paths = [copy_as(tmp_path, n) for n in names]
    with DecodePool(2, runner=faulty_runner) as pool:
        results = list(pool.map(HashTask(path=str(p)) for p in paths))
        assert pool.replaced == 3
    assert [r.path for r in results] == [str(p) for p in paths]
    by_name = {Path(str(r.path)).name: r for r in results}
    for ok in ("a.jpg", "b.jpg", "c.jpg"):
        assert by_name[ok].status == "hashed"
    assert by_name["segv.jpg"].reason == "decoder crashed (SIGSEGV)"
    assert by_name["abort.jpg"].reason == "decoder crashed (SIGABRT)"
    assert by_name["early-segv.jpg"].reason == "decoder crashed (SIGSEGV)"
    for bad in ("segv.jpg", "abort.jpg", "early-segv.jpg"):
        r = by_name[bad]
        assert r.status == "not_scanned"
        # Exact hashes survive the crash (sent before decoding, or recomputed by the parent).
        assert exact(r)["md5"] == JPEG_MD5
        assert r.media_type == "image"
    assert not list(tmp_path.glob("core*"))


def test_hanging_decoder_is_killed_after_the_timeout(tmp_path: Path) -> None:
    limits = Limits(decode_timeout_s=3.0)
    hang, ok = copy_as(tmp_path, "hang.jpg"), copy_as(tmp_path, "ok.jpg")
    with DecodePool(1, limits=limits, runner=faulty_runner) as pool:
        r = hash_file(hang, limits=limits, pool=pool)
        assert r.status == "not_scanned"
        assert r.reason == "decoder timed out after 3 s"
        assert exact(r)["md5"] == JPEG_MD5
        assert hash_file(ok, limits=limits, pool=pool).status == "hashed"
        assert pool.replaced == 1


def test_cpu_time_limit(tmp_path: Path) -> None:
    limits = Limits(decode_cpu_seconds=1, decode_timeout_s=60)
    with DecodePool(1, limits=limits, runner=faulty_runner) as pool:
        r = hash_file(copy_as(tmp_path, "spin.jpg"), limits=limits, pool=pool)
    assert r.status == "not_scanned"
    assert r.reason == "decoder CPU time limit exceeded (SIGXCPU)"
    assert exact(r)["md5"] == JPEG_MD5


def test_memory_limit(tmp_path: Path) -> None:
    limits = Limits(decode_memory_bytes=1536 * 1024 * 1024)
    with DecodePool(1, limits=limits, runner=faulty_runner) as pool:
        r = hash_file(copy_as(tmp_path, "hog.jpg"), limits=limits, pool=pool)
        assert r.status == "not_scanned"
        assert r.reason == "memory limit exceeded while decoding"
        assert exact(r)["md5"] == JPEG_MD5
        # The worker survived its MemoryError and goes on.
        assert hash_file(copy_as(tmp_path, "fine.jpg"), limits=limits, pool=pool).status == (
            "hashed")


def test_worker_limits_are_set_and_workers_reused(tmp_path: Path) -> None:
    limits = Limits(decode_memory_bytes=2 * 1024**3, decode_cpu_seconds=7)
    with DecodePool(1, limits=limits, runner=limits_runner) as pool:
        first = hash_file(JPEG, limits=limits, pool=pool)
        second = hash_bytes(JPEG.read_bytes(), path="upload-1", limits=limits, pool=pool)
    assert first.status == second.status == "hashed"
    assert second.path == "upload-1"
    assert _note(first, "core") == "(0, 0)"
    assert int(_note(first, "as")) == 2 * 1024**3
    cpu_soft, used = int(_note(first, "cpu")), float(_note(first, "used"))
    assert used < cpu_soft <= used + 8
    assert _note(first, "pid") == _note(second, "pid")
    assert int(_note(first, "pid")) != os.getpid()


def test_real_decoder_in_pool_refuses_a_bomb_within_a_small_memory_limit(tmp_path: Path) -> None:
    side = 20000
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(side + 1) * 100, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    # 400 megapixels would need > 1 GB to decode; the worker has 1 GiB of address space.
    limits = Limits(decode_memory_bytes=1024**3)
    with DecodePool(1, limits=limits) as pool:
        r = hash_file(path, limits=limits, pool=pool)
    assert r.status == "not_scanned"
    assert r.reason is not None and "pixel limit" in r.reason


def test_pool_results_in_input_order_and_parallel_equals_in_process(tmp_path: Path) -> None:
    images = sorted((ROOT / "../shared/data/images/bridge-mods").glob("*.jpg"))
    tasks = [HashTask(path=str(p)) for p in images]
    with DecodePool(2) as pool:
        pooled = list(pool.map(tasks))
    local = [run_task(t) for t in tasks]
    assert [r.to_json() for r in pooled] == [r.to_json() for r in local]
    assert [s.dihedral for r in pooled for s in r.signals if isinstance(s, Signal)] == [
        s.dihedral for r in local for s in r.signals if isinstance(s, Signal)]


def test_closed_pool_refuses_work() -> None:
    from bastion.errors import ConfigurationError

    pool = DecodePool(1)
    pool.close()
    with pytest.raises(ConfigurationError):
        pool.run(HashTask(path=str(JPEG)))
    with pytest.raises(ConfigurationError):
        DecodePool(0)
