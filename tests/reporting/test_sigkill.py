"""Kill the worker (SIGKILL) in the middle of delivering actions and at each step of
submitting a report, start it again: every action is delivered at least once (the receiver
sees each idempotency key), and the incident has exactly one CyberTipline report with all
its files uploaded, described and finished, or, when the kill fell between /submit and
storing its id, the report is needs_reconciliation and nothing was submitted twice."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.actions.receiver import Receiver, start_receiver
from tests.reporting.incidents import XSD
from tests.reporting.test_service import FILES, LOCATORS, incident

from bastion.actions import outbox
from bastion.config import Settings
from bastion.reporting import service as reports
from bastion.reporting.xml import CyberTiplineSchema
from bastion.store.database import Database
from bastion.testing.fake_cybertipline import FakeCyberTipline

pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parent / "worker_proc.py"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, server = start_receiver(b"whsec")
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()


def _start(db: Database, fake: FakeCyberTipline, receiver: Receiver,
           home: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), db.url, fake.url, receiver.url + "/hook", str(FILES),
         str(home), str(XSD)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _wait(pred: object, timeout: float = 60.0) -> None:
    assert callable(pred)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, cybertipline_xsd=XSD)


def test_kill_mid_delivery_every_action_arrives(db: Database, tmp_path: Path,
                                                fake: FakeCyberTipline,
                                                receiver: Receiver) -> None:
    settings = _settings(tmp_path)
    keys = []
    with db.write() as s:
        for i in range(24):
            a = outbox.enqueue(s, kind=("hide", "takedown", "suspend")[i % 3],
                               content_id=f"c{i % 4}", settings=settings)
            keys.append(a.idempotency_key)
    receiver.hold = threading.Event()
    receiver.hold_from = 9  # the tenth request hangs: the worker is killed mid-delivery
    proc = _start(db, fake, receiver, tmp_path)
    try:
        assert receiver.arrived.wait(60)
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    receiver.hold.set()  # the held request completes at the receiver after the kill
    delivered_before = len(receiver.keys())
    assert 0 < delivered_before < 24
    receiver.hold = None
    proc = _start(db, fake, receiver, tmp_path)
    try:
        _wait(lambda: set(receiver.keys()) >= set(keys))
    finally:
        _kill(proc)
    got = receiver.keys()
    assert set(got) == set(keys)  # at least once, each key seen
    assert len(got) - len(set(got)) <= 1  # only the action in flight at the kill repeated
    with db.read() as s:
        assert all(a.state == "delivered" for a in outbox.list_actions(s))
    for c in range(4):  # per content item: first deliveries in order of creation
        mine = [k for k in keys if k in {a.idempotency_key for a in _actions(db, f"c{c}")}]
        firsts = list(dict.fromkeys(k for k in got if k in mine))
        assert firsts == mine


def _actions(db: Database, content_id: str) -> list[outbox.Action]:
    with db.read() as s:
        return outbox.list_actions(s, content_id=content_id)


KILL_POINTS = [("submit", "before"), ("submit", "after"), ("upload", "before"),
               ("upload", "after"), ("fileinfo", "after"), ("finish", "before"),
               ("finish", "after")]


@pytest.mark.parametrize(("step", "when"), KILL_POINTS)
def test_kill_at_each_step_of_submitting(db: Database, tmp_path: Path,
                                         fake: FakeCyberTipline, receiver: Receiver,
                                         step: str, when: str) -> None:
    settings = _settings(tmp_path)
    schema = CyberTiplineSchema.from_path(XSD)
    with db.write() as s:
        rid = reports.create_draft(s, incident=incident(), schema=schema, settings=settings,
                                   actor="cli:test").id
        reports.approve(s, rid, actor="cli:admin")
    arrived = fake.hold(step, when=when)
    proc = _start(db, fake, receiver, tmp_path)
    try:
        assert arrived.wait(60), f"the worker never reached {step}"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = _start(db, fake, receiver, tmp_path)

    def settled() -> bool:
        with db.read() as s:
            return reports.get(s, rid).state in ("submitted", "needs_reconciliation",
                                                 "failed")
    try:
        _wait(settled)
    finally:
        _kill(proc)
    with db.read() as s:
        v = reports.get(s, rid)
    snap = fake.snapshot()
    # nothing was ever submitted twice (a request held "before" was never processed)
    assert snap["calls"]["submit"] == (0 if (step, when) == ("submit", "before") else 1)
    assert snap["invalid_documents"] == []
    if step == "submit":
        assert v.state == "needs_reconciliation" and v.ncmec_report_id is None
        assert len(snap["reports"]) == (1 if when == "after" else 0)
        return
    assert v.state == "submitted", v.last_error
    assert len(snap["reports"]) == 1
    (report,) = snap["reports"].values()
    assert report["finished"] and not report["retracted"]
    described = [f for f in report["files"].values() if f["fileinfo"] is not None]
    want = sorted(hashlib.md5((FILES / n).read_bytes()).hexdigest() for n in LOCATORS)
    assert sorted(f["md5"] for f in described) == want  # every file uploaded and described
    # a kill between /upload and storing its file id re-uploads that one file (the API
    # cannot list a report's files); any extra copy is a file of the same report
    extra = [f for f in report["files"].values() if f["fileinfo"] is None]
    assert len(extra) <= (1 if (step, when) == ("upload", "after") else 0)
    assert all(f["md5"] in want for f in extra)
