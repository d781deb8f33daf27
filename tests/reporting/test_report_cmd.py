"""``bastion report`` draft, approve, submit, show, list, export, reconcile, retract against
the fake CyberTipline; ``bastion actions list --failed`` and ``retry``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tests.reporting.incidents import XSD, sample_incident
from typer.testing import CliRunner

from bastion.actions import outbox
from bastion.cli.main import app
from bastion.config import load_settings
from bastion.errors import BastionError
from bastion.reporting.incident import incident_to_json
from bastion.store.database import open_database
from bastion.store.models_actions import ActionRow
from bastion.testing.fake_cybertipline import FakeCyberTipline


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args), env=env)
    if isinstance(r.exception, BastionError):
        return 2, r.stdout + r.exception.message
    return r.exit_code, r.stdout


def _env(tmp_path: Path, fake: FakeCyberTipline) -> dict[str, str]:
    return {"BASTION_HOME": str(tmp_path), "BASTION_CYBERTIPLINE_URL": fake.url,
            "BASTION_CYBERTIPLINE_USERNAME": "esp", "BASTION_CYBERTIPLINE_PASSWORD": "pw",
            "BASTION_CYBERTIPLINE_XSD": str(XSD),
            "BASTION_CYBERTIPLINE_REPORTER_FIRST_NAME": "Trust",
            "BASTION_CYBERTIPLINE_REPORTER_EMAIL": "ts@example.org"}


def test_report_cli_round_trip(tmp_path: Path, fake: FakeCyberTipline) -> None:
    env = _env(tmp_path, fake)
    inc = replace(sample_incident("trafficking", files=0), reporter=None)
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident_to_json(inc)))
    code, out = _run(env, "report", "draft", str(path))
    assert code == 0, out
    assert "report 1 drafted" in out
    code, out = _run(env, "report", "draft", str(path))
    assert code == 2 and "already has report" in out
    code, out = _run(env, "report", "show", "1", "--xml")
    assert "<email>ts@example.org</email>" in out  # reporter from the settings
    assert _run(env, "report", "approve", "1")[1].strip() == "report 1 approved"
    code, out = _run(env, "report", "submit", "1")
    assert code == 0 and "\tsubmitted\t" in out, out
    (report,) = fake.snapshot()["reports"].values()
    assert report["finished"]
    code, out = _run(env, "report", "list", "--json")
    listed = json.loads(out)
    assert [r["state"] for r in listed] == ["submitted"]
    assert listed[0]["ncmec_report_id"] == int(next(iter(fake.snapshot()["reports"])))
    code, out = _run(env, "report", "export", "1", "--authority", "uk-nca")
    doc = json.loads(out)
    assert doc["format"] == "bastion.incident-export/1" and doc["authority"] == "uk-nca"
    assert doc["incident"]["incident_type"] == "Child Sex Trafficking"
    assert doc["cybertipline_report_id"] == listed[0]["ncmec_report_id"]
    code, out = _run(env, "report", "retract", "1")
    assert code == 2 and "already finished" in out
    code, out = _run(env, "report", "reconcile", "1", "--not-received")
    assert code == 2 and "not needs_reconciliation" in out
    code, out = _run(env, "report", "export", "1", "--authority", "UK NCA!")
    assert code == 2


def test_report_without_reporting_person_is_refused(tmp_path: Path,
                                                     fake: FakeCyberTipline) -> None:
    env = {k: v for k, v in _env(tmp_path, fake).items() if "REPORTER" not in k}
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident_to_json(replace(sample_incident(files=0),
                                                        reporter=None))))
    code, out = _run(env, "report", "draft", str(path))
    assert code == 2 and "reportingPerson" in out
    assert sum(fake.snapshot()["calls"].values()) == 0


def test_export_files_carry_hashes_not_locators() -> None:
    from bastion.reporting.export import export_incident

    doc = export_incident(sample_incident(files=2), authority="iwf")
    files = doc["incident"]["files"]
    assert [f["hashes"][0] for f in files] == [{"hash_type": "MD5", "value": f"{i:032x}"}
                                               for i in range(2)]
    assert all("locator" not in f for f in files)


def test_actions_cli_lists_dead_letters_and_retries(tmp_path: Path) -> None:
    env = {"BASTION_HOME": str(tmp_path)}
    settings = load_settings(environ=env)
    db = open_database(settings)
    try:
        with db.write() as s:
            a = outbox.enqueue(s, kind="hide", content_id="c1", settings=settings)
            outbox.enqueue(s, kind="takedown", content_id="c2", settings=settings)
            row = s.get(ActionRow, a.id)
            assert row is not None
            row.state, row.last_error = "dead", "hide webhook answered HTTP 503"
    finally:
        db.dispose()
    code, out = _run(env, "actions", "list", "--failed")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{a.id}\thide\tdead\tc1")
    assert "HTTP 503" in lines[0]
    code, out = _run(env, "actions", "list", "--json")
    assert [x["state"] for x in json.loads(out)] == ["pending", "dead"]
    code, out = _run(env, "actions", "retry", str(a.id))
    assert code == 0 and "1 action(s) queued again" in out
    assert _run(env, "actions", "list", "--failed")[1].strip() == ""
    code, out = _run(env, "actions", "retry", str(a.id))
    assert code == 2 and "only dead or blocked actions retry" in out
    assert _run(env, "actions", "retry")[0] == 2


def test_actions_cli_failed_lists_blocked_actions(tmp_path: Path) -> None:
    env = {"BASTION_HOME": str(tmp_path)}
    settings = load_settings(environ=env)
    db = open_database(settings)
    try:
        with db.write() as s:
            a = outbox.enqueue(s, kind="takedown", content_id="c1", settings=settings)
            outbox.enqueue(s, kind="preserve", content_id="c1", settings=settings)
            row = s.get(ActionRow, a.id)
            assert row is not None
            row.state = "blocked"
            row.last_error = "no webhook endpoint configured for takedown: set webhook_urls"
    finally:
        db.dispose()
    code, out = _run(env, "actions", "list", "--failed")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{a.id}\ttakedown\tblocked\tc1")
    assert "no webhook endpoint configured for takedown" in lines[0]
    code, out = _run(env, "actions", "retry", "--all-failed")
    assert code == 0 and "1 action(s) queued again" in out
