"""API throughput and latency against a running ``bastion serve`` (issue 4's benchmark).

Usage::

    .venv/bin/python benchmarks/bench_api.py [--bank 1000000] [--seconds 10]
        [--workers 1 2] [--connections 16]

Builds a data directory with a bank of N random PDQ-like hashes (exactly 128 of 256 bits
set, as genuine PDQ hashes have) plus the sample bank, starts ``bastion serve`` (uvicorn;
``--workers`` processes, each loading its own indexes), and drives it with ``wrk`` (Debian
package; a separate process, one thread) for each scenario:

- ``POST /v1/match`` with one MD5;
- ``POST /v1/match`` with one PDQ hash (8 dihedral variants searched);
- ``POST /v1/match`` with a batch of 100 PDQ hashes;
- ``POST /v1/content`` uploading a 1000x750 JPEG (a new ``content_id`` each request, so
  every upload is hashed in an isolated decode worker, matched, logged and stored).

Each scenario with a latency goal runs twice: at saturation (``--connections``
connections sending back to back: the most requests/s), then paced at the goal's rate (32
connections, each waiting ``32 / rate`` s between requests: the latency a platform sees at
that load, which is what "N/s with p99 <= 50 ms" asks for).

Prints requests/s, p50/p99 latency, non-2xx counts, then an in-process breakdown of where
one request's time goes (matching, hashing, the HTTP stack). Figures are indicative only:
this machine has 2 cores shared with other engineers' work, and wrk takes CPU from the
server it measures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PDQ = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
GOALS = {"match_md5": (1500, 50), "match_pdq": (300, 50), "upload_jpeg": (60, None)}


def pdq_like(n: int, seed: int = 1) -> list[str]:
    """n random 256-bit hashes with exactly 128 bits set (64 hex each)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        order = np.argsort(rng.random((m, 256)), axis=1)
        bits = np.zeros((m, 256), dtype=np.uint8)
        np.put_along_axis(bits, order[:, :128], 1, axis=1)
        out.extend(row.tobytes().hex() for row in np.packbits(bits, axis=1))
    return out


def build_home(home: Path, n: int) -> tuple[str, float]:
    """Create the store with a bank of ``n`` PDQ hashes and an admin key; returns the key
    and the import seconds."""
    from bastion.apikeys import service as keys
    from bastion.banks import service
    from bastion.banks.importing import ImportLimits, import_stream
    from bastion.banks.sample import create_sample_bank
    from bastion.banks.schemas import BankCreate
    from bastion.config import load_settings
    from bastion.store.database import open_database

    db = open_database(load_settings(environ={}, home=home))
    t0 = time.perf_counter()
    with db.write() as s:
        create_sample_bank(s)
        service.create(s, data=BankCreate(name="million", label="bench"))
        csv = "signal_type,value\n" + "".join(f"pdq,{h}\n" for h in pdq_like(n))
        import_stream(s, name="million", binary=io.BytesIO(csv.encode()), fmt="csv",
                      limits=ImportLimits(max_rows=n + 1, max_bytes=1 << 31))
        _, key = keys.create(s, name="bench", scopes=["admin"])
    seconds = time.perf_counter() - t0
    db.dispose()
    return key, seconds


def jpeg_1000x750() -> bytes:
    """A 1000x750 JPEG of smooth gradients and noise (quality 90)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:750, 0:1000]
    img = np.stack([(x / 4) % 256, (y / 3) % 256, ((x + y) / 7) % 256], axis=2)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BASTION_HOME": str(home), "BASTION_API_RATE_PER_S": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "bastion.cli.main", "serve", "--port", str(port),
         "--workers", str(workers), "--no-sample", "--no-worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], key: str,
               timeout: float = 900) -> float:
    """Seconds until every worker process answers: 100 consecutive successful matches on
    fresh connections (with several workers, one may be ready before another)."""
    t0 = time.monotonic()
    ok = 0
    body = {"signals": [{"type": "md5", "value": "0" * 32}]}
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit("bastion serve exited")
        try:
            r = httpx.post(url + "/v1/match", json=body, timeout=5,
                           headers={"Authorization": f"Bearer {key}"})
            ok = ok + 1 if r.status_code == 200 else 0
            if ok >= 100:
                return time.monotonic() - t0
        except httpx.HTTPError:
            ok = 0
        time.sleep(0.01 if ok else 0.2)
    raise SystemExit("bastion serve never became ready")


LUA_JSON = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = [==[{body}]==]
"""

