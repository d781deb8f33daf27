"""Reports built from decided cases: one report per incident (one user's decided,
reportable, unreported cases); every document validates for each decision kind;
``fileViewedByEsp`` is true exactly for the files a reviewer revealed through the UI (as the
fake CyberTipline receives them); items are preserved; auto-approval only for exact matches
in a verified bank."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.reporting.incidents import XSD
from tests.web.helpers import form_token, sign_in

from bastion.api.app import create_app
from bastion.banks import service as banks
from bastion.banks.sample import create_sample_bank
from bastion.banks.schemas import BankCreate
from bastion.cases import service as cases
from bastion.config import Settings, load_settings
from bastion.content.schemas import ContentMeta, OriginalHashes
from bastion.content.service import ContentService
from bastion.content.signal_input import signals_from_json
from bastion.errors import Conflict
from bastion.evidence import preservation
from bastion.evidence.vault import open_vault
from bastion.policy import load_policy
from bastion.reporting import case_incidents as ci
from bastion.reporting import service as reports
from bastion.reporting.client import CyberTiplineClient
from bastion.reporting.files import VaultFileProvider
from bastion.reporting.incident import INCIDENT_TYPE_OF_DECISION, incident_from_json
from bastion.reporting.xml import CyberTiplineSchema, element_texts
from bastion.scan.service import MatchService
from bastion.store.database import Database
from bastion.store.models_actions import CyberTipReportRow
from bastion.testing.fake_cybertipline import FakeCyberTipline
from bastion.users import service as users

MODS = Path(__file__).resolve().parents[2] / "../shared/data/images/bridge-mods"
PW = "a long enough password"
T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


class Env:
    def __init__(self, db: Database, tmp_path: Path, fake_url: str, **extra: Any) -> None:
        self.db = db
        self.settings: Settings = load_settings(
            environ={"BASTION_MASTER_KEY": "ab" * 32}, home=tmp_path / "home",
            decode_workers=0, review={"secure_cookies": False},
            cybertipline_url=fake_url, cybertipline_username="esp",
            cybertipline_password="pw", cybertipline_xsd=XSD,
            cybertipline_reporter_first_name="Trust",
            cybertipline_reporter_email="ts@example.org", **extra)
        with db.write() as s:
            create_sample_bank(s)
            users.create(s, name="rev", role="reviewer", password=PW, actor="t")
        self.reviewer = 1
        self.vault = open_vault(self.settings)
        self.matcher = MatchService(db)
        self.matcher.start(background=False, follow=False)
        self.policy = load_policy({})
        self.svc = ContentService(db=db, matcher=self.matcher, settings=self.settings,
                                  pool=None, policy=self.policy, vault=self.vault)
        self.schema = CyberTiplineSchema.from_path(XSD)

    def submit(self, name: str, content_id: str, user_id: str, **meta: Any) -> int:
        data = (MODS / name).read_bytes()
        v = self.svc.submit_bytes(data, ContentMeta(
            content_id=content_id, user_id=user_id, ip="203.0.113.9", port=40001,
            uploaded_at=T0, content_type="image/jpeg",
            published_url=f"https://example.org/p/{content_id}", **meta), actor="t")
        assert v.case_id is not None, name
        return int(v.case_id)

    def decide(self, case_id: int, decision: str) -> None:
        with self.db.write() as s:
            cases.decide(s, case_id=case_id, reviewer=self.reviewer, decision=decision,
                         classification="A1" if decision == "csam" else None,
                         policy=self.policy, settings=self.settings)

    def close(self) -> None:
        self.matcher.close()


def _reveal_in_ui(env: Env, case_id: int) -> None:
    c = TestClient(create_app(env.settings, db=env.db), raise_server_exceptions=False)
    with c:
        assert sign_in(c, "rev", PW).status_code == 303
        page = c.get(f"/ui/cases/{case_id}")
        assert c.get(f"/ui/media/{case_id}/preview").status_code == 200  # not a view
        r = c.post(f"/ui/cases/{case_id}/reveal", data={"csrf": form_token(page.text)},
                   follow_redirects=False)
        assert r.status_code == 303


def test_reports_from_cases_every_kind_and_viewed_files(db: Database, tmp_path: Path,
                                                        fake: FakeCyberTipline) -> None:
    env = Env(db, tmp_path, fake.url)
    try:
        a1 = env.submit("aaa-orig.jpg", "post-a1", "user-a", publicly_available=True)
        a2 = env.submit("blur-a-little.jpg", "post-a2", "user-a", publicly_available=False)
        a3 = env.submit("sharpen-a-little.jpg", "post-a3", "user-a", original_hashes=
                        OriginalHashes(md5="ab" * 16))
        b1 = env.submit("high-contrast.jpg", "post-b1", "user-b")
        c1 = env.submit("shrink-a-little.jpg", "post-c1", "user-c")
        hashed = env.svc.hash((MODS / "high-saturation.jpg").read_bytes())
        c2 = int(env.svc.submit_signals(signals_from_json([s.to_json() for s in hashed.signals]),
                                        ContentMeta(content_id="post-c2", user_id="user-c"),
                                        actor="t").case_id or 0)
        benign = env.submit("blur-a-lot.jpg", "post-d1", "user-d")
        _reveal_in_ui(env, a2)
        for cid in (a1, a2, a3):
            env.decide(cid, "csam")
        env.decide(b1, "trafficking")
        env.decide(c1, "child_exploitation_other")
        env.decide(c2, "child_exploitation_other")
        env.decide(benign, "not_violating")
        with db.read() as s:
            pending = ci.pending_incidents(s)
        assert sorted((p.user_id, p.case_ids) for p in pending) == [
            ("user-a", (a1, a2, a3)), ("user-b", (b1,)), ("user-c", (c1, c2))]
        views = {}
        with db.write() as s:
            for p in pending:
                views[p.user_id] = ci.draft_incident(s, case_ids=p.case_ids, schema=env.schema,
                                                     settings=env.settings, actor="user:9",
                                                     vault=env.vault)
        with db.read() as s:
            assert ci.pending_incidents(s) == []
            for user, kind in (("user-a", "csam"), ("user-b", "trafficking"),
                               ("user-c", "child_exploitation_other")):
                row = s.get(CyberTipReportRow, views[user].id)
                assert row is not None and row.state == "draft"
                env.schema.validate(row.report_xml.encode())
                assert element_texts(row.report_xml.encode(), ".//incidentType") == [
                    INCIDENT_TYPE_OF_DECISION[kind]]
                inc = incident_from_json(row.incident)
                assert inc.reported_users[0].esp_identifier == user
            # the hash-only case of user-c is named with its hashes, not uploaded
            inc_c = incident_from_json(s.get(CyberTipReportRow, views["user-c"].id).incident)
            assert len(inc_c.files) == 1 and "post-c2" in (inc_c.additional_info or "")
            # every case is preserved
            for cid in (a1, a2, a3, b1, c1, c2):
                item = preservation.get_by_content(
                    s, content_id=cases.get(s, case_id=cid).content_id)
                assert item.report_id in {v.id for v in views.values()}
        with db.write() as s, pytest.raises(Conflict, match="reported already"):
            ci.build_incident(s, case_ids=[a1], settings=env.settings)

        # Submit them all to the fake CyberTipline, bytes from the vault.
        submitter = reports.ReportSubmitter(db, env.settings, CyberTiplineClient(env.settings),
                                            VaultFileProvider(db, env.vault), env.schema)
        for v in views.values():
            with db.write() as s:
                reports.approve(s, v.id, actor="user:9")
            assert submitter.submit_now(v.id, worker="t").state == "submitted"
        snap = fake.snapshot()
        assert snap["invalid_documents"] == []
        viewed: dict[str, str] = {}
        public: dict[str, list[str]] = {}
        md5s: dict[str, list[str]] = {}
        for rep in snap["reports"].values():
            assert rep["finished"]
            for f in rep["files"].values():
                doc = f["fileinfo"].encode()
                viewed[f["name"]] = element_texts(doc, ".//fileViewedByEsp")[0]
                public[f["name"]] = element_texts(doc, ".//publiclyAvailable")
                md5s[f["name"]] = element_texts(doc, ".//originalFileHash")
        names = {cid: next(n for n in viewed if n.startswith(f"case-{cid}-"))
                 for cid in (a1, a2, a3, b1, c1)}
        assert {cid: viewed[n] for cid, n in names.items()} == {
            a1: "false", a2: "true", a3: "false", b1: "false", c1: "false"}
        # publiclyAvailable as the platform said at submission; left out where it did not
        assert {cid: public[n] for cid, n in names.items()} == {
            a1: ["true"], a2: ["false"], a3: [], b1: [], c1: []}
        # the platform's pre-transcode hash where it sent one, else Bastion's
        assert md5s[names[a3]] == ["ab" * 16]
        assert hashlib.md5((MODS / "aaa-orig.jpg").read_bytes()).hexdigest() in md5s[names[a1]]

        # A later case of user-a: a new incident naming the earlier CyberTipline report.
        a4 = env.submit("shrink-a-lot.jpg", "post-a4", "user-a")
        env.decide(a4, "csam")
        with db.write() as s:
            inc = ci.build_incident(s, case_ids=[a4], settings=env.settings)
            first = s.get(CyberTipReportRow, views["user-a"].id)
            assert first is not None and inc.reported_users[0].prior_reports == (
                first.ncmec_report_id,)
    finally:
        env.close()


def test_auto_approval_only_for_exact_matches_in_a_verified_bank(
        db: Database, tmp_path: Path, fake: FakeCyberTipline) -> None:
    env = Env(db, tmp_path, fake.url, cybertipline_auto_approve_verified=True)
    try:
        data = (MODS / "aaa-orig.jpg").read_bytes()
        with db.write() as s:
            banks.create(s, data=BankCreate(name="verified", label="csam", auto_action=True))
            banks.add_entry(s, name="verified", fields={
                "signal_type": "md5", "value": hashlib.md5(data).hexdigest(),
                "classification": "A1"})
        env.matcher.close()
        env.matcher = MatchService(db)
        env.matcher.start(background=False, follow=False)
        env.svc = ContentService(db=db, matcher=env.matcher, settings=env.settings, pool=None,
                                 policy=env.policy, vault=env.vault)
        exact = env.submit("aaa-orig.jpg", "post-v", "user-v")
        near = env.submit("blur-a-little.jpg", "post-n", "user-n")  # PDQ only, unverified
        env.decide(exact, "csam")
        env.decide(near, "csam")
        with db.write() as s:
            v1 = ci.draft_incident(s, case_ids=[exact], schema=env.schema,
                                   settings=env.settings, actor="system:report")
            v2 = ci.draft_incident(s, case_ids=[near], schema=env.schema,
                                   settings=env.settings, actor="system:report")
        assert (v1.state, v1.approved_by) == ("approved", "system:policy")
        assert v2.state == "draft"
        with db.read() as s:
            kinds = [e["kind"] for e in cases.events(s, case_id=exact)]
            assert ci.REPORTED_EVENT in kinds
            assert s.execute(select(CyberTipReportRow.id)).scalars().all() == [v1.id, v2.id]
    finally:
        env.close()


def test_report_from_cases_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bastion.cli.main import app
    from bastion.store.database import open_database

    env = {"BASTION_HOME": str(tmp_path), "BASTION_MASTER_KEY": "cd" * 32,
           "BASTION_CYBERTIPLINE_XSD": str(XSD)}
    settings = load_settings(environ=env)
    policy = load_policy({})
    db = open_database(settings)
    try:
        vault = open_vault(settings)
        with db.write() as s:
            ids = []
            for i, user in enumerate(("u1", "u1", "u2")):
                case = cases.open_case(s, content_id=f"cli-{i}", user_id=user, verdict_id=None,
                                       source="flag", rule="flag", base_priority=50,
                                       hide=False, matches=[], media="none", actor="t")
                cases.attach_media(s, case_id=case.id,
                                   data=(MODS / "aaa-orig.jpg").read_bytes(), vault=vault,
                                   actor="t")
                ids.append(case.id)
        for cid in ids:
            with db.write() as s:
                cases.decide(s, case_id=cid, reviewer=1, decision="trafficking",
                             policy=policy, settings=settings)
    finally:
        db.dispose()
    runner = CliRunner()
    r = runner.invoke(app, ["report", "from-cases"], env=env)
    assert r.exit_code == 2 and r.stdout.count("refused") == 2 and "reportingPerson" in r.stdout
    env["BASTION_CYBERTIPLINE_REPORTER_EMAIL"] = "ts@example.org"
    env["BASTION_CYBERTIPLINE_REPORTER_FIRST_NAME"] = "Trust"
    r = runner.invoke(app, ["report", "from-cases", "--json"], env=env)
    assert r.exit_code == 0, r.stdout
    out = {o["user_id"]: o for o in json.loads(r.stdout)}
    assert out["u1"]["case_ids"] == ids[:2] and out["u2"]["case_ids"] == ids[2:]
    assert {o["report"]["state"] for o in out.values()} == {"draft"}
    assert [len(o["report"]["files"]) for o in out.values()] == [2, 1]
    r = runner.invoke(app, ["report", "from-cases", "--json"], env=env)
    assert r.exit_code == 0 and r.stdout.strip() == "[]"


def test_the_worker_drafts_decided_cases_and_submits_once_approved(
        db: Database, tmp_path: Path, fake: FakeCyberTipline) -> None:
    from bastion.actions.worker import build_worker

    env = Env(db, tmp_path, fake.url)
    worker = build_worker(db, env.settings)
    try:
        case_id = env.submit("aaa-orig.jpg", "post-w", "user-w")
        env.decide(case_id, "csam")
        worker.run_once()
        with db.read() as s:
            (view,) = reports.list_reports(s)
            assert view.state == "draft" and len(view.files) == 1
            assert preservation.get_by_content(s, content_id="post-w").report_id == view.id
        worker.run_once()  # nothing new to draft: still one report
        with db.write() as s:
            assert len(reports.list_reports(s)) == 1
            reports.approve(s, view.id, actor="user:9")
        worker.run_once()
        with db.read() as s:
            assert reports.get(s, view.id).state == "submitted"
        (rep,) = fake.snapshot()["reports"].values()
        assert rep["finished"] and len(rep["files"]) == 1
    finally:
        worker.close()
        env.close()


def test_review_annotations_urgency_and_exif_reach_the_cybertipline(
        db: Database, tmp_path: Path, fake: FakeCyberTipline) -> None:
    from tests.reporting.test_exif import picture_with_exif

    from bastion.store.audit import list_audit_events

    env = Env(db, tmp_path, fake.url)
    try:
        import io

        from PIL import Image

        plain = io.BytesIO()
        Image.new("RGB", (32, 32), (90, 120, 150)).save(plain, "JPEG")
        with db.write() as s:
            ids = []
            for i, data in enumerate((picture_with_exif(), plain.getvalue())):
                case = cases.open_case(s, content_id=f"ann-{i}", user_id="user-z",
                                       verdict_id=None, source="flag", rule="flag",
                                       base_priority=50, hide=False, matches=[],
                                       media="none", actor="t")
                cases.attach_media(s, case_id=case.id, data=data, vault=env.vault, actor="t")
                ids.append(case.id)
        with db.write() as s:
            cases.decide(s, case_id=ids[0], reviewer=1, decision="csam", classification="A2",
                         policy=env.policy, settings=env.settings,
                         file_annotations=["potentialMeme", "generativeAi"],
                         report_annotations=["csamSolicitation"],
                         urgent_reason="the user says a meeting is planned")
            cases.decide(s, case_id=ids[1], reviewer=1, decision="csam", classification="B1",
                         policy=env.policy, settings=env.settings,
                         file_annotations=["viral"], report_annotations=["sextortion"])
        with db.write() as s:
            view = ci.draft_incident(s, case_ids=ids, schema=env.schema, settings=env.settings,
                                     actor="user:9", vault=env.vault)
        with db.read() as s:
            row = s.get(CyberTipReportRow, view.id)
            assert row is not None
            doc = row.report_xml.encode()
            env.schema.validate(doc)
            assert element_texts(doc, "incidentSummary/escalateToHighPriority") == [
                "the user says a meeting is planned"]
            # the union over the incident's cases, in the schema's order
            assert [t for t in ("sextortion", "csamSolicitation") if element_texts(
                doc, f"incidentSummary/reportAnnotations/{t}") == ["true"]] == [
                "sextortion", "csamSolicitation"]
            inc = incident_from_json(row.incident)
            assert [f.annotations for f in inc.files] == [
                ("potentialMeme", "generativeAi"), ("viral",)]
            assert dict(inc.files[0].exif)["Make"] == "TestCam"
            assert inc.files[1].exif == () and inc.files[1].exif_note == "no EXIF in the file"
            # reading the bytes for EXIF is audited, per case
            assert sorted(e.object_id for e in list_audit_events(s, action="report.exif")) \
                == sorted(str(i) for i in ids)
        submitter = reports.ReportSubmitter(db, env.settings, CyberTiplineClient(env.settings),
                                            VaultFileProvider(db, env.vault), env.schema)
        with db.write() as s:
            reports.approve(s, view.id, actor="user:9")
        assert submitter.submit_now(view.id, worker="t").state == "submitted"
        snap = fake.snapshot()
        assert snap["invalid_documents"] == []  # the fake validates each against the XSD
        (rep,) = snap["reports"].values()
        docs = {f["name"]: f["fileinfo"].encode() for f in rep["files"].values()}
        first = next(d for n, d in docs.items() if n.startswith(f"case-{ids[0]}-"))
        second = next(d for n, d in docs.items() if n.startswith(f"case-{ids[1]}-"))
        env.schema.validate(first)
        assert element_texts(first, "fileAnnotations/potentialMeme") == ["true"]
        assert element_texts(first, "fileAnnotations/generativeAi") == ["true"]
        assert element_texts(first, "fileAnnotations/viral") == []
        assert element_texts(first, "exifViewedByEsp") == ["false"]
        names = element_texts(first, "details[@type='EXIF']/nameValuePair/name")
        values = element_texts(first, "details[@type='EXIF']/nameValuePair/value")
        pairs = dict(zip(names, values, strict=True))
        assert pairs["Make"] == "TestCam" and pairs["GPSLatitude"] == "52, 31, 12.5"
        assert pairs["DateTimeOriginal"] == "2025:06:01 11:59:58"
        assert element_texts(second, "fileAnnotations/viral") == ["true"]
        assert element_texts(second, "details") == [] and element_texts(
            second, "exifViewedByEsp") == []
    finally:
        env.close()


def test_several_urgent_cases_name_each_reason(db: Database, tmp_path: Path,
                                               fake: FakeCyberTipline) -> None:
    env = Env(db, tmp_path, fake.url)
    try:
        a = env.submit("aaa-orig.jpg", "post-u1", "user-u")
        b = env.submit("blur-a-little.jpg", "post-u2", "user-u")
        for cid, why in ((a, "first reason"), (b, "second reason")):
            with db.write() as s:
                cases.decide(s, case_id=cid, reviewer=1, decision="trafficking",
                             policy=env.policy, settings=env.settings, urgent_reason=why)
        with db.write() as s:
            inc = ci.build_incident(s, case_ids=[a, b], settings=env.settings,
                                    escalation_reason="from the caller")
        assert inc.escalation_reason == (
            f"from the caller; case {a}: first reason; case {b}: second reason")
        assert inc.files and all(f.exif_note == "EXIF not read (no evidence vault)"
                                 for f in inc.files)
    finally:
        env.close()
