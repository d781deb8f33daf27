"""A picture written through a case is nowhere on disk in the clear: not in the data
directory, not in the temporary directory, not in the SQLite database (after a checkpoint
of its write-ahead log); neither is its preview."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bastion.banks.sample import create_sample_bank
from bastion.cases import service as cases
from bastion.config import load_settings
from bastion.content.schemas import ContentMeta
from bastion.content.service import ContentService
from bastion.evidence.keys import MasterKey
from bastion.evidence.preview import blurred_preview
from bastion.evidence.vault import Vault
from bastion.scan.service import MatchService
from bastion.store.database import Database, migrate

BRIDGE = (Path(__file__).resolve().parents[2].parent
          / "shared/data/images/bridge-mods/aaa-orig.jpg")


def _needles(blob: bytes) -> list[bytes]:
    n = len(blob)
    return [blob[i:i + 48] for i in (n // 4, n // 2, 3 * n // 4)]


def _files(root: Path, since: float) -> list[Path]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_mtime >= since:
                    out.append(p)
            except OSError:
                continue
    return out


def test_no_plaintext_or_preview_at_rest(tmp_path: Path) -> None:
    start = time.time() - 1
    home = tmp_path / "home"
    db = Database(f"sqlite:///{home / 'bastion.db'}")
    migrate(db)
    matcher = MatchService(db)
    try:
        with db.write() as s:
            create_sample_bank(s)
        matcher.start(background=False, follow=False)
        settings = load_settings(environ={}, home=home, decode_workers=0)
        vault = Vault(home / "evidence", MasterKey.generate())
        svc = ContentService(db=db, matcher=matcher, settings=settings, pool=None,
                             vault=vault)
        data = BRIDGE.read_bytes()
        v = svc.submit_bytes(data, ContentMeta(content_id="secret-1"), actor="t")
        with db.read() as s:
            case = cases.get(s, case_id=int(v.case_id or 0))
            assert case.evidence_id is not None
            preview = blurred_preview(vault.read(s, case.evidence_id), blur=24)
        with db.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        matcher.close()
        db.dispose()
    needles = _needles(data) + _needles(preview)
    # pytest's own temporary trees (other tests copy the same benign picture there) are
    # left out of the temporary-directory search; this test's data directory is in it.
    pytest_root = tmp_path.parent.parent
    files = _files(home, 0) + [p for p in _files(Path(tempfile.gettempdir()), start)
                               if pytest_root not in p.parents]
    assert any(p.name == "bastion.db" for p in files)
    assert any(p.suffix == ".bin" for p in files)  # the ciphertext is there ...
    for p in files:
        try:
            blob = p.read_bytes()
        except OSError:
            continue
        for needle in needles:
            assert needle not in blob, f"plaintext found in {p}"  # ... and nothing else
