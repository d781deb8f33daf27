"""Freshness: a bank change made by one process is matched by another within 1 second,
with no rebuild (the second process follows the bank change log)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.store.database import Database

HASH = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"

CHILD = """
import sys
from bastion.scan.service import MatchService
from bastion.signals.base import Signal
from bastion.store.database import Database
svc = MatchService(Database(sys.argv[1]), poll_interval_s=0.1)
svc.start(background=False, follow=True)
print("ready", flush=True)
for line in sys.stdin:
    hits = svc.match_signals([Signal("pdq", sys.argv[2], 100)])
    print(",".join(str(m.entry_id) for m in hits) or "-", flush=True)
"""


def _visible_within(child: subprocess.Popen[str], want: str, limit_s: float) -> float:
    """Query the child until its answer is ``want``; return the seconds that took."""
    assert child.stdin is not None and child.stdout is not None
    t0 = time.monotonic()
    while True:
        child.stdin.write("q\n")
        child.stdin.flush()
        got = child.stdout.readline().strip()
        elapsed = time.monotonic() - t0
        if got == want:
            return elapsed
        assert elapsed < limit_s, f"still {got!r} after {elapsed:.2f} s, wanted {want!r}"
        time.sleep(0.02)


def test_add_disable_enable_delete_visible_in_other_process_within_1s(db: Database) -> None:
    with db.write() as session:
        banks.create(session, data=BankCreate(name="b", label="csam"))
    env = {**os.environ}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db.url, HASH], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert _visible_within(child, "-", 1.0) < 1.0
        with db.write() as session:
            entry, _ = banks.add_entry(
                session, name="b", fields={"signal_type": "pdq", "value": HASH}
            )
        assert _visible_within(child, str(entry.id), 1.0) < 1.0
        with db.write() as session:
            banks.set_entry_enabled(session, name="b", entry_id=entry.id, enabled=False)
        assert _visible_within(child, "-", 1.0) < 1.0
        with db.write() as session:
            banks.set_entry_enabled(session, name="b", entry_id=entry.id, enabled=True)
        assert _visible_within(child, str(entry.id), 1.0) < 1.0
        with db.write() as session:
            banks.delete_entry(session, name="b", entry_id=entry.id)
        assert _visible_within(child, "-", 1.0) < 1.0
    finally:
        child.kill()
        child.wait()
