"""The evidence vault: AES-256-GCM per item, keys wrapped by the master key, integrity
checked on read, destruction makes an item unreadable, master-key rotation; the master key
file is created owner-only and refused when others can read it; previews are blurred
greyscale JPEGs made in memory."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bastion.config import load_settings
from bastion.errors import ConfigurationError, NotFound, UnhashableContent
from bastion.evidence.keys import MasterKey, load_master_key, parse_key
from bastion.evidence.preview import blurred_preview, revealed_image
from bastion.evidence.vault import EvidenceCorrupt, Vault, rotate_master_key
from bastion.store.database import Database
from bastion.store.models_review import EvidenceItem

BRIDGE = Path(__file__).resolve().parents[2] / "../shared/data/images/bridge-mods/aaa-orig.jpg"


def test_put_read_destroy(db: Database, tmp_path: Path) -> None:
    vault = Vault(tmp_path / "evidence", MasterKey.generate())
    data = BRIDGE.read_bytes()
    with db.write() as s:
        item_id = vault.put(s, content_id="c1", data=data, case_id=None, actor="test").id
    stored = list((tmp_path / "evidence").iterdir())
    assert len(stored) == 1 and data[100:164] not in stored[0].read_bytes()
    assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    with db.read() as s:
        assert vault.read(s, item_id) == data
    # a different master key cannot read it
    other = Vault(tmp_path / "evidence", MasterKey.generate())
    with db.read() as s, pytest.raises(EvidenceCorrupt):
        other.read(s, item_id)
    with db.write() as s:
        vault.destroy(s, item_id, actor="test", reason="test")
    assert list((tmp_path / "evidence").iterdir()) == []
    with db.read() as s:
        assert s.get(EvidenceItem, item_id).wrapped_key is None  # type: ignore[union-attr]
        with pytest.raises(NotFound):
            vault.read(s, item_id)


def test_tampered_ciphertext_is_refused(db: Database, tmp_path: Path) -> None:
    vault = Vault(tmp_path / "evidence", MasterKey.generate())
    with db.write() as s:
        item = vault.put(s, content_id="c1", data=b"x" * 1000, case_id=None, actor="test")
        item_id, name = item.id, item.file_name
    path = tmp_path / "evidence" / name
    raw = bytearray(path.read_bytes())
    raw[10] ^= 1
    path.write_bytes(bytes(raw))
    with db.read() as s, pytest.raises(EvidenceCorrupt, match="integrity"):
        vault.read(s, item_id)


def test_rotation_rewraps_every_key(db: Database, tmp_path: Path) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    vault = Vault(tmp_path / "evidence", old)
    with db.write() as s:
        ids = [vault.put(s, content_id=f"c{i}", data=bytes([i]) * 50, case_id=None,
                         actor="test").id for i in range(3)]
    with db.write() as s:
        assert rotate_master_key(s, Vault(tmp_path / "evidence", new, (old,)), new,
                                 actor="test") == 3
    rotated = Vault(tmp_path / "evidence", new)
    with db.read() as s:
        assert [rotated.read(s, i) for i in ids] == [bytes([i]) * 50 for i in range(3)]
        with pytest.raises(EvidenceCorrupt, match="not configured"):
            vault.read(s, ids[0])


def test_master_key_file_created_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "bastion" / "master.key"
    settings = load_settings(environ={}, home=tmp_path / "home", master_key_file=key_file)
    k1 = load_master_key(settings)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_master_key(settings) == k1
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_master_key(settings)


def test_master_key_from_environment() -> None:
    hexkey = "11" * 32
    s = load_settings(environ={"BASTION_MASTER_KEY": hexkey})
    assert load_master_key(s).key == bytes.fromhex(hexkey)
    assert "11111111" not in repr(s) and "11111111" not in repr(load_master_key(s))
    with pytest.raises(ConfigurationError, match="BASTION_MASTER_KEY"):
        load_master_key(load_settings(environ={"BASTION_MASTER_KEY": "short"}))
    assert parse_key("ESIzRFVmd4iZqrvM3e7/ABEiM0RVZneImaq7zN3u/wA=", "x").key[:2] == b"\x11\x22"


def test_previews_are_blurred_greyscale_jpegs() -> None:
    data = BRIDGE.read_bytes()
    prev = blurred_preview(data, blur=24)
    img = Image.open(io.BytesIO(prev))
    assert img.format == "JPEG" and img.mode == "L" and max(img.size) == 512
    orig = Image.open(io.BytesIO(data)).convert("L").resize(img.size)
    # blur removes fine detail: far less edge energy than the original
    def edges(im: Image.Image) -> float:
        a = np.asarray(im, dtype=np.int32)
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert edges(img) < edges(orig) / 4
    rev = Image.open(io.BytesIO(revealed_image(data)))
    assert rev.mode == "RGB" and not rev.info.get("exif")
    with pytest.raises(UnhashableContent):
        blurred_preview(b"not a picture", blur=10)


def test_video_preview_is_a_blurred_contact_sheet() -> None:
    from bastion.evidence.preview import SHEET_TILE, preview_of

    video = (Path(__file__).resolve().parents[2]
             / "../shared/data/video/chair-19-sd-bar.mp4").read_bytes()
    sheet = Image.open(io.BytesIO(preview_of(video, blur=24)))
    assert sheet.format == "JPEG" and sheet.mode == "L"
    assert sheet.size == (3 * SHEET_TILE, 3 * SHEET_TILE)  # 9 frames sampled
    with pytest.raises(UnhashableContent):
        preview_of(video[:3000], blur=24)


def test_orphans_are_swept_once_old(db: Database, tmp_path: Path) -> None:
    vault = Vault(tmp_path / "evidence", MasterKey.generate())
    with pytest.raises(RuntimeError), db.write() as s:
        vault.put(s, content_id="c", data=b"y" * 100, case_id=None, actor="t")
        raise RuntimeError("the transaction rolls back")
    with db.write() as s:
        kept = vault.put(s, content_id="d", data=b"z" * 100, case_id=None, actor="t")
        kept_name = kept.file_name
    assert len(list((tmp_path / "evidence").glob("*.bin"))) == 2
    with db.read() as s:
        assert vault.sweep_orphans(s) == 0  # too young: may be in flight
        assert vault.sweep_orphans(s, older_than_s=-1) == 1
    assert [p.name for p in (tmp_path / "evidence").glob("*.bin")] == [kept_name]
