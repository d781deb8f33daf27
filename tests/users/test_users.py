"""Users: Argon2id passwords, roles, sign-in with lock-out (audited, ids only), sessions
that end on sign-out, exposure totals; ``bastion user create --password-stdin``."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bastion.cli.main import main
from bastion.config import Settings, load_settings
from bastion.errors import Conflict, InvalidInput
from bastion.store.audit import list_audit_events
from bastion.store.database import Database
from bastion.store.models_review import User
from bastion.store.types import utcnow
from bastion.users import service as users

PW = "correct horse battery"


def _settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, home=tmp_path)


def test_create_and_sign_in(db: Database, tmp_path: Path) -> None:
    st = _settings(tmp_path)
    with db.write() as s:
        u = users.create(s, name="rita", role="reviewer", password=PW, actor="cli")
        with pytest.raises(Conflict):
            users.create(s, name="rita", role="reviewer", password=PW, actor="cli")
        for bad in ({"role": "boss"}, {"password": "short"}, {"name": "bad name"}):
            args = {"name": "x", "role": "auditor", "password": PW, **bad}
            with pytest.raises(InvalidInput):
                users.create(s, actor="cli", **args)
    with db.read() as s:
        stored = s.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored
    with db.write() as s:
        ok = users.sign_in(s, name="rita", password=PW, settings=st)
        assert ok.user is not None and ok.user.id == u.id
        assert users.sign_in(s, name="nobody", password=PW, settings=st).reason == "invalid"
    with db.read() as s:
        ev = [(e.action, e.object_id) for e in list_audit_events(s, limit=5)]
    assert ("user.login", str(u.id)) in ev and ("user.login_failed", "unknown") in ev
    assert all("rita" not in str(x) for x in ev)


def test_lockout_after_repeated_failures(db: Database, tmp_path: Path) -> None:
    st = _settings(tmp_path)
    with db.write() as s:
        users.create(s, name="al", role="admin", password=PW, actor="cli")
    for _ in range(st.review.max_failed_logins):
        with db.write() as s:
            assert users.sign_in(s, name="al", password="wrong password!", settings=st).user is None
    with db.write() as s:
        assert users.sign_in(s, name="al", password=PW, settings=st).reason == "locked"
    later = utcnow() + timedelta(minutes=st.review.lockout_minutes + 1)
    with db.write() as s:
        assert users.sign_in(s, name="al", password=PW, settings=st, now=later).user is not None


def test_sessions_end_on_sign_out_and_disable(db: Database, tmp_path: Path) -> None:
    st = _settings(tmp_path)
    with db.write() as s:
        u = users.create(s, name="ann", role="auditor", password=PW, actor="cli")
        token, row = users.start_session(s, user_id=u.id, settings=st)
        token2, _ = users.start_session(s, user_id=u.id, settings=st)
    with db.read() as s:
        found = users.find_session(s, token)
        assert found is not None and found[1].role == "auditor"
        assert users.find_session(s, token, now=row.expires_at + timedelta(seconds=1)) is None
        assert users.find_session(s, "forged") is None
    with db.write() as s:
        users.end_session(s, token=token, actor=f"user:{u.id}")
    with db.read() as s:
        assert users.find_session(s, token) is None and users.find_session(s, token2)
    with db.write() as s:
        users.set_disabled(s, name="ann", disabled=True, actor="cli")
    with db.read() as s:
        assert users.find_session(s, token2) is None


def test_exposure_totals(db: Database, tmp_path: Path) -> None:
    st = _settings(tmp_path)
    with db.write() as s:
        u = users.create(s, name="rev", role="reviewer", password=PW, actor="cli")
        _tok, row = users.start_session(s, user_id=u.id, settings=st)
        users.touch(s, session_id=row.id, reveals=1, now=row.last_seen_at + timedelta(minutes=2))
        users.touch(s, session_id=row.id, reveals=2,
                    now=row.last_seen_at + timedelta(hours=2))  # idle gap counts 5 min
    with db.read() as s:
        (tot,) = users.exposure_totals(s)
    assert tot["reveals"] == 3 and tot["review_minutes"] == 7


def test_user_create_command(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BASTION_DATABASE_URL", db.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    with pytest.raises(SystemExit) as exc:
        main(["user", "create", "cli-rev", "--role", "reviewer", "--password-stdin"])
    assert exc.value.code in (0, None) and "role=reviewer" in capsys.readouterr().out
    with db.write() as s:
        assert users.sign_in(s, name="cli-rev", password=PW,
                             settings=_settings(tmp_path)).user is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit) as exc:
        main(["user", "create", "x2", "--role", "reviewer", "--password-stdin"])
    assert exc.value.code == 2
