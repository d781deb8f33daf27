"""Bank store figures: import rate, snapshot load, change-log freshness, content-log scan.

Usage: ``.venv/bin/python benchmarks/bench_bank_store.py [--rows 100000] [--pg URL]``
(PostgreSQL also when BASTION_TEST_DATABASE_URL is set; a throwaway schema is used and
dropped). Figures are indicative: this machine has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import tempfile
import threading
import time

import numpy as np
from sqlalchemy import create_engine, text

from bastion.banks import service
from bastion.banks.importing import ImportLimits, import_stream
from bastion.banks.schemas import BankCreate
from bastion.signals.base import Signal
from bastion.store import bank_repository as repo
from bastion.store.change_log import ChangeFollower, current_cursor, load_snapshot
from bastion.store.content_log import find_pdq_near, log_item
from bastion.store.database import Database, migrate


def _pdq_like(rng: np.random.Generator, n: int) -> list[str]:
    """Random 256-bit hashes with exactly 128 bits set, as 64 hex."""
    out = []
    for _ in range(n):
        bits = np.zeros(256, dtype=np.uint8)
        bits[rng.choice(256, 128, replace=False)] = 1
        out.append(np.packbits(bits).tobytes().hex())
    return out


def run(db: Database, label: str, rows: int) -> None:
    rng = np.random.default_rng(1)
    hashes = _pdq_like(rng, rows)
    csv_bytes = ("signal_type,value\n" + "".join(f"pdq,{h}\n" for h in hashes)).encode()
    with db.write() as s:
        service.create(s, data=BankCreate(name="bench"))
    t0 = time.perf_counter()
    with db.write() as s:
        rep = import_stream(s, name="bench", binary=io.BytesIO(csv_bytes), fmt="csv",
                            limits=ImportLimits(max_rows=rows + 1))
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap = load_snapshot(db)
    t_snap = time.perf_counter() - t0
    # Freshness: commit -> delivered by a follower polling every 50 ms.
    follower = ChangeFollower(db, current_cursor(db))
    seen: dict[int, float] = {}
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            for c in follower.poll():
                if c.entry is not None:
                    seen[c.entry.id] = time.perf_counter()
            time.sleep(0.05)

    th = threading.Thread(target=follow)
    th.start()
    committed: dict[int, float] = {}
    extra = _pdq_like(rng, 40)
    for h in extra:
        with db.write() as s:
            stored, _ = repo.add_entries(s, repo.get_bank(s, "bench"), [repo.NewEntry("pdq", h)])
        committed[stored[0].id] = time.perf_counter()
        time.sleep(0.02)
    time.sleep(0.5)
    stop.set()
    th.join()
    lat = [seen[i] - t for i, t in committed.items() if i in seen]
    # Content log: log items, then a brute-force PDQ retro-hunt over them.
    n_items = min(rows, 20_000)
    t0 = time.perf_counter()
    with db.write() as s:
        for h in hashes[:n_items]:
            log_item(s, signals=[Signal("pdq", h, 100)], content_id=None, keep_dihedral=False)
    t_log = time.perf_counter() - t0
    t0 = time.perf_counter()
    with db.read() as s:
        hits = find_pdq_near(s, hashes[:10], use_dihedral=False)
    t_scan = time.perf_counter() - t0
    rate = rep.stored / t_import
    print(f"[{label}] import {rep.stored} PDQ rows: {t_import:.1f} s ({rate:,.0f} rows/s)")
    print(f"[{label}] snapshot load of {len(snap.entries)} entries: {t_snap:.2f} s")
    p50 = statistics.median(lat) * 1000
    print(f"[{label}] change visible to a 50 ms follower: p50 {p50:.0f} ms, "
          f"max {max(lat) * 1000:.0f} ms, delivered {len(lat)}/{len(committed)}")
    print(f"[{label}] content log: {n_items} items in {t_log:.1f} s ({n_items / t_log:,.0f}/s); "
          f"PDQ scan of 10 queries over them {t_scan * 1000:.0f} ms ({len(hits)} hits)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--pg", default=os.environ.get("BASTION_TEST_DATABASE_URL"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        migrate(db)
        run(db, "sqlite", args.rows)
        db.dispose()
    if args.pg:
        schema = f"bastion_bench_{secrets.token_hex(4)}"
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            db = Database(args.pg, pg_schema=schema)
            migrate(db)
            run(db, "postgresql", args.rows)
            db.dispose()
        finally:
            with admin.connect() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
