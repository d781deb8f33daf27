"""Submitted text is kept, encrypted in the vault, only for items that open a case or
match: never for a clean post, never in plain text in the database or the data directory;
cut at the settings limit with the cut recorded; and it never takes the place of a case's
media."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bastion.banks import service as banks
from bastion.banks.sample import create_sample_bank
from bastion.banks.schemas import BankCreate
from bastion.cases import service as cases
from bastion.config import load_settings
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.evidence.keys import MasterKey
from bastion.evidence.texts import KeptText, find_text, kept_text_of, read_text
from bastion.evidence.vault import EvidenceCorrupt, Vault
from bastion.scan.service import MatchService
from bastion.store.database import Database
from bastion.store.models import AuditEvent, Base
from bastion.store.models_review import EvidenceItem
from bastion.users import service as users

BRIDGE = Path(__file__).resolve().parents[2].parent / "shared/data/images/bridge-mods/aaa-orig.jpg"
#: Words no list holds, to search the store for.
SECRET = "quietly-unusual-sentence-6c1f2e"


class Env:
    def __init__(self, db: Database, home: Path, **review: Any) -> None:
        self.db, self.home = db, home
        with db.write() as s:
            create_sample_bank(s)
            banks.create(s, data=BankCreate(name="urls", label="csam"))
            banks.add_entry(s, name="urls", fields={
                "signal_type": "url", "value": "bad.example/gallery", "match": "prefix"})
            banks.create(s, data=BankCreate(name="keywords", label="csam"))
            banks.add_entry(s, name="keywords", fields={
                "signal_type": "keyword", "value": "example"})
        self.matcher = MatchService(db)
        self.matcher.start(background=False, follow=False)
        self.settings = load_settings(environ={}, home=home, decode_workers=0, review=review)
        self.vault = Vault(home / "evidence", MasterKey.generate())
        self.svc = ContentService(db=db, matcher=self.matcher, settings=self.settings,
                                  pool=None, vault=self.vault)

    def kept(self, content_id: str) -> tuple[Row, KeptText] | None:
        with self.db.read() as s:
            item = find_text(s, content_id)
            if item is None:
                return None
            row = Row(item.id, item.kind, item.case_id, item.delete_after)
            return row, read_text(s, self.vault, item.id)


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    case_id: int | None
    delete_after: datetime | None


@pytest.fixture
def env(db: Database, tmp_path: Path) -> Iterator[Env]:
    e = Env(db, tmp_path / "home")
    yield e
    e.matcher.close()


def test_url_match_keeps_text_title_and_links_encrypted_with_its_case(env: Env) -> None:
    body = f"see hxxp://bad[.]example/gallery/3 {SECRET} \U0001F600 עברית"
    v = env.svc.submit_text(ContentMeta(content_id="p-1", text=body,
                                        links=["https://other.example/a"]), actor="t")
    assert v.case_id is not None and v.status == "match"
    found = env.kept("p-1")
    assert found is not None
    item, kept = found
    assert item.kind == "text" and item.case_id == int(v.case_id)
    assert item.delete_after is None  # it follows its case
    assert kept.text == body and kept.links == ("https://other.example/a",)
    assert not kept.truncated and kept.text_chars == len(body)
    with env.db.read() as s:  # the case's media is not the text
        assert cases.get(s, case_id=int(v.case_id)).evidence_id is None


def test_clean_text_is_not_kept(env: Env) -> None:
    v = env.svc.submit_text(ContentMeta(content_id="p-2", text=f"hello {SECRET}"), actor="t")
    assert v.status == "no_match" and env.kept("p-2") is None
    with env.db.read() as s:
        assert s.execute(select(EvidenceItem)).first() is None


def test_keyword_only_match_is_kept_on_the_benign_clock(env: Env) -> None:
    v = env.svc.submit_text(ContentMeta(content_id="p-3", text=f"an EXAMPLE {SECRET}"),
                            actor="t")
    assert v.status == "match" and v.case_id is None  # the default policy only scores it
    found = env.kept("p-3")
    assert found is not None
    item, kept = found
    assert item.case_id is None and item.delete_after is not None
    days = env.settings.review.benign_media_days
    assert abs(item.delete_after - (v.submitted_at + timedelta(days=days))) < timedelta(
        seconds=5)
    assert kept.text == f"an EXAMPLE {SECRET}"


def test_a_flag_on_a_keyword_only_match_gives_its_text_to_the_case(env: Env) -> None:
    from bastion.policy import load_policy

    v = env.svc.submit_text(ContentMeta(content_id="p-7", text=f"EXAMPLE {SECRET}"),
                            actor="t")
    assert v.case_id is None
    with env.db.write() as s:
        case_id = cases.flag(s, content_id="p-7", reporter="user:9", reason="", actor="t").id
    found = env.kept("p-7")
    assert found is not None
    assert (found[0].case_id, found[0].delete_after) == (case_id, None)  # the case's now
    with env.db.write() as s:
        reviewer = users.create(s, name="r", role="reviewer", password="p" * 16,
                                actor="t").id
        cases.decide(s, case_id=case_id, reviewer=reviewer, decision="not_violating",
                     policy=load_policy({}), settings=env.settings)
    found = env.kept("p-7")
    assert found is not None and found[0].delete_after is not None  # the benign clock


def test_long_text_is_cut_at_the_limit_and_the_cut_is_recorded(db: Database,
                                                               tmp_path: Path) -> None:
    env = Env(db, tmp_path / "home", kept_text_max_chars=40)
    try:
        body = "hxxp://bad[.]example/gallery/1 " + "\U0001F600" * 30 + SECRET
        title = "t" * 50
        v = env.svc.submit_text(ContentMeta(content_id="p-4", text=body, title=title),
                                actor="t")
        assert v.case_id is not None
        found = env.kept("p-4")
        assert found is not None
        item, kept = found
        assert kept.text == body[:40] and len(kept.text) == 40  # code points, not bytes
        assert kept.title == "t" * 40 and kept.truncated and kept.text_truncated
        assert (kept.text_chars, kept.title_chars, kept.max_chars) == (len(body), 50, 40)
        with db.read() as s:
            detail = s.execute(select(AuditEvent.detail).where(
                AuditEvent.action == "evidence.store",
                AuditEvent.object_id == str(item.id))).scalar_one()
        assert detail["kind"] == "text" and detail["truncated"] is True
        assert detail["text_chars"] == len(body)
    finally:
        env.matcher.close()


def test_file_with_caption_keeps_media_and_text_apart(env: Env) -> None:
    v = env.svc.submit_bytes(BRIDGE.read_bytes(),
                             ContentMeta(content_id="photo-1", text=f"caption {SECRET}"),
                             actor="t")
    assert v.case_id is not None
    with env.db.read() as s:
        case = cases.get(s, case_id=int(v.case_id))
        assert case.evidence_id is not None
        media = s.get(EvidenceItem, case.evidence_id)
        assert media is not None and media.kind == "media"
        assert env.vault.read(s, case.evidence_id) == BRIDGE.read_bytes()
    found = env.kept("photo-1")
    assert found is not None and found[1].text == f"caption {SECRET}"
    assert found[0].id != case.evidence_id


def test_a_replay_keeps_no_second_copy(env: Env) -> None:
    meta = ContentMeta(content_id="p-5", text=f"hxxp://bad[.]example/gallery/2 {SECRET}")
    env.svc.submit_text(meta, actor="t")
    again = env.svc.submit_text(meta, actor="t")
    assert again.replayed
    with env.db.read() as s:
        rows = s.execute(select(EvidenceItem).where(EvidenceItem.kind == "text")).all()
    assert len(rows) == 1
    assert len(list(env.vault.root.glob("*.bin"))) == 1


def test_no_plaintext_in_the_store_or_data_directory(env: Env) -> None:
    # Astral characters and ZWJ sequences survive the round trip.
    body = f"hxxp://bad[.]example/gallery/9 {SECRET} \U0001F469\u200d\U0001F4BB"
    # (Not an ad: an analysed ad's text is kept in plain text in the ads table for network
    # linking, see docs/design-notes.md; the purge test covers it.)
    v = env.svc.submit_text(ContentMeta(content_id="p-6", text=body,
                                        links=[f"https://a.example/{SECRET}"]), actor="t")
    assert v.case_id is not None
    found = env.kept("p-6")
    assert found is not None and found[1].text == body
    if not env.db.is_postgresql:
        with env.db.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    needle = SECRET.encode()
    blobs = [(str(p), p.read_bytes()) for p in env.home.parent.rglob("*") if p.is_file()]
    with env.db.read() as s:
        for table in Base.metadata.sorted_tables:
            blobs.append((table.name, repr(s.execute(select(table)).all()).encode()))
    assert any(name.endswith(".bin") for name, _ in blobs)
    for name, blob in blobs:
        assert needle not in blob, f"the submitted text in plain text in {name}"
        assert json.dumps(SECRET).encode()[1:-1] not in blob


def test_kept_text_documents_are_checked() -> None:
    assert kept_text_of(None, None, [], max_chars=10) is None
    with pytest.raises(ValueError):
        kept_text_of("x", None, [], max_chars=0)
    kept = kept_text_of("abc", None, ["https://a.example/"], max_chars=2)
    assert kept is not None and KeptText.from_json(kept.to_json()) == kept
    for bad in ({}, {"format": 2}, {**kept.to_json(), "links": [1]},
                {**kept.to_json(), "text": 5}, [], "x"):
        with pytest.raises(EvidenceCorrupt):
            KeptText.from_json(bad)
