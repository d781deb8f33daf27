"""Cases: opened by the policy in the verdict's transaction (with encrypted media and
enqueued actions), the queue, claims, decisions and their effects (confirmed bank,
false-positive votes, second review), flags; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bastion.banks import service as banks
from bastion.banks.sample import create_sample_bank
from bastion.banks.schemas import BankCreate
from bastion.cases import service as cases
from bastion.config import Settings, load_settings
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.content.signal_input import signals_from_json
from bastion.errors import Conflict, InvalidInput
from bastion.evidence.keys import MasterKey
from bastion.evidence.vault import Vault
from bastion.policy import Policy, load_policy
from bastion.scan.service import MatchService
from bastion.store import bank_repository as repo
from bastion.store.audit import verify_chain
from bastion.store.database import Database
from bastion.store.models_actions import ActionRow

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/images"
BRIDGE = DATA / "bridge-mods/aaa-orig.jpg"


class Env:
    def __init__(self, db: Database, tmp_path: Path, policy: Policy | None = None,
                 verified_md5: bool = False) -> None:
        self.db = db
        with db.write() as s:
            create_sample_bank(s)
            if verified_md5:
                banks.create(s, data=BankCreate(name="verified", label="csam",
                                                auto_action=True))
                banks.add_entry(s, name="verified", fields={
                    "signal_type": "md5", "value": hashlib.md5(BRIDGE.read_bytes()).hexdigest(),
                    "classification": "A1"})
        self.settings: Settings = load_settings(environ={}, home=tmp_path / "home",
                                                decode_workers=0)
        self.matcher = MatchService(db)
        self.matcher.start(background=False, follow=False)
        self.vault = Vault(tmp_path / "home" / "evidence", MasterKey.generate())
        self.policy = policy or load_policy({})
        self.svc = ContentService(db=db, matcher=self.matcher, settings=self.settings,
                                  pool=None, policy=self.policy, vault=self.vault)

    def close(self) -> None:
        self.matcher.close()


@pytest.fixture
def env(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    e = Env(db, tmp_path)
    yield e
    e.close()


def _actions(db: Database) -> list[str]:
    with db.read() as s:
        return [a.kind for a in s.execute(select(ActionRow).order_by(ActionRow.id)).scalars()]


def test_match_opens_a_case_with_encrypted_media(env: Env) -> None:
    data = BRIDGE.read_bytes()
    v = env.svc.submit_bytes(data, ContentMeta(content_id="p1", user_id="u1"), actor="t")
    assert v.decision == "hold" and v.case_id is not None
    again = env.svc.submit_bytes(data, ContentMeta(content_id="p1", user_id="u1"), actor="t")
    assert again.replayed and again.case_id == v.case_id
    with env.db.read() as s:
        case = cases.get(s, case_id=int(v.case_id))
        assert (case.state, case.source, case.media, case.hidden, case.banks) == (
            "open", "match", "stored", False, ["sample"])
        assert case.priority == 65 and case.matches[0]["bank"] == "sample"
        assert case.evidence_id is not None
        assert env.vault.read(s, case.evidence_id) == data
        assert [c.id for c in cases.queue(s)] == [case.id]
        assert verify_chain(s).ok
    assert _actions(env.db) == []  # hold: nothing to deliver before review


def test_unrelated_photo_opens_nothing_and_signals_only_say_so(env: Env) -> None:
    other = sorted((DATA / "misc-images").glob("*.jpg"))[0]
    v = env.svc.submit_bytes(other.read_bytes(), ContentMeta(content_id="p2"), actor="t")
    assert v.decision == "allow" and v.case_id is None
    hashed = env.svc.hash(BRIDGE.read_bytes())
    sigs = signals_from_json([s.to_json() for s in hashed.signals])
    v2 = env.svc.submit_signals(sigs, ContentMeta(content_id="p3"), actor="t")
    with env.db.read() as s:
        assert cases.get(s, case_id=int(v2.case_id or 0)).media == "hashes_only"


def test_verified_exact_match_blocks_hides_and_enqueues(db: Database, tmp_path: Path) -> None:
    e = Env(db, tmp_path, verified_md5=True)
    try:
        v = e.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="x", user_id="u"),
                               actor="t")
        assert (v.decision, v.decision_rule) == ("block", "auto_action_strong_match")
        assert [a["kind"] for a in v.actions] == ["hide"]
        with db.read() as s:
            case = cases.get(s, case_id=int(v.case_id or 0))
        assert case.hidden and case.priority == 100
        assert _actions(db) == ["hide"]
    finally:
        e.close()


def test_claim_decide_not_violating_votes_and_disables(db: Database, tmp_path: Path) -> None:
    e = Env(db, tmp_path, policy=load_policy({"fp_votes_to_disable": 1}))
    try:
        v = e.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="p", user_id="u"),
                               actor="t")
        cid = int(v.case_id or 0)
        with db.write() as s:
            assert cases.claim(s, case_id=cid, reviewer=1, settings=e.settings).state == (
                "in_review")
        with db.write() as s, pytest.raises(Conflict, match="claimed"):
            cases.claim(s, case_id=cid, reviewer=2, settings=e.settings)
        with db.write() as s, pytest.raises(Conflict):
            cases.decide(s, case_id=cid, reviewer=2, decision="not_violating",
                         policy=e.policy, settings=e.settings)
        with db.write() as s:
            done = cases.decide(s, case_id=cid, reviewer=1, decision="not_violating",
                                policy=e.policy, settings=e.settings, notes="a bridge")
        assert (done.state, done.decision) == ("decided", "not_violating")
        entry_id = int(done.matches[0]["entry_id"])
        with db.read() as s:
            entry = repo.get_entry(s, entry_id)
            assert entry.fp_votes == 1 and not entry.enabled
            assert cases.queue(s) == []
            kinds = [ev["kind"] for ev in cases.events(s, case_id=cid)]
            assert kinds == ["open", "claim", "decide"]
        with db.write() as s, pytest.raises(Conflict, match="decided"):
            cases.decide(s, case_id=cid, reviewer=1, decision="csam", classification="A1",
                         policy=e.policy, settings=e.settings)
    finally:
        e.close()


def test_csam_decision_confirms_signals_and_prepares_actions(env: Env) -> None:
    v = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="c", user_id="u9"),
                             actor="t")
    cid = int(v.case_id or 0)
    with env.db.write() as s, pytest.raises(InvalidInput, match="classification"):
        cases.decide(s, case_id=cid, reviewer=1, decision="csam", policy=env.policy,
                     settings=env.settings)
    with env.db.write() as s, pytest.raises(InvalidInput, match="unknown classification 'Z9'"):
        cases.decide(s, case_id=cid, reviewer=1, decision="csam", classification="Z9",
                     policy=env.policy, settings=env.settings)
    with env.db.write() as s:
        done = cases.decide(s, case_id=cid, reviewer=1, decision="csam", classification="A2",
                            policy=env.policy, settings=env.settings)
    assert [a["kind"] for a in done.actions] == ["takedown", "preserve", "report"]
    assert _actions(env.db) == ["takedown", "preserve", "report"]
    with env.db.read() as s:
        bank = banks.get(s, name="confirmed")
        assert bank.auto_action and bank.label == "csam"
        entries = banks.list_entries(s, name="confirmed")
    types = sorted(en.signal_type for en in entries)
    assert types == ["md5", "pdq", "sha1", "sha256"]
    assert {en.classification for en in entries} == {"A2"}
    # a re-upload of the same picture under a new id is now blocked at once
    env.matcher.close()
    env.matcher = MatchService(env.db)
    env.matcher.start(background=False, follow=False)
    env.svc.matcher = env.matcher
    again = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="c2",
                                                                  user_id="u9"), actor="t")
    assert again.decision == "block"
    with env.db.read() as s:
        # the user's history raises the new case's priority
        assert cases.get(s, case_id=int(again.case_id or 0)).priority == 100


def test_second_review(db: Database, tmp_path: Path) -> None:
    e = Env(db, tmp_path, policy=load_policy({"second_review_csam": True}))
    try:
        v = e.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="s"), actor="t")
        cid = int(v.case_id or 0)
        with db.write() as s:
            first = cases.decide(s, case_id=cid, reviewer=1, decision="csam",
                                 classification="B1", policy=e.policy, settings=e.settings)
        assert first.state == "in_review" and first.second_review and _actions(db) == []
        with db.write() as s, pytest.raises(Conflict, match="second reviewer"):
            cases.decide(s, case_id=cid, reviewer=1, decision="csam", classification="B1",
                         policy=e.policy, settings=e.settings)
        with db.write() as s:
            final = cases.decide(s, case_id=cid, reviewer=2, decision="csam",
                                 classification="B1", policy=e.policy, settings=e.settings)
        assert final.state == "decided" and final.decided_by == 2
        assert _actions(db) == ["takedown", "preserve", "report"]
    finally:
        e.close()


def test_flags_open_and_raise_cases(env: Env) -> None:
    with env.db.write() as s:
        c = cases.flag(s, content_id="unknown-1", reporter="user-report:77", reason="abuse",
                       actor="api-key:1", user_id="u5")
    assert (c.source, c.state, c.priority, c.media) == ("flag", "open", 50, "none")
    with env.db.write() as s:
        c2 = cases.flag(s, content_id="unknown-1", reporter="mod:3", reason="again",
                        actor="api-key:1")
    assert c2.id == c.id and c2.priority == 55
    with env.db.read() as s:
        assert [x.id for x in cases.queue(s, min_priority=55)] == [c.id]
        assert cases.queue(s, bank="sample") == []
        assert [x.content_id for x in cases.user_cases(s, user_id="u5")] == ["unknown-1"]
        n = s.execute(select(func.count()).select_from(ActionRow)).scalar_one()
    assert n == 0
    with env.db.write() as s, pytest.raises(InvalidInput):
        cases.flag(s, content_id="", reporter="r", reason="x", actor="a")


def test_case_commands(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bastion.cli.main import main

    v = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="cli-1"), actor="t")
    monkeypatch.setenv("BASTION_DATABASE_URL", env.db.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit):
        main(["case", "list", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["id"] == v.case_id and row["content_id"] == "cli-1"
    with pytest.raises(SystemExit):
        main(["case", "show", str(v.case_id), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in shown["events"]] == ["open"]


def test_benign_media_is_destroyed_after_its_retention(env: Env) -> None:
    from datetime import timedelta

    from bastion.errors import NotFound
    from bastion.evidence.vault import purge_due_media
    from bastion.store.types import utcnow

    v = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="b"), actor="t")
    cid = int(v.case_id or 0)
    with env.db.write() as s:
        cases.decide(s, case_id=cid, reviewer=1, decision="adult_legal", policy=env.policy,
                     settings=env.settings)
        evidence_id = cases.get(s, case_id=cid).evidence_id
    assert evidence_id is not None
    days = env.settings.review.benign_media_days
    with env.db.write() as s:
        assert purge_due_media(s, env.vault.root, now=utcnow() + timedelta(days=days - 1)) == 0
    with env.db.write() as s:
        assert purge_due_media(s, env.vault.root, now=utcnow() + timedelta(days=days + 1)) == 1
    assert list(env.vault.root.glob("*.bin")) == []
    with env.db.read() as s:
        with pytest.raises(NotFound):
            env.vault.read(s, evidence_id)
        assert cases.get(s, case_id=cid).evidence_id is None


def test_concurrent_first_submissions_keep_one_media_file(env: Env) -> None:
    import threading

    data = BRIDGE.read_bytes()
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            env.svc.submit_bytes(data, ContentMeta(content_id="race"), actor="t")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(env.vault.root.glob("*.bin"))) == 1  # the losers' files discarded
    with env.db.read() as s:
        case = cases.get_by_content(s, content_id="race")
        assert case.evidence_id is not None and env.vault.read(s, case.evidence_id) == data


def test_claims_expire(env: Env) -> None:
    from datetime import timedelta

    from bastion.store.types import utcnow

    v = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="cl"), actor="t")
    cid = int(v.case_id or 0)
    with env.db.write() as s:
        cases.claim(s, case_id=cid, reviewer=1, settings=env.settings)
    later = utcnow() + timedelta(minutes=env.settings.review.claim_minutes + 1)
    with env.db.write() as s:
        taken = cases.claim(s, case_id=cid, reviewer=2, settings=env.settings, now=later)
    assert taken.claimed_by == 2


def test_queue_grouped_by_user(env: Env) -> None:
    with env.db.write() as s:
        for cid, user, bump in (("a", "u1", 2), ("b", "u2", 1), ("c", "u1", 0), ("d", None, 0)):
            cases.flag(s, content_id=cid, reporter="r", reason="", actor="t", user_id=user)
            for _ in range(bump):
                cases.flag(s, content_id=cid, reporter="r", reason="", actor="t")
    with env.db.read() as s:
        rows = cases.queue(s)
    assert [c.content_id for c in rows] == ["a", "b", "c", "d"]  # priority 60, 55, 50, 50
    # u1's two cases together, at u1's first place
    assert [c.content_id for c in cases.grouped_by_user(rows)] == ["a", "c", "b", "d"]


def test_decisions_record_report_annotations_and_urgency(env: Env) -> None:
    from lxml import etree

    from bastion.cases.schemas import FILE_ANNOTATIONS, REPORT_ANNOTATIONS
    from bastion.store.audit import list_audit_events

    # exactly the element names of NCMEC's schema (complex types fileAnnotations and
    # reportAnnotations of cybertipline.xsd)
    xsd = etree.parse(str(DATA.parent.parent / "specs/cybertipline.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}

    def names(kind: str) -> tuple[str, ...]:
        return tuple(xsd.xpath(f"//xs:complexType[@name='{kind}']/xs:all/xs:element/@name",
                               namespaces=ns))
    assert names("fileAnnotations") == FILE_ANNOTATIONS and len(FILE_ANNOTATIONS) == 10
    assert names("reportAnnotations") == REPORT_ANNOTATIONS and len(REPORT_ANNOTATIONS) == 5

    v = env.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="ann", user_id="u1"),
                             actor="t")
    assert v.case_id is not None
    cid = int(v.case_id)
    bad = [
        ({"file_annotations": ["meme"]}, "unknown file annotation 'meme'"),
        ({"report_annotations": ["potentialMeme"]}, "unknown report annotation"),
        ({"urgent_reason": "   "}, "needs a reason"),
        ({"urgent_reason": "x" * 1001}, "at most 1000"),
    ]
    for kwargs, message in bad:
        with env.db.write() as s, pytest.raises(InvalidInput, match=message):
            cases.decide(s, case_id=cid, reviewer=1, decision="csam", classification="A1",
                         policy=env.policy, settings=env.settings, **kwargs)  # type: ignore[arg-type]
    for decision in ("not_violating", "adult_legal", "escalate"):
        with env.db.write() as s, pytest.raises(InvalidInput, match="reported decisions only"):
            cases.decide(s, case_id=cid, reviewer=1, decision=decision, policy=env.policy,
                         settings=env.settings, file_annotations=["viral"])
    with env.db.write() as s:
        done = cases.decide(
            s, case_id=cid, reviewer=1, decision="csam", classification="A1",
            policy=env.policy, settings=env.settings,
            file_annotations=["generativeAi", "potentialMeme", "generativeAi"],
            report_annotations=["sextortion"], urgent_reason="  ongoing risk to a child  ")
    # deduplicated, in the schema's order; the reason trimmed
    assert done.file_annotations == ["potentialMeme", "generativeAi"]
    assert done.report_annotations == ["sextortion"]
    assert done.urgent_reason == "ongoing risk to a child"
    with env.db.read() as s:
        again = cases.get(s, case_id=cid)
        assert (again.file_annotations, again.report_annotations, again.urgent_reason) == (
            done.file_annotations, done.report_annotations, done.urgent_reason)
        assert again.to_json()["urgent_reason"] == "ongoing risk to a child"
        (event,) = [e for e in cases.events(s, case_id=cid) if e["kind"] == "decide"]
        assert event["detail"]["file_annotations"] == ["potentialMeme", "generativeAi"]
        assert event["detail"]["urgent"] is True
        # the audit log says a case was marked urgent, never the free text
        (audit,) = list_audit_events(s, action="case.decide")
        assert "ongoing risk" not in str(audit.detail)


def test_second_reviewer_annotations_replace_the_first(db: Database, tmp_path: Path) -> None:
    e = Env(db, tmp_path, policy=load_policy({"second_review_csam": True}))
    try:
        v = e.svc.submit_bytes(BRIDGE.read_bytes(), ContentMeta(content_id="s2"), actor="t")
        cid = int(v.case_id or 0)
        with db.write() as s:
            first = cases.decide(s, case_id=cid, reviewer=1, decision="csam",
                                 classification="B1", policy=e.policy, settings=e.settings,
                                 file_annotations=["viral"], urgent_reason="first look")
        assert first.state == "in_review" and first.file_annotations == ["viral"]
        assert first.urgent_reason == "first look"
        with db.write() as s:
            final = cases.decide(s, case_id=cid, reviewer=2, decision="csam",
                                 classification="B1", policy=e.policy, settings=e.settings,
                                 file_annotations=["infant"])
        assert final.state == "decided"
        assert (final.file_annotations, final.report_annotations, final.urgent_reason) == (
            ["infant"], [], None)
    finally:
        e.close()
