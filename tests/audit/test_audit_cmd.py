"""``bastion audit verify`` and ``list``: a tampered row fails verification, named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from bastion.cli.main import main
from bastion.store.audit import record_audit_event
from bastion.store.database import Database
from bastion.store.models import AuditEvent


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["audit", *args])
    code = exc.value.code
    return (code if isinstance(code, int) else 0), capsys.readouterr().out


def test_verify_names_the_tampered_row(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BASTION_DATABASE_URL", db.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    with db.write() as s:
        ids = [record_audit_event(s, actor="user:2", action="case.decide", object_type="case",
                                  object_id=str(i)).id for i in range(4)]
    code, out = _run(capsys, "verify")
    assert code == 0 and "4 events verified" in out
    code, out = _run(capsys, "list", "--json", "--limit", "2")
    assert code == 0 and [json.loads(x)["id"] for x in out.splitlines()] == ids[:1:-1]
    with db.write() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == ids[1]).values(object_id="99"))
    code, out = _run(capsys, "verify")
    assert code == 1 and f"BROKEN at event {ids[1]}" in out
