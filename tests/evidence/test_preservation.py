"""Preservation: a reported item's bytes and metadata kept encrypted for 365 days, legal
holds and preservation requests keep it longer, the purge leaves nothing behind (files and
the checkpointed database searched for its bytes, preview and metadata) while its hashes
stay in the confirmed bank; reading needs an admin and a reason; exports need a second
admin and carry a SHA-256 manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bastion.banks import service as banks
from bastion.cases import service as cases
from bastion.config import Settings, load_settings
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.errors import Conflict, InvalidInput, NotFound, PolicyDenied
from bastion.evidence import preservation as pres
from bastion.evidence.keys import MasterKey
from bastion.evidence.preview import blurred_preview
from bastion.evidence.vault import Vault
from bastion.policy import load_policy
from bastion.scan.service import MatchService
from bastion.store.database import Database
from bastion.store.models import AuditEvent
from bastion.store.models_review import EvidenceItem
from bastion.users import service as users

BRIDGE = Path(__file__).resolve().parents[2] / "../shared/data/images/bridge-mods/aaa-orig.jpg"
MISC = Path(__file__).resolve().parents[2] / "../shared/data/images/misc-images"
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


class Env:
    def __init__(self, db: Database, tmp_path: Path) -> None:
        from bastion.banks.sample import create_sample_bank

        self.db, self.home = db, tmp_path
        with db.write() as s:
            create_sample_bank(s)
            self.admin1 = users.create(s, name="ann", role="admin", password="p" * 16,
                                       actor="t").id
            self.admin2 = users.create(s, name="bob", role="admin", password="p" * 16,
                                       actor="t").id
            self.reviewer = users.create(s, name="rev", role="reviewer", password="p" * 16,
                                         actor="t").id
        self.settings: Settings = load_settings(environ={}, home=tmp_path / "home",
                                                decode_workers=0)
        self.matcher = MatchService(db)
        self.matcher.start(background=False, follow=False)
        self.vault = Vault(tmp_path / "home" / "evidence", MasterKey.generate())
        self.policy = load_policy({})
        self.svc = ContentService(db=db, matcher=self.matcher, settings=self.settings,
                                  pool=None, policy=self.policy, vault=self.vault)

    def reported(self, data: bytes, content_id: str, user_id: str, ip: str) -> tuple[int, int]:
        """Submit, decide csam, preserve as reported at T0: (case id, preserved id)."""
        meta = ContentMeta(content_id=content_id, user_id=user_id, ip=ip, port=51234,
                           uploaded_at=T0 - timedelta(hours=3))
        v = self.svc.submit_bytes(data, meta, actor="t")
        if v.case_id is None:  # not a match: a moderator's flag opens the case
            with self.db.write() as s:
                case_id = cases.flag(s, content_id=content_id, reporter="mod:1",
                                     reason="flag", actor="t").id
                cases.attach_media(s, case_id=case_id, data=data, vault=self.vault,
                                   actor="t")
        else:
            case_id = int(v.case_id)
        self.decide_csam(case_id)
        with self.db.write() as s:
            item = pres.preserve(s, vault=self.vault, case_id=case_id,
                                 settings=self.settings, actor="system:report", now=T0)
        return case_id, item.id

    def decide_csam(self, case_id: int) -> None:
        with self.db.write() as s:
            cases.decide(s, case_id=case_id, reviewer=self.reviewer, decision="csam",
                         classification="A1", policy=self.policy, settings=self.settings)

    def close(self) -> None:
        self.matcher.close()


@pytest.fixture
def env(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    e = Env(db, tmp_path)
    yield e
    e.close()


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _searched(env: Env) -> list[tuple[str, bytes]]:
    """Every file under the test's directory (the SQLite database and its WAL included,
    page by page) and, on either store, every row of every table as text."""
    from bastion.store.models import Base

    out = [(str(p), b) for p, b in _all_bytes(env.home)]
    with env.db.read() as s:
        for table in Base.metadata.sorted_tables:
            rows = s.execute(select(table)).all()
            out.append((f"table {table.name}", repr(rows).encode()))
    return out


def test_purge_after_365_days_leaves_nothing_but_the_bank_signals(env: Env) -> None:
    data = BRIDGE.read_bytes()
    other = sorted(MISC.glob("*.jpg"))[0].read_bytes()
    case_id, item_id = env.reported(data, "post-5f0c2a91", "user-77d3e1", "203.0.113.77")
    _held_case, held_id = env.reported(other, "post-held-3b8e", "user-held-91", "198.51.100.23")
    with env.db.read() as s:
        view = pres.get(s, item_id=item_id)
        assert view.expires_at == T0 + timedelta(days=365) and view.has_bytes
        ev_id = cases.get(s, case_id=case_id).evidence_id
        assert ev_id is not None
    with env.db.write() as s:
        h = pres.place_hold(s, item_id=held_id, kind="legal_hold", reference="matter 2026-17",
                            actor=f"user:{env.admin1}")
    with env.db.read() as s:  # the case media's own clock is off: preservation governs it
        media = s.get(EvidenceItem, ev_id)
        assert media is not None and media.delete_after is None
    with env.db.write() as s:
        got = pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.admin1,
                                  reason="verify before purge test")
    assert got.data == data
    assert got.metadata["ip"] == "203.0.113.77" and got.metadata["user_id"] == "user-77d3e1"
    assert got.metadata["decision"] == "csam" and got.metadata["classification"] == "A1"
    assert got.metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert any(sg["signal_type"] == "md5" for sg in got.metadata["signals"])
    md5 = hashlib.md5(data).hexdigest()
    preview = blurred_preview(data, blur=24)

    # Not yet due: day 364 purges nothing.
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=364)) == []
    purged = pres.purge_expired(env.db, vault_root=env.vault.root,
                                now=T0 + timedelta(days=366))
    assert purged == [item_id]

    # Nothing left: no file and no database page holds its bytes, preview or metadata
    # (its hashes may stay: the confirmed bank holds them, checked below).
    needles = {
        "bytes": data[2000:2064], "preview": preview[600:664],
        "content_id": b"post-5f0c2a91", "user_id": b"user-77d3e1", "ip": b"203.0.113.77",
    }
    files = _searched(env)
    assert files, "the store's files were searched"
    for path, blob in files:
        for what, needle in needles.items():
            assert needle not in blob, f"{what} of the purged item found in {path}"
    # The held item's metadata is still in the database (in its verdict): the search works.
    assert any(b"198.51.100.23" in blob for _p, blob in files)
    with env.db.read() as s:
        assert pres.due_for_purge(s, now=T0 + timedelta(days=366)) == []
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "evidence.purge")).scalars()
        assert [(e.object_id, (e.detail or {}).get("reason")) for e in ev] == [
            (str(item_id), "retention")]
        # Its signals stay in the confirmed bank (fingerprints, not content).
        entries = banks.list_entries(s, name="confirmed", limit=1000)
        assert md5 in {e.value for e in entries}
    with env.db.write() as s:  # the held item survives, readable
        assert pres.read_preserved(s, vault=env.vault, item_id=held_id, user_id=env.admin2,
                                   reason="legal hold review").data == other
    # Released, it goes at the next purge.
    with env.db.write() as s:
        pres.release_hold(s, hold_id=h.id, actor=f"user:{env.admin1}")
    with env.db.write() as s, pytest.raises(Conflict):
        pres.release_hold(s, hold_id=h.id, actor=f"user:{env.admin1}")
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=367)) == [held_id]
    assert not list(env.vault.root.glob("*.bin"))


def test_preservation_request_extends_and_a_later_report_moves_the_clock(env: Env) -> None:
    case_id, item_id = env.reported(BRIDGE.read_bytes(), "post-a", "user-a", "192.0.2.1")
    with env.db.write() as s:
        pres.place_hold(s, item_id=item_id, kind="preservation_request",
                        reference="2703(f) req 88-1", actor=f"user:{env.admin1}",
                        until=T0 + timedelta(days=455), now=T0)
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=400)) == []
    with env.db.write() as s:  # a second report on day 100 restarts the year from there
        again = pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                              actor="system:report", now=T0 + timedelta(days=100))
        assert again.id == item_id and again.expires_at == T0 + timedelta(days=465)
        again = pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                              actor="system:report", now=T0)
        assert again.expires_at == T0 + timedelta(days=465)  # never earlier
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=460)) == []
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=466)) == [item_id]
    with env.db.write() as s, pytest.raises(InvalidInput):
        pres.place_hold(s, item_id=item_id, kind="whim", reference="x", actor="t")


def test_setting_may_only_be_raised(tmp_path: Path) -> None:
    assert load_settings(environ={}, home=tmp_path).preservation_days == 365
    assert load_settings(environ={"BASTION_PRESERVATION_DAYS": "730"},
                         home=tmp_path).preservation_days == 730
    with pytest.raises(Exception, match="preservation_days"):
        load_settings(environ={"BASTION_PRESERVATION_DAYS": "90"}, home=tmp_path)


def test_reading_needs_an_admin_and_a_reason(env: Env) -> None:
    _c, item_id = env.reported(BRIDGE.read_bytes(), "post-r", "user-r", "192.0.2.9")
    with env.db.read() as s, pytest.raises(PolicyDenied):
        pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.reviewer,
                            reason="curious")
    with env.db.read() as s, pytest.raises(InvalidInput):
        pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.admin1,
                            reason="  ")
    with env.db.write() as s:
        pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.admin1,
                            reason="LE inquiry 12")
    with env.db.read() as s:
        ev = s.execute(select(AuditEvent).where(
            AuditEvent.action == "evidence.read_preserved")).scalars().one()
        assert ev.actor == f"user:{env.admin1}" and ev.detail == {"reason": "LE inquiry 12"}


def test_export_needs_a_second_admin_and_carries_a_manifest(env: Env, tmp_path: Path) -> None:
    data = BRIDGE.read_bytes()
    _c, item_id = env.reported(data, "post-x", "user-x", "192.0.2.4")
    with env.db.write() as s:
        with pytest.raises(PolicyDenied):
            pres.request_export(s, item_ids=[item_id], reference="warrant 26-0412",
                                reason="disclosure", user_id=env.reviewer)
        export_id = pres.request_export(s, item_ids=[item_id], reference="warrant 26-0412",
                                        reason="disclosure", user_id=env.admin1)
    with env.db.write() as s, pytest.raises(PolicyDenied, match="second"):
        pres.approve_export(s, vault=env.vault, export_id=export_id, user_id=env.admin1,
                            out_dir=tmp_path / "exports")
    with env.db.write() as s:
        res = pres.approve_export(s, vault=env.vault, export_id=export_id,
                                  user_id=env.admin2, out_dir=tmp_path / "exports")
    blob = res.path.read_bytes()
    assert data[2000:2064] not in blob and hashlib.sha256(blob).hexdigest() == res.archive_sha256
    with pytest.raises(InvalidInput):
        pres.open_export(blob, "00" * 32)
    files = pres.open_export(blob, res.key_hex)
    manifest = json.loads(files["manifest.json"])
    assert manifest["legal_process"] == "warrant 26-0412"
    for f in manifest["files"]:
        assert hashlib.sha256(files[f["path"]]).hexdigest() == f["sha256"]
    assert files[f"items/{item_id}/content.bin"] == data
    with env.db.write() as s, pytest.raises(Conflict):
        pres.approve_export(s, vault=env.vault, export_id=export_id, user_id=env.admin2,
                            out_dir=tmp_path / "exports")
    with env.db.read() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "evidence.export")
                       ).scalars().one()
        assert (ev.detail or {})["reference"] == "warrant 26-0412"


def test_upkeep_round_purges_what_expired(env: Env) -> None:
    from bastion.content.maintenance import run_round
    from bastion.store.types import utcnow

    data = BRIDGE.read_bytes()
    meta = ContentMeta(content_id="post-old", user_id="user-old", ip="192.0.2.50")
    case_id = int(env.svc.submit_bytes(data, meta, actor="t").case_id or 0)
    env.decide_csam(case_id)
    with env.db.write() as s:
        item = pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                             actor="t", now=utcnow() - timedelta(days=366))
    assert run_round(env.db, env.settings).preserved_purged == 1
    with env.db.read() as s, pytest.raises(NotFound):
        pres.get(s, item_id=item.id)
    assert run_round(env.db, env.settings).preserved_purged == 0


def test_the_duty_runs_from_the_submission_and_the_report_loses_its_facts(env: Env) -> None:
    from dataclasses import replace

    from tests.reporting.incidents import XSD, sample_incident

    from bastion.reporting import service as reports
    from bastion.reporting.xml import CyberTiplineSchema
    from bastion.store.models_actions import CyberTipReportRow

    case_id, item_id = env.reported(BRIDGE.read_bytes(), "post-s", "user-s", "192.0.2.77")
    schema = CyberTiplineSchema.from_path(XSD)
    with env.db.write() as s:
        inc = replace(sample_incident(files=0, key="user:user-s:1"), case_ids=(str(case_id),))
        rep = reports.create_draft(s, incident=inc, schema=schema, settings=env.settings,
                                   actor="t", now=T0)
        pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                      actor="t", report_id=rep.id, now=T0)
    # Not submitted yet: kept past the clock.
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=400)) == []
    with env.db.write() as s:
        row = s.get(CyberTipReportRow, rep.id)
        assert row is not None
        row.state, row.ncmec_report_id = "submitted", 4242
        row.submitted_at = T0 + timedelta(days=60)
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=420)) == []
    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=426)) == [item_id]
    with env.db.read() as s:
        row = s.get(CyberTipReportRow, rep.id)
        assert row is not None
        assert (row.state, row.ncmec_report_id, row.incident, row.report_xml) == (
            "submitted", 4242, {"purged": True}, "")


def test_kept_text_and_ad_are_preserved_exported_and_purged_without_a_trace(
        env: Env, tmp_path: Path) -> None:
    """An ad with a listed URL: its title, text and links are kept encrypted with its case,
    preserved into the metadata record (their own clock off), exported, and after the
    purge neither the kept text nor the ad's plain-text row is anywhere."""
    from bastion.banks.schemas import BankCreate
    from bastion.evidence.texts import find_text
    from bastion.store.models_ads import StoredAd

    with env.db.write() as s:
        banks.create(s, data=BankCreate(name="urls", label="csam"))
        banks.add_entry(s, name="urls", fields={
            "signal_type": "url", "value": "bad.example/gallery", "match": "prefix"})
    env.matcher.close()
    env.matcher = MatchService(env.db)
    env.matcher.start(background=False, follow=False)
    env.svc.matcher = env.matcher
    words = "cobalt-meadow-4411"
    meta = ContentMeta(
        content_id="ad-9e41", user_id="user-ad-9e41", ip="203.0.113.91",
        title=f"Title {words}", location="Houston, TX",
        text=f"Call two one three 555 oh one two three, hxxp://bad[.]example/gallery/5 {words}",
        links=[f"https://bad.example/gallery/{words}"])
    v = env.svc.submit_text(meta, actor="t")
    assert v.case_id is not None and v.ad is not None
    case_id = int(v.case_id)
    with env.db.read() as s:
        kept = find_text(s, "ad-9e41")
        assert kept is not None and kept.case_id == case_id
        assert s.execute(select(StoredAd).where(StoredAd.ad_id == "ad-9e41")).first()
    env.decide_csam(case_id)
    with env.db.read() as s:  # decided csam: no benign clock on the text
        kept = find_text(s, "ad-9e41")
        assert kept is not None and kept.delete_after is None
    with env.db.write() as s:
        item_id = pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                                actor="system:report", now=T0).id
    with env.db.write() as s:
        got = pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.admin1,
                                  reason="check the preserved text")
    assert got.data is None  # text only: no media
    assert got.metadata["text"]["text"] == meta.text
    assert got.metadata["text"]["title"] == meta.title
    assert got.metadata["text"]["links"] == meta.links
    with env.db.write() as s:
        export_id = pres.request_export(s, item_ids=[item_id], reference="order 26-77",
                                        reason="disclosure", user_id=env.admin1)
    with env.db.write() as s:
        res = pres.approve_export(s, vault=env.vault, export_id=export_id,
                                  user_id=env.admin2, out_dir=tmp_path / "exports")
    files = pres.open_export(res.path.read_bytes(), res.key_hex)
    assert json.loads(files[f"items/{item_id}/metadata.json"])["text"]["text"] == meta.text

    assert pres.purge_expired(env.db, vault_root=env.vault.root,
                              now=T0 + timedelta(days=366)) == [item_id]
    needles = {"words": words.encode(), "user": b"user-ad-9e41", "ip": b"203.0.113.91",
               "content_id": b"ad-9e41"}
    searched = [(p, b) for p, b in _searched(env) if "exports" not in p]
    assert searched
    for path, blob in searched:
        for what, needle in needles.items():
            assert needle not in blob, f"{what} of the purged ad found in {path}"
    with env.db.read() as s:
        assert s.execute(select(StoredAd)).first() is None
        assert s.execute(select(EvidenceItem)).first() is None
    assert not list(env.vault.root.glob("*.bin"))


def test_an_unreadable_kept_text_does_not_block_preservation(env: Env) -> None:
    from bastion.evidence.texts import find_text

    data = BRIDGE.read_bytes()
    v = env.svc.submit_bytes(data, ContentMeta(content_id="post-cap", text="a caption"),
                             actor="t")
    case_id = int(v.case_id or 0)
    with env.db.read() as s:
        kept = find_text(s, "post-cap")
        assert kept is not None
        (env.vault.root / kept.file_name).unlink()  # lost, e.g. a bad restore
        kept_id = kept.id
    env.decide_csam(case_id)
    with env.db.write() as s:
        item_id = pres.preserve(s, vault=env.vault, case_id=case_id, settings=env.settings,
                                actor="t", now=T0).id
    with env.db.write() as s:
        got = pres.read_preserved(s, vault=env.vault, item_id=item_id, user_id=env.admin1,
                                  reason="check")
    assert got.data == data  # the media is preserved
    assert got.metadata["text"]["evidence_id"] == kept_id
    assert "missing" in got.metadata["text"]["error"]
