"""CyberTipline reports in the review UI: the decision form records the report's file and
incident annotations and urgency; admins see the alerts banner, the reports list and a
report's facts, approve drafts (CSRF, role, audited as ``bastion report approve`` is),
retry waiting reports and record NCMEC's answer for interrupted ones; auditors only read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update
from tests.reporting.incidents import XSD, sample_incident
from tests.web.helpers import UiClients, form_token

from bastion.api.app import create_app
from bastion.apikeys import service as keys
from bastion.banks.sample import create_sample_bank
from bastion.cases import service as cases
from bastion.cases.schemas import FILE_ANNOTATIONS, REPORT_ANNOTATIONS
from bastion.config import load_settings
from bastion.evidence.vault import open_vault
from bastion.reporting import case_incidents as ci
from bastion.reporting import service as reports
from bastion.reporting.incident import incident_from_json
from bastion.reporting.xml import CyberTiplineSchema, element_texts
from bastion.store.audit import list_audit_events
from bastion.store.database import Database
from bastion.store.models_actions import ActionRow, CyberTipReportRow
from bastion.store.types import utcnow
from bastion.users import service as users

BRIDGE = (Path(__file__).resolve().parents[2].parent
          / "shared/data/images/bridge-mods/aaa-orig.jpg")
PW = "a long enough password"


class Env(UiClients):
    def __init__(self, db: Database, tmp_path: Path) -> None:
        self.db = db
        self.settings = load_settings(
            environ={"BASTION_MASTER_KEY": "ab" * 32}, home=tmp_path / "home",
            decode_workers=0, review={"secure_cookies": False},
            cybertipline_xsd=XSD, cybertipline_reporter_first_name="Trust",
            cybertipline_reporter_email="ts@example.org")
        self.schema = CyberTiplineSchema.from_path(XSD)
        with db.write() as s:
            create_sample_bank(s)
            self.key = keys.create(s, name="t", scopes=["admin"])[1]
            self.ids = {role: users.create(s, name=role, role=role, password=PW,
                                           actor="test").id
                        for role in ("reviewer", "auditor", "admin")}
            self.ids["reviewer2"] = users.create(s, name="reviewer2", role="reviewer",
                                                 password=PW, actor="test").id
        self.clients: list[TestClient] = []
        self.app = create_app(self.settings, db=db)

    def upload(self, c: TestClient, content_id: str) -> int:
        self.wait_ready(c)
        r = c.post("/v1/content", headers={"Authorization": f"Bearer {self.key}"},
                   files={"file": ("x.jpg", BRIDGE.read_bytes(), "image/jpeg")},
                   data={"content_id": content_id, "user_id": "user-7"})
        assert r.status_code == 200, r.text
        return int(r.json()["case_id"])

    def draft(self, **changes: Any) -> int:
        incident = replace(sample_incident(files=2), **changes)
        with self.db.write() as s:
            return reports.create_draft(s, incident=incident, schema=self.schema,
                                        settings=self.settings, actor="test").id

    def set(self, report_id: int, **values: Any) -> None:
        with self.db.write() as s:
            s.execute(update(CyberTipReportRow).where(CyberTipReportRow.id == report_id)
                      .values(**values))


@pytest.fixture
def env(db: Database, tmp_path: Path) -> Iterator[Env]:
    made = Env(db, tmp_path)
    yield made
    made.close()


def test_decision_form_records_annotations_and_urgency(env: Env) -> None:
    rc = env.client("reviewer")
    case_id = env.upload(rc, "post-1")
    page = rc.get(f"/ui/cases/{case_id}").text
    for name in FILE_ANNOTATIONS:
        assert f'name="file_annotation" value="{name}"' in page
    for name in REPORT_ANNOTATIONS:
        assert f'name="report_annotation" value="{name}"' in page
    assert 'name="urgent"' in page and 'id="urgent-reason"' in page
    csrf = form_token(page)
    base = {"csrf": csrf, "decision": "csam", "classification": "A1"}
    refused = [
        ({**base, "file_annotation": "meme"}, "unknown file annotation"),
        ({**base, "urgent": "1", "urgent_reason": " "}, "needs a reason"),
        ({**base, "urgent_reason": "forgot to tick"}, "without ticking"),
        ({**base, "report_annotation": ["spam"] * 6}, "at most 5 values of report_annotation"),
        ({"csrf": csrf, "decision": "not_violating", "file_annotation": "viral"},
         "reported decisions only"),
    ]
    for data, message in refused:
        r = rc.post(f"/ui/cases/{case_id}/decide", data=data)
        assert r.status_code == 400 and message in r.text, (data, r.text)
    with env.db.read() as s:
        assert cases.get(s, case_id=case_id).state == "in_review"  # nothing decided
    r = rc.post(f"/ui/cases/{case_id}/decide", follow_redirects=False, data={
        **base, "file_annotation": ["viral", "generativeAi"],
        "report_annotation": ["sextortion"], "urgent": "1",
        "urgent_reason": "a meeting is planned for tonight"})
    assert r.status_code == 303
    with env.db.read() as s:
        case = cases.get(s, case_id=case_id)
    assert case.state == "decided" and case.decision == "csam"
    assert case.file_annotations == ["viral", "generativeAi"]
    assert case.report_annotations == ["sextortion"]
    assert case.urgent_reason == "a meeting is planned for tonight"

    # The worker's drafting round turns it into an urgent draft; the admin sees it.
    (outcome,) = ci.draft_pending(env.db, schema=env.schema, settings=env.settings,
                                  actor="system:report", vault=open_vault(env.settings))
    assert outcome.report is not None and outcome.error is None
    rid = outcome.report.id
    with env.db.read() as s:
        row = s.get(CyberTipReportRow, rid)
        assert row is not None
        doc = row.report_xml.encode()
        assert element_texts(doc, "incidentSummary/escalateToHighPriority") == [
            "a meeting is planned for tonight"]
        assert element_texts(doc, "incidentSummary/reportAnnotations/sextortion") == ["true"]
        inc = incident_from_json(row.incident)
        assert inc.files[0].annotations == ("viral", "generativeAi")
        assert dict(inc.files[0].exif).get("Software") == "Google"  # the photo's own EXIF
        (read,) = list_audit_events(s, action="report.exif")  # read before the draft's
        assert read.object_id == str(case_id) and read.detail["tags"] == len(inc.files[0].exif)

    admin = env.client("admin")
    queue = admin.get("/ui/queue").text
    assert 'id="report-alerts"' in queue and "1 urgent draft to approve" in queue
    assert "1 draft awaiting approval" in queue and 'href="/ui/reports?attention=1"' in queue
    listing = admin.get("/ui/reports?attention=1")
    assert listing.status_code == 200
    assert f'href="/ui/reports/{rid}"' in listing.text and "user-7" in listing.text
    assert "urgent" in listing.text and f"case-{case_id}-post-1" in listing.text
    detail = admin.get(f"/ui/reports/{rid}").text
    assert "a meeting is planned for tonight" in detail and "sextortion" in detail
    assert "viral, generativeAi" in detail and f'href="/ui/cases/{case_id}"' in detail
    assert "&lt;escalateToHighPriority&gt;" in detail  # the document itself, escaped
    assert "Software" in detail and "Google" not in detail  # EXIF names, never values
    assert 'id="approve"' in detail


def test_a_second_reviewer_sees_the_first_reviewers_report_fields(env: Env) -> None:
    from bastion.policy import load_policy

    rc = env.client("reviewer")
    case_id = env.upload(rc, "post-2")
    assert 'id="first-review-facts"' not in rc.get(f"/ui/cases/{case_id}").text
    with env.db.write() as s:  # the first of two reviews (policy second_review_csam)
        cases.decide(s, case_id=case_id, reviewer=env.ids["reviewer"], decision="csam",
                     classification="A2", policy=load_policy({"second_review_csam": True}),
                     settings=env.settings, file_annotations=["infant"],
                     report_annotations=["spam"], urgent_reason="first reviewer's reason")
    page = env.client("reviewer2").get(f"/ui/cases/{case_id}").text
    assert 'id="first-review-facts"' in page
    assert 'value="infant" checked' in page and 'value="viral" checked' not in page
    assert 'value="spam" checked' in page and 'id="urgent" checked' in page
    assert ">first reviewer&#39;s reason</textarea>" in page


def test_admin_approves_a_draft_others_cannot(env: Env) -> None:
    rid = env.draft()
    auditor = env.client("auditor")
    page = auditor.get(f"/ui/reports/{rid}")
    assert page.status_code == 200 and 'id="approve"' not in page.text
    assert 'id="report-alerts"' not in auditor.get("/ui/queue").text  # admins only
    r = auditor.post(f"/ui/reports/{rid}/approve", data={"csrf": form_token(page.text)})
    assert r.status_code == 403
    reviewer = env.client("reviewer")
    assert reviewer.get("/ui/reports").status_code == 403
    assert reviewer.get(f"/ui/reports/{rid}").status_code == 403
    assert 'href="/ui/reports"' not in reviewer.get("/ui/queue").text
    anon = env.client()
    r = anon.get("/ui/reports", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in"
    assert anon.post(f"/ui/reports/{rid}/approve", data={}).status_code == 401

    admin = env.client("admin")
    page = admin.get(f"/ui/reports/{rid}")
    assert "Approve and send" in page.text and "upload-0.jpg" in page.text
    assert admin.post(f"/ui/reports/{rid}/approve", data={}).status_code == 403
    assert admin.post(f"/ui/reports/{rid}/approve",
                      data={"csrf": "forged"}).status_code == 403
    with env.db.read() as s:
        assert reports.get(s, rid).state == "draft"
    r = admin.post(f"/ui/reports/{rid}/approve", data={"csrf": form_token(page.text)},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/reports/{rid}"
    with env.db.read() as s:
        view = reports.get(s, rid)
        assert view.state == "approved" and view.approved_by == f"user:{env.ids['admin']}"
        (event,) = list_audit_events(s, action="report.approve")
        assert (event.actor, event.object_id) == (f"user:{env.ids['admin']}", str(rid))
    page = admin.get(f"/ui/reports/{rid}").text
    assert 'id="approve"' not in page and ">approved<" in page
    # approving twice is a conflict, not a second approval
    r = admin.post(f"/ui/reports/{rid}/approve", data={"csrf": form_token(page)})
    assert r.status_code == 409


def test_alerts_failed_overdue_retry_and_reconcile(env: Env) -> None:
    admin = env.client("admin")
    assert 'id="report-alerts"' not in admin.get("/ui/queue").text  # nothing to say
    failed = env.draft(key="k-failed")
    waiting = env.draft(key="k-waiting")
    interrupted = env.draft(key="k-interrupted")
    late = env.draft(key="k-late", escalation_reason=None)
    purged = env.draft(key="k-purged")
    now = utcnow()
    env.set(failed, state="failed", last_error="4100: reportingPerson is invalid",
            response_code=4100)
    env.set(waiting, state="approved", attempts=2, next_attempt_at=now + timedelta(hours=1),
            last_error="submit: NCMEC unavailable")
    env.set(interrupted, state="needs_reconciliation", last_error="interrupted after /submit")
    env.set(late, created_at=now - timedelta(hours=env.settings.report_alert_hours + 1))
    env.set(purged, state="submitted", ncmec_report_id=555, incident={"purged": True},
            report_xml="")
    page = admin.get("/ui/queue").text
    assert "1 failed" in page and "1 to reconcile with NCMEC" in page
    assert "1 overdue" in page and "1 draft awaiting approval" in page
    assert "urgent" not in page.split('id="report-alerts"')[1].split("</p>")[0]

    listing = admin.get("/ui/reports?overdue=1").text
    assert f'href="/ui/reports/{late}"' in listing and f'href="/ui/reports/{failed}"' not in listing
    attention = admin.get("/ui/reports?attention=1").text
    for rid in (failed, interrupted, late):
        assert f'href="/ui/reports/{rid}"' in attention
    assert f'href="/ui/reports/{purged}"' not in attention
    by_state = admin.get("/ui/reports?state=needs_reconciliation").text
    assert f'href="/ui/reports/{interrupted}"' in by_state
    assert f'href="/ui/reports/{failed}"' not in by_state
    assert admin.get("/ui/reports?state=bogus").status_code == 400
    assert admin.get("/ui/reports/99999").status_code == 404
    assert admin.get("/ui/reports/0").status_code == 422
    gone = admin.get(f"/ui/reports/{purged}")
    assert gone.status_code == 200 and "purged after the preservation period" in gone.text

    # a failed report shows NCMEC's answer and is approved again
    page = admin.get(f"/ui/reports/{failed}").text
    assert "NCMEC code 4100" in page and "reportingPerson is invalid" in page
    assert "Approve again" in page
    assert admin.post(f"/ui/reports/{failed}/approve",
                      data={"csrf": form_token(page)}).status_code == 200

    # a report waiting for its next attempt is made due now
    page = admin.get(f"/ui/reports/{waiting}").text
    assert 'id="retry"' in page
    assert admin.post(f"/ui/reports/{failed}/retry",
                      data={"csrf": form_token(page)}).status_code == 200  # approved now
    r = admin.post(f"/ui/reports/{waiting}/retry", data={"csrf": form_token(page)},
                   follow_redirects=False)
    assert r.status_code == 303
    with env.db.read() as s:
        assert (reports.get(s, waiting).next_attempt_at or now) <= utcnow()
        assert sorted(e.object_id for e in list_audit_events(s, action="report.retry")) == [
            str(failed), str(waiting)]
    assert admin.post(f"/ui/reports/{late}/retry",
                      data={"csrf": form_token(page)}).status_code == 409  # a draft

    # an interrupted submission: NCMEC's answer is recorded, never guessed
    page = admin.get(f"/ui/reports/{interrupted}").text
    assert 'id="reconcile-form"' in page
    csrf = form_token(page)
    for data in ({"csrf": csrf}, {"csrf": csrf, "ncmec_report_id": "77", "not_received": "1"},
                 {"csrf": csrf, "ncmec_report_id": "-3"},
                 {"csrf": csrf, "ncmec_report_id": "9" * 19}):
        assert admin.post(f"/ui/reports/{interrupted}/reconcile", data=data
                          ).status_code == 400, data
    r = admin.post(f"/ui/reports/{interrupted}/reconcile",
                   data={"csrf": csrf, "ncmec_report_id": "424242"}, follow_redirects=False)
    assert r.status_code == 303
    with env.db.read() as s:
        view = reports.get(s, interrupted)
        assert (view.state, view.ncmec_report_id) == ("submitting", 424242)
        (event,) = list_audit_events(s, action="report.reconcile")
        assert event.actor == f"user:{env.ids['admin']}"
    auditor = env.client("auditor")
    assert auditor.post(f"/ui/reports/{late}/reconcile", data={
        "csrf": form_token(auditor.get("/ui/queue").text),
        "not_received": "1"}).status_code == 403


def test_dead_actions_are_shown_and_retried(env: Env) -> None:
    from bastion.actions import outbox


    with env.db.write() as s:
        ids = [outbox.enqueue(s, kind=kind, settings=env.settings, content_id=f"c-{i}",
                              user_id="u-1", case_id=str(i + 1), payload={"n": i},
                              idempotency_key=f"key-{i}").id
               for i, kind in enumerate(("takedown", "suspend", "hide"))]
        s.execute(update(ActionRow).where(ActionRow.id.in_(ids[:2])).values(
            state="dead", last_error="webhook answered 503", attempts=7))
    admin = env.client("admin")
    queue = admin.get("/ui/queue").text
    assert 'id="dead-actions"' in queue and "2 dead platform actions" in queue
    page = admin.get("/ui/actions")
    assert page.status_code == 200
    assert "webhook answered 503" in page.text and "takedown" in page.text
    assert "hide" not in page.text.split('id="actions"')[1]  # pending: not dead
    assert "hide" in admin.get("/ui/actions?state=pending").text.split('id="actions"')[1]
    assert admin.get("/ui/actions?state=bogus").status_code == 400
    csrf = form_token(page.text)
    auditor = env.client("auditor")
    seen = auditor.get("/ui/actions")
    assert seen.status_code == 200 and 'id="retry-all"' not in seen.text
    assert auditor.post(f"/ui/actions/{ids[0]}/retry",
                        data={"csrf": form_token(seen.text)}).status_code == 403
    assert env.client("reviewer").get("/ui/actions").status_code == 403
    assert admin.post(f"/ui/actions/{ids[0]}/retry", data={"csrf": "x"}).status_code == 403
    r = admin.post(f"/ui/actions/{ids[0]}/retry", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert admin.post(f"/ui/actions/{ids[2]}/retry", data={"csrf": csrf}).status_code == 409
    assert admin.post("/ui/actions/99999/retry", data={"csrf": csrf}).status_code == 404
    assert admin.post("/ui/actions/retry-dead", data={"csrf": csrf}).status_code == 200
    with env.db.read() as s:
        assert [outbox.get(s, i).state for i in ids] == ["pending"] * 3
        events = list_audit_events(s, action="actions.retry")
        assert sorted((e.object_id, e.detail["count"]) for e in events) == [
            (str(ids[0]), 1), ("all", 1)]
        assert {e.actor for e in events} == {f"user:{env.ids['admin']}"}
    assert 'id="dead-actions"' not in admin.get("/ui/queue").text


def test_blocked_actions_are_shown_in_the_banner_and_retried(env: Env) -> None:
    from bastion.actions import outbox
    from bastion.actions.webhooks import WebhookDeliverer
    from bastion.actions.worker import ActionWorker

    # embedded defaults: no webhook_urls. A takedown is blocked at once, not retried 72 h.
    with env.db.write() as s:
        take = outbox.enqueue(s, kind="takedown", settings=env.settings, content_id="c-1",
                              case_id="1").id
        done = outbox.enqueue(s, kind="hide", settings=env.settings, content_id="c-2").id
        s.execute(update(ActionRow).where(ActionRow.id == done).values(state="delivered"))
    settings = env.settings.model_copy(update={"webhook_secret": SecretStr("s")})
    deliverer = WebhookDeliverer(settings)
    try:
        assert ActionWorker(env.db, settings, deliverer).run_once().blocked == 1
    finally:
        deliverer.close()
    admin = env.client("admin")
    queue = admin.get("/ui/queue").text
    assert 'id="blocked-actions"' in queue
    assert ("1 blocked platform action: no webhook endpoint configured for takedown "
            "(set webhook_urls)") in queue
    page = admin.get("/ui/actions")  # the default view: every failed action
    assert page.status_code == 200, page.text[:2000]
    table = page.text.split('id="actions"')[1]
    assert "no webhook endpoint configured for takedown: set webhook_urls" in table
    assert "blocked" in table and "hide" not in table
    assert "blocked (1)" in page.text and "failed (1)" in page.text
    assert 'id="retry-all"' in page.text
    metrics = admin.get("/metrics", headers={"Authorization": f"Bearer {env.key}"}).text
    assert 'bastion_actions{state="blocked"} 1.0' in metrics
    r = admin.post(f"/ui/actions/{take}/retry", data={"csrf": form_token(page.text)},
                   follow_redirects=False)
    assert r.status_code == 303
    with env.db.read() as s:
        assert outbox.get(s, take).state == "pending"
    assert 'id="blocked-actions"' not in admin.get("/ui/queue").text


def test_approved_reports_without_credentials_are_explained(env: Env) -> None:
    rid = env.draft()
    admin = env.client("admin")
    page = admin.get(f"/ui/reports/{rid}").text
    # warned before approving
    assert 'id="no-credentials-warning"' in page
    assert "Approving will not send this report yet" in page
    assert "cybertipline_username and cybertipline_password" in page
    assert 'id="no-credentials"' not in page  # nothing approved yet: no banner line
    r = admin.post(f"/ui/reports/{rid}/approve", data={"csrf": form_token(page)},
                   follow_redirects=False)
    assert r.status_code == 303
    page = admin.get(f"/ui/reports/{rid}").text
    assert "This approved report cannot be submitted" in page
    assert ("1 approved report cannot be submitted: CyberTipline credentials are not "
            "configured") in page
    listing = admin.get("/ui/reports").text
    assert 'id="no-credentials-warning"' in listing
    with env.db.read() as s:
        assert reports.alert_counts(s, settings=env.settings)["no_credentials"] == 1
    metrics = admin.get("/metrics", headers={"Authorization": f"Bearer {env.key}"}).text
    assert 'bastion_report_alerts{kind="no_credentials"} 1.0' in metrics
    # with credentials configured, nothing of the kind is said
    ready = env.settings.model_copy(update={"cybertipline_username": "u",
                                            "cybertipline_password": SecretStr("p")})
    with env.db.read() as s:
        assert reports.alert_counts(s, settings=ready)["no_credentials"] == 0


def test_worker_without_credentials_still_drafts_and_preserves(env: Env) -> None:
    # Preservation and the draft must not wait for CyberTipline credentials: the worker
    # drafts (and preserves) from the local schema; only submission waits.
    from bastion.actions.worker import build_worker
    from bastion.store.models_preservation import PreservedItem

    rc = env.client("reviewer")
    case_id = env.upload(rc, "post-9")
    page = rc.get(f"/ui/cases/{case_id}").text
    r = rc.post(f"/ui/cases/{case_id}/decide", follow_redirects=False, data={
        "csrf": form_token(page), "decision": "csam", "classification": "A1"})
    assert r.status_code == 303
    assert env.settings.cybertipline_username is None
    worker = build_worker(env.db, env.settings)
    try:
        assert worker.run_once().reports == 1
    finally:
        worker.close()
    with env.db.read() as s:
        (view,) = reports.list_reports(s)
        assert view.state == "draft"
        assert s.query(PreservedItem).count() == 1
