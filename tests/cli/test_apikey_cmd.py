"""``bastion apikey`` create (key alone on the last line), list, expire, revoke;
``bastion config show`` masks secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.apikeys import service as keys
from bastion.cli.main import app
from bastion.config import load_settings
from bastion.errors import BastionError
from bastion.store.database import open_database


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run like ``bastion.cli.main.main``: a Bastion error exits with status 2."""
    r = CliRunner().invoke(app, list(args), env=env)
    if isinstance(r.exception, BastionError):
        return 2, r.stdout
    return r.exit_code, r.stdout


def test_create_list_expire_revoke(tmp_path: Path) -> None:
    d = str(tmp_path)
    code, out = _run("apikey", "create", "uploader", "--scope", "content:submit,match",
                     "--data-dir", d)
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert keys.looks_like_key(key)
    db = open_database(load_settings(environ={}, home=tmp_path))
    try:
        with db.read() as s:
            rec = keys.find_by_key(s, key)
            assert rec is not None and rec.scopes == ("content:submit", "match")
            assert rec.active()
            raw = s.execute(__import__("sqlalchemy").text("SELECT digest FROM api_keys"))
            assert [r[0] for r in raw] == [keys.digest_of(key)]  # only the digest is kept
        code, out = _run("apikey", "list", "--json", "--data-dir", d)
        listed = json.loads(out)
        assert listed[0]["prefix"] == key[:12] and key not in out
        assert _run("apikey", "expire", str(rec.id), "--data-dir", d)[0] == 0
        with db.read() as s:
            assert not keys.find_by_key(s, key).active()  # type: ignore[union-attr]
        code, out = _run("apikey", "create", "second", "--scope", "admin", "--data-dir", d)
        key2 = out.strip().splitlines()[-1]
        assert _run("apikey", "revoke", "2", "--data-dir", d)[0] == 0
        with db.read() as s:
            assert keys.find_by_key(s, key2).state() == "revoked"  # type: ignore[union-attr]
    finally:
        db.dispose()
    code, _ = _run("apikey", "create", "bad", "--scope", "superuser", "--data-dir", d)
    assert code == 2
    assert _run("apikey", "revoke", "99", "--data-dir", d)[0] == 2


@pytest.mark.parametrize("secret_var", ["BASTION_METRICS_TOKEN", "BASTION_DATABASE_URL"])
def test_config_show_masks_secrets(tmp_path: Path, secret_var: str) -> None:
    secret = "sqlite:////tmp/s3cr3t.db" if "DATABASE" in secret_var else "s3cr3t-token"
    code, out = _run("config", "show", "--json", "--data-dir", str(tmp_path),
                     env={secret_var: secret})
    assert code == 0, out
    assert "s3cr3t" not in out
    shown = json.loads(out)
    assert shown[secret_var.removeprefix("BASTION_").lower()] == "**********"
    assert shown["fetch_urls"] is False