LUA_UPLOAD = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=BenchBoundary"
local f = io.open("{path}", "rb")
local jpeg = f:read("*a")
f:close()
local n = 0
local tag = tostring(math.random(1, 1000000000))
request = function()
  n = n + 1
  local body = "--BenchBoundary\\r\\n"
    .. "Content-Disposition: form-data; name=\\"content_id\\"\\r\\n\\r\\n"
    .. "bench-" .. tag .. "-" .. n .. "\\r\\n--BenchBoundary\\r\\n"
    .. "Content-Disposition: form-data; name=\\"file\\"; filename=\\"x.jpg\\"\\r\\n"
    .. "Content-Type: application/octet-stream\\r\\n\\r\\n" .. jpeg
    .. "\\r\\n--BenchBoundary--\\r\\n"
  return wrk.format(nil, nil, nil, body)
end
"""


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v if unit == "ms" else v * 1000


def paced(script: str, delay_ms: float) -> str:
    """``script`` with a wrk ``delay()`` of ``delay_ms`` before each request of a connection
    (wrk still waits for each response before the next delay)."""
    return script + f"\ndelay = function() return {max(0.0, delay_ms):.3f} end\n"


def run_paced(url: str, script: str, rate: float, seconds: int, connections: int,
              tmp: Path) -> dict[str, float]:
    """Latency at about ``rate`` requests/s: each connection's cycle is its delay plus the
    response time, so a 3 s calibration run measures the response time at the first guess
    (``connections / rate``) and the delay is corrected by it, up to 3 times, for the
    measured run."""
    target_cycle = connections * 1000.0 / rate
    delay = target_cycle
    for _ in range(3):  # calibrate: the response time adds to each connection's cycle
        r = run_wrk(url, paced(script, delay), 3, connections, tmp)
        if abs(r["rps"] - rate) <= 0.03 * rate:
            break
        cycle_ms = connections * 1000.0 / max(r["rps"], 1.0)
        delay = max(0.0, delay + target_cycle - cycle_ms)
    return run_wrk(url, paced(script, delay), seconds, connections, tmp)


def run_wrk(url: str, script: str, seconds: int, connections: int, tmp: Path) -> dict[str, float]:
    path = tmp / "s.lua"
    path.write_text(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency",
         "-s", str(path), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99,
            "non2xx": float(non2xx.group(1)) if non2xx else 0.0}


def breakdown(home: Path, jpeg: bytes, n_bank: int) -> dict[str, float]:
    """In-process: microseconds per operation behind each scenario."""
    from bastion.config import load_settings
    from bastion.content.signal_input import signals_from_json
    from bastion.scan.service import MatchService
    from bastion.signals.compute import hash_bytes
    from bastion.signals.isolation import DecodePool
    from bastion.store.database import open_database

    settings = load_settings(environ={}, home=home)
    db = open_database(settings)
    svc = MatchService(db)
    t0 = time.perf_counter()
    svc.start(background=False, follow=False)
    load_s = time.perf_counter() - t0
    md5 = signals_from_json([{"type": "md5", "value": "a" * 32}])
    pdq = signals_from_json([{"type": "pdq", "value": SAMPLE_PDQ}])
    batch = signals_from_json([{"type": "pdq", "value": h} for h in pdq_like(100, seed=9)])
    out: dict[str, float] = {"index_load_s": load_s}

    def per_call(fn: object, reps: int) -> float:
        t = time.perf_counter()
        for _ in range(reps):
            fn()  # type: ignore[operator]
        return (time.perf_counter() - t) / reps * 1e6

    out["match_md5_us"] = per_call(lambda: svc.match_signals(md5), 2000)
    out["match_pdq8_us"] = per_call(lambda: svc.match_signals(pdq), 200)
    out["match_batch100_us"] = per_call(
        lambda: [svc.match_signals([s]) for s in batch], 5)
    out["parse_100_signals_us"] = per_call(
        lambda: signals_from_json([{"type": "pdq", "value": SAMPLE_PDQ}] * 100), 20)
    out["hash_jpeg_inprocess_us"] = per_call(lambda: hash_bytes(jpeg), 10)
    out["hash_jpeg_query_variants_us"] = per_call(
        lambda: hash_bytes(jpeg, variants="query"), 10)
    with DecodePool(1) as pool:
        hash_bytes(jpeg, pool=pool)
        out["hash_jpeg_pool_us"] = per_call(
            lambda: hash_bytes(jpeg, pool=pool, variants="query"), 10)
    svc.close()
    db.dispose()
    out.update(upload_main_thread(home, jpeg))
    return out


def upload_main_thread(home: Path, jpeg: bytes, n: int = 40) -> dict[str, float]:
    """What an upload costs the serving process itself (HTTP parsing aside): wall time of
    ``ContentService.submit_bytes`` with decoding in the isolated workers, and the CPU time
    of the calling thread (matching the hashes against the bank, the verdict, case, content
    log and audit writes); the rest of the wall time is the decode worker's."""
    from fastapi.testclient import TestClient

    from bastion.api.app import create_app
    from bastion.config import load_settings
    from bastion.content.schemas import ContentMeta

    settings = load_settings(environ={}, home=home)
    app = create_app(settings)
    with TestClient(app) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.2)
        content = app.state.services.content
        tag = time.time_ns()

        def one(i: int) -> None:
            content.submit_bytes(jpeg, ContentMeta(content_id=f"bd-{tag}-{i}"), actor="bench")

        for i in range(3):
            one(-1 - i)
        c0, w0 = time.thread_time(), time.perf_counter()
        for i in range(n):
            one(i)
        return {"upload_submit_wall_us": (time.perf_counter() - w0) / n * 1e6,
                "upload_submit_main_thread_cpu_us": (time.thread_time() - c0) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bank", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--scenarios", nargs="+", help="run only these scenarios "
                    "(match_md5 match_pdq match_pdq_batch100 upload_jpeg)")
    ap.add_argument("--no-paced", action="store_true",
                    help="skip the runs paced at each goal's rate")
    ap.add_argument("--no-breakdown", action="store_true",
                    help="skip the in-process breakdown")
    ap.add_argument("--home", type=Path,
                    help="data directory to build once and reuse (default: a temporary one)")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    home = args.home or tmp / "home"
    print(f"machine: {os.cpu_count()} cores (shared; figures indicative)")
    key_file = home / "bench-key.txt"
    if key_file.is_file():
        key = key_file.read_text().strip()
        print(f"bank: reusing {home}")
    else:
        key, import_s = build_home(home, args.bank)
        key_file.write_text(key)
        print(f"bank: {args.bank} PDQ hashes + sample bank; import {import_s:.1f} s")
    jpeg = jpeg_1000x750()
    jpath = tmp / "upload.jpg"
    jpath.write_bytes(jpeg)
    batch = [{"type": "pdq", "value": h} for h in pdq_like(99, seed=5)] + [
        {"type": "pdq", "value": SAMPLE_PDQ}]
    scenarios = {
        "match_md5": ("/v1/match", LUA_JSON.format(key=key, body=json.dumps(
            {"signals": [{"type": "md5", "value": "d35c785545392755e7e4164457657269"}]}))),
        "match_pdq": ("/v1/match", LUA_JSON.format(key=key, body=json.dumps(
            {"signals": [{"type": "pdq", "value": SAMPLE_PDQ}]}))),
        "match_pdq_batch100": ("/v1/match", LUA_JSON.format(key=key, body=json.dumps(
            {"signals": batch}))),
        "upload_jpeg": ("/v1/content", LUA_UPLOAD.format(key=key, path=jpath)),
    }
    figures: dict[str, object] = {"bank": args.bank, "jpeg_bytes": len(jpeg)}
    port = 18500
    for workers in args.workers:
        proc = start_server(home, port, workers)
        url = f"http://127.0.0.1:{port}"
        try:
            ready_s = wait_ready(url, proc, key)
            print(f"\n== bastion serve --workers {workers} --no-worker (ready in {ready_s:.1f} s;"
                  f" {args.connections} connections (batches: 4), wrk -t1, {args.seconds} s each)")
            print(f"{'scenario':22} {'req/s':>9} {'items/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'non-2xx':>7}  goal")
            for name, (path, script) in scenarios.items():
                if args.scenarios and name not in args.scenarios:
                    continue
                conns = min(4, args.connections) if name.endswith("batch100") else args.connections
                r = run_wrk(url + path, script, args.seconds, conns, tmp)
                items = r["rps"] * (100 if name.endswith("batch100") else 1)
                goal = GOALS.get(name)
                gtxt = "" if goal is None else (
                    f">= {goal[0]}/s" + (f", p99 <= {goal[1]} ms" if goal[1] else ""))
                print(f"{name:22} {r['rps']:9.1f} {items:9.1f} {r['p50_ms']:8.2f} "
                      f"{r['p99_ms']:8.2f} {int(r['non2xx']):7d}  {gtxt}")
                figures[f"w{workers}:{name}"] = r
                if goal is not None and goal[1] is not None and not args.no_paced:
                    pconns = 32
                    r = run_paced(url + path, script, goal[0], args.seconds, pconns, tmp)
                    print(f"{name + ' @' + str(goal[0]) + '/s':22} {r['rps']:9.1f} "
                          f"{r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                          f"{int(r['non2xx']):7d}  paced at the goal rate ({pconns} conns)")
                    figures[f"w{workers}:{name}@goal"] = r
        finally:
            proc.terminate()
            proc.wait(30)
        port += 1
    if not args.no_breakdown:
        print("\n== where the time goes (in-process, one thread, microseconds per call)")
        b = breakdown(home, jpeg, args.bank)
        for k, v in b.items():
            print(f"{k:28} {v:12.1f}")
        figures["breakdown"] = b
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
