"""The outbox and its worker against a signed-webhook receiver on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.actions.receiver import Receiver, start_receiver

from bastion.actions import outbox
from bastion.actions.webhooks import WebhookDeliverer, sign, verify
from bastion.actions.worker import ActionWorker
from bastion.config import Settings
from bastion.errors import Conflict, InvalidInput
from bastion.store.database import Database
from bastion.store.models_actions import ActionRow

SECRET = b"test-webhook-secret"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, server = start_receiver(SECRET)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: object, receiver: Receiver, **kw: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path, "webhook_urls": {"*": receiver.url + "/hook"},
        "webhook_secret": SECRET.decode(), "actions_backoff_s": 2.0,
        "actions_backoff_max_s": 60.0, "actions_max_age_s": 3600.0}
    values.update(kw)
    return Settings.model_validate(values)


def test_enqueue_is_part_of_the_callers_transaction(db: Database, tmp_path: object,
                                                    receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver)
    with pytest.raises(RuntimeError), db.write() as s:
        outbox.enqueue(s, kind="hide", content_id="c1", settings=settings)
        raise RuntimeError("the decision failed")
    with db.read() as s:
        assert outbox.list_actions(s) == []
    with db.write() as s:
        outbox.enqueue(s, kind="hide", content_id="c1", settings=settings,
                       idempotency_key="k1")
        with pytest.raises(Conflict):
            outbox.enqueue(s, kind="hide", settings=settings, idempotency_key="k1")
        with pytest.raises(InvalidInput, match="unknown action kind"):
            outbox.enqueue(s, kind="explode", settings=settings)


def test_delivery_is_signed_and_carries_the_idempotency_key(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver)
    with db.write() as s:
        a = outbox.enqueue(s, kind="takedown", content_id="c1", user_id="u1",
                           payload={"reason": "csam", "sha256": "ab" * 32}, settings=settings)
    deliverer = WebhookDeliverer(settings)
    try:
        r = ActionWorker(db, settings, deliverer).run_once()
    finally:
        deliverer.close()
    assert (r.delivered, r.failed) == (1, 0)
    assert receiver.keys() == [a.idempotency_key]
    got = receiver.received[0]
    assert got.path == "/hook"
    assert got.body["kind"] == "takedown" and got.body["content_id"] == "c1"
    assert got.body["payload"] == {"reason": "csam", "sha256": "ab" * 32}
    assert receiver.rejected == 0
    with db.read() as s:
        assert outbox.get(s, a.id).state == "delivered"


def test_signature_covers_timestamp_and_body_and_replay_window() -> None:
    body = b'{"kind":"hide"}'
    header = sign(SECRET, body, 1_700_000_000)
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)  # body changed
    assert not verify(b"other", header, body, now=1_700_000_100)  # wrong secret
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # replayed too late
    assert not verify(SECRET, header, body, now=1_700_000_000 - 301)
    forged = header.replace("t=1700000000", "t=1700000200")  # timestamp moved, same MAC
    assert not verify(SECRET, forged, body, now=1_700_000_200)
    assert not verify(SECRET, "garbage", body)


def test_unsigned_requests_are_refused_by_the_receiver(receiver: Receiver) -> None:
    import httpx

    r = httpx.post(receiver.url + "/hook", content=b"{}",
                   headers={"Idempotency-Key": "x", "Bastion-Signature": "t=1,v1=00"})
    assert r.status_code == 401 and receiver.rejected == 1 and receiver.received == []


def test_receiver_down_backoff_then_in_order_per_content_item(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver)
    clock = Clock()
    kinds = ["hide", "takedown", "suspend", "restore"]
    keys: dict[str, list[str]] = {"c1": [], "c2": []}
    with db.write() as s:
        for i, kind in enumerate(kinds):
            for cid in ("c1", "c2"):
                a = outbox.enqueue(s, kind=kind, content_id=cid, settings=settings,
                                   idempotency_key=f"{cid}-{i}", now=clock())
                keys[cid].append(a.idempotency_key)
    receiver.down = True
    deliverer = WebhookDeliverer(settings)
    worker = ActionWorker(db, settings, deliverer, clock=clock)
    try:
        r = worker.run_once()
        # only the first action of each content item was tried: the rest wait behind it
        assert (r.delivered, r.failed) == (0, 2)
        delays = []
        for _ in range(4):
            with db.read() as s:
                first = outbox.get(s, 1)
            delays.append((first.next_attempt_at - clock()).total_seconds())
            clock.now = first.next_attempt_at
            assert worker.run_once().failed == 2
        assert delays == [2.0, 4.0, 8.0, 16.0]  # exponential backoff
        with db.read() as s:
            assert outbox.get(s, 1).attempts == 5
            assert outbox.get(s, 1).last_error == "hide webhook answered HTTP 503"
        receiver.down = False
        clock.advance(60)
        r = worker.run_once()
    finally:
        deliverer.close()
    assert r.delivered == 8
    got = receiver.keys()
    for cid in ("c1", "c2"):
        assert [k for k in got if k.startswith(cid)] == keys[cid]  # order of creation


def test_past_max_age_dead_lettered_listed_and_retried(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver, actions_max_age_s=30.0)
    clock = Clock()
    with db.write() as s:
        a = outbox.enqueue(s, kind="hide", content_id="c9", settings=settings, now=clock())
        b = outbox.enqueue(s, kind="takedown", content_id="c9", settings=settings, now=clock())
    receiver.down = True
    deliverer = WebhookDeliverer(settings)
    worker = ActionWorker(db, settings, deliverer, clock=clock)
    try:
        dead = 0
        for _ in range(20):
            r = worker.run_once()
            dead += r.dead
            with db.read() as s:
                pending = [x for x in outbox.list_actions(s) if x.state == "pending"]
            if not pending:
                break
            later = [x.next_attempt_at for x in pending if x.next_attempt_at > clock()]
            clock.now = min(later) if later else clock.now
        assert dead == 2
        with db.read() as s:
            failed = outbox.list_actions(s, state="dead")
        assert {x.id for x in failed} == {a.id, b.id}
        with db.read() as s:
            assert outbox.counts(s) == {"pending": 0, "delivered": 0, "dead": 2, "blocked": 0}
        assert all(x.created_at + timedelta(seconds=30) <= clock() for x in failed)
        assert receiver.keys() == []
        receiver.down = False
        with db.write() as s:
            outbox.retry(s, a.id, settings=settings, now=clock())
            with pytest.raises(Conflict):
                outbox.retry(s, a.id, settings=settings)
            assert outbox.retry_all_dead(s, settings=settings, now=clock()) == 1
        assert worker.run_once().delivered == 2
    finally:
        deliverer.close()
    assert receiver.keys() == [a.idempotency_key, b.idempotency_key]


def test_no_endpoint_is_a_visible_failure(db: Database, tmp_path: object) -> None:
    settings = Settings(home=tmp_path, webhook_secret="s")
    with db.write() as s:
        a = outbox.enqueue(s, kind="share", settings=settings)
    deliverer = WebhookDeliverer(settings)
    try:
        assert ActionWorker(db, settings, deliverer).run_once().blocked == 1
    finally:
        deliverer.close()
    with db.read() as s:
        assert outbox.get(s, a.id).state == "blocked"
        assert "no webhook endpoint configured for share" in (outbox.get(s, a.id).last_error
                                                              or "")


def test_a_crashed_workers_lease_expires_and_another_delivers(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver)
    clock = Clock()
    with db.write() as s:
        a = outbox.enqueue(s, kind="hide", content_id="c1", settings=settings, now=clock())
    with db.write() as s:
        assert [x.id for x in outbox.claim_due(s, worker="crashed", now=clock())] == [a.id]
    with db.write() as s:  # still leased: nobody else takes it
        assert outbox.claim_due(s, worker="w2", now=clock()) == []
    clock.advance(outbox.LEASE_S + 1)
    deliverer = WebhookDeliverer(settings)
    try:
        assert ActionWorker(db, settings, deliverer, clock=clock, name="w2").run_once() \
            .delivered == 1
    finally:
        deliverer.close()
    with db.write() as s:  # the crashed worker's late outcome is ignored
        assert not outbox.record_delivered(s, a.id, worker="crashed")
    assert receiver.keys() == [a.idempotency_key]


def test_several_workers_deliver_each_action_once_in_order(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver)
    with db.write() as s:
        for i in range(60):
            outbox.enqueue(s, kind="hide", content_id=f"c{i % 6}", settings=settings,
                           idempotency_key=f"c{i % 6}-{i:03d}")
    deliverers = [WebhookDeliverer(settings) for _ in range(3)]
    workers = [ActionWorker(db, settings, d, batch=4) for d in deliverers]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        while workers[0].run_once().busy:  # whatever was blocked behind another's claim
            pass
    finally:
        for d in deliverers:
            d.close()
    got = receiver.keys()
    assert sorted(got) == sorted(set(got)) and len(got) == 60  # each exactly once
    for c in range(6):
        mine = [k for k in got if k.startswith(f"c{c}-")]
        assert mine == sorted(mine)  # per content item, in order of creation


def test_readme_verification_snippet_accepts_our_signatures() -> None:
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Platform webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    scope: dict[str, object] = {}
    exec(code.group(1), scope)
    readme_verify = scope["verify"]
    assert callable(readme_verify)
    body = b'{"kind":"takedown"}'
    now = int(time.time())
    assert readme_verify(SECRET, sign(SECRET, body, now), body)
    assert not readme_verify(SECRET, sign(SECRET, body, now), body + b"x")
    assert not readme_verify(SECRET, sign(SECRET, body, now - 400), body)


def test_internal_actions_do_not_wait_behind_a_platform_webhook(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    # takedown's endpoint does not answer; preserve and report (Bastion's own duties)
    # must not sit behind it for the takedown's maximum age.
    settings = _settings(tmp_path, receiver, webhook_urls={
        "takedown": "http://127.0.0.1:9/hook", "hide": "http://127.0.0.1:9/hook",
        "*": receiver.url + "/hook"})
    clock = Clock()
    with db.write() as s:
        hide = outbox.enqueue(s, kind="hide", content_id="c1", settings=settings, now=clock())
        take = outbox.enqueue(s, kind="takedown", content_id="c1", settings=settings,
                              now=clock())
        pres = outbox.enqueue(s, kind="preserve", content_id="c1", settings=settings,
                              now=clock())
        rep = outbox.enqueue(s, kind="report", content_id="c1", settings=settings,
                             now=clock())
        # a row written before internal kinds had lanes of their own is not held back either
        legacy = s.get(ActionRow, rep.id)
        assert legacy is not None and legacy.ordering_key != "content:c1"
        legacy.ordering_key = "content:c1"
    deliverer = WebhookDeliverer(settings)
    try:
        r = ActionWorker(db, settings, deliverer, clock=clock).run_once()
    finally:
        deliverer.close()
    assert r.delivered == 2
    assert receiver.keys() == [pres.idempotency_key, rep.idempotency_key]
    with db.read() as s:
        # platform webhooks keep their order among themselves: takedown waits for hide
        assert outbox.get(s, hide.id).attempts == 1
        assert outbox.get(s, take.id).attempts == 0
        assert outbox.get(s, take.id).state == "pending"


def test_missing_endpoint_is_blocked_at_once_listed_and_retried(
        db: Database, tmp_path: object, receiver: Receiver) -> None:
    settings = _settings(tmp_path, receiver, webhook_urls={})
    clock = Clock()
    with db.write() as s:
        take = outbox.enqueue(s, kind="takedown", content_id="c1", settings=settings,
                              now=clock())
        later = outbox.enqueue(s, kind="restore", content_id="c1", settings=settings,
                               now=clock())
    deliverer = WebhookDeliverer(settings)
    try:
        r = ActionWorker(db, settings, deliverer, clock=clock).run_once()
    finally:
        deliverer.close()
    assert (r.blocked, r.failed, r.delivered) == (2, 0, 0)
    with db.read() as s:
        t = outbox.get(s, take.id)
        assert t.state == "blocked"
        assert t.last_error == ("no webhook endpoint configured for takedown: "
                                "set webhook_urls")
        assert outbox.get(s, later.id).state == "blocked"
        assert outbox.counts(s)["blocked"] == 2
        assert {x.id for x in outbox.list_actions(s, state="blocked")} == {take.id, later.id}
        assert {x.id for x in outbox.list_actions(s, failed=True)} == {take.id, later.id}
    # the operator configures the endpoint; a retry delivers, in order
    settings = _settings(tmp_path, receiver)
    with db.write() as s:
        outbox.retry(s, take.id, settings=settings, now=clock())
        assert outbox.retry_all_dead(s, settings=settings, now=clock()) == 1
    deliverer = WebhookDeliverer(settings)
    try:
        assert ActionWorker(db, settings, deliverer, clock=clock).run_once().delivered == 2
    finally:
        deliverer.close()
    assert receiver.keys() == [take.idempotency_key, later.idempotency_key]
