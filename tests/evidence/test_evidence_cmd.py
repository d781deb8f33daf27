"""``bastion evidence`` list, hold, release, purge, export and approve-export."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from bastion.cases import service as cases
from bastion.cli.main import app
from bastion.config import load_settings
from bastion.errors import BastionError
from bastion.evidence import preservation
from bastion.evidence.keys import MasterKey
from bastion.evidence.vault import open_vault
from bastion.store.database import open_database
from bastion.store.types import utcnow
from bastion.users import service as users

BRIDGE = Path(__file__).resolve().parents[2] / "../shared/data/images/bridge-mods/aaa-orig.jpg"


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args), env=env)
    if isinstance(r.exception, BastionError):
        return 2, r.stdout + r.exception.message
    return r.exit_code, r.stdout


def test_evidence_cli(tmp_path: Path) -> None:
    env = {"BASTION_HOME": str(tmp_path), "BASTION_MASTER_KEY": MasterKey.generate().key.hex()}
    settings = load_settings(environ=env)
    data = BRIDGE.read_bytes()
    db = open_database(settings)
    try:
        vault = open_vault(settings)
        with db.write() as s:
            for name in ("ann", "bob"):
                users.create(s, name=name, role="admin", password="p" * 16, actor="t")
            case = cases.open_case(s, content_id="post-cli", user_id="u-cli", verdict_id=None,
                                   source="flag", rule="flag", base_priority=50, hide=False,
                                   matches=[], media="none", actor="t")
            cases.attach_media(s, case_id=case.id, data=data, vault=vault, actor="t")
            item = preservation.preserve(s, vault=vault, case_id=case.id, settings=settings,
                                         actor="t", now=utcnow() - timedelta(days=400))
    finally:
        db.dispose()
    code, out = _run(env, "evidence", "list", "--json")
    assert code == 0 and [i["content_id"] for i in json.loads(out)] == ["post-cli"]
    code, out = _run(env, "evidence", "hold", str(item.id), "--reference", "matter 9",
                     "--as", "ann")
    assert code == 0 and out.startswith("hold 1 on item"), out
    code, out = _run(env, "evidence", "show", str(item.id), "--reason", "audit check",
                     "--as", "bob")
    shown = json.loads(out)
    assert code == 0 and shown["metadata"]["user_id"] == "u-cli" and shown["size"] == len(data)
    assert [h["reference"] for h in shown["holds"]] == ["matter 9"] and shown["held"]
    assert _run(env, "evidence", "purge", "--json")[1].strip() == '{"purged": []}'
    code, out = _run(env, "evidence", "export", str(item.id), "--reference", "warrant 77",
                     "--reason", "court order")
    assert code == 2 and "--as" in out
    code, out = _run(env, "evidence", "export", str(item.id), "--reference", "warrant 77",
                     "--reason", "court order", "--as", "ann")
    assert code == 0 and out.startswith("export 1 requested"), out
    code, out = _run(env, "evidence", "approve-export", "1", "--as", "ann")
    assert code == 2 and "second admin" in out
    code, out = _run(env, "evidence", "approve-export", "1", "--as", "bob", "--json")
    assert code == 0, out
    res = json.loads(out)
    blob = Path(res["path"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == res["sha256"]
    files = preservation.open_export(blob, res["key"])
    assert files[f"items/{item.id}/content.bin"] == data
    assert json.loads(files["manifest.json"])["legal_process"] == "warrant 77"
    assert _run(env, "evidence", "release", "1", "--as", "bob")[0] == 0
    code, out = _run(env, "evidence", "purge")
    assert code == 0 and out.strip() == f"purged 1 item(s): {item.id}"
    assert not list((tmp_path / "evidence").glob("*.bin"))
    assert _run(env, "evidence", "list", "--json")[1].strip() == "[]"
