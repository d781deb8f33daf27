"""Outbox figures: enqueue rate, and delivery rate of signed webhooks to a receiver on
127.0.0.1 with 1 and 2 workers (threads; ratio 2:1 printed), on SQLite and, when
``BASTION_TEST_DATABASE_URL`` is set, PostgreSQL (a throwaway schema, dropped after).

Usage: ``.venv/bin/python benchmarks/bench_outbox.py [--actions 2000] [--items 200]``.
Figures are indicative: this machine has 2 cores shared with other work, and the receiver
runs in the same process (it verifies every signature, as a platform would).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bastion.actions import outbox
from bastion.actions.webhooks import SIGNATURE_HEADER, WebhookDeliverer, verify
from bastion.actions.worker import ActionWorker
from bastion.config import Settings
from bastion.store.database import Database, migrate

SECRET = b"bench-secret"


def _receiver() -> tuple[ThreadingHTTPServer, list[int]]:
    seen = [0, 0]  # accepted, rejected
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
            with lock:
                seen[0 if ok else 1] += 1
            self.send_response(204 if ok else 401)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _run(db: Database, home: Path, url: str, n: int, items: int, workers: int) -> float:
    settings = Settings(home=home, webhook_urls={"*": url}, webhook_secret=SECRET.decode())
    with db.write() as s:
        for i in range(n):
            outbox.enqueue(s, kind="hide", content_id=f"c{i % items}", settings=settings)
    dels = [WebhookDeliverer(settings) for _ in range(workers)]
    ws = [ActionWorker(db, settings, d, batch=50) for d in dels]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=w.run_once) for w in ws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while ws[0].run_once().busy:
        pass
    dt = time.perf_counter() - t0
    for d in dels:
        d.close()
    return n / dt


def bench(label: str, make_db: Any, n: int, items: int) -> None:
    server, seen = _receiver()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = make_db(home)
        settings = Settings(home=home)
        t0 = time.perf_counter()
        with db.write() as s:
            for i in range(n):
                outbox.enqueue(s, kind="takedown", content_id=f"e{i}", settings=settings)
        enq = n / (time.perf_counter() - t0)
        with db.write() as s:
            s.execute(text("DELETE FROM actions"))
        r1 = _run(db, home, url, n, items, 1)
        r2 = _run(db, home, url, n, items, 2)
        db.dispose()
    server.shutdown()
    print(f"{label}: enqueue {enq:,.0f} actions/s (one transaction); delivery "
          f"{r1:,.0f}/s with 1 worker, {r2:,.0f}/s with 2 (ratio {r2 / r1:.2f}); "
          f"receiver accepted {seen[0]}, rejected {seen[1]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actions", type=int, default=2000)
    ap.add_argument("--items", type=int, default=200)
    a = ap.parse_args()

    def sqlite(home: Path) -> Database:
        db = Database(f"sqlite:///{home / 'b.db'}")
        migrate(db)
        return db

    bench("sqlite", sqlite, a.actions, a.items)
    pg = os.environ.get("BASTION_TEST_DATABASE_URL")
    if pg:
        schema = f"bench_{secrets.token_hex(4)}"
        admin = create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            def postgres(home: Path) -> Database:
                sep = "&" if "?" in pg else "?"
                db = Database(f"{pg}{sep}options=-csearch_path%3D{schema}")
                migrate(db)
                return db

            bench("postgresql", postgres, a.actions, a.items)
        finally:
            with admin.connect() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
