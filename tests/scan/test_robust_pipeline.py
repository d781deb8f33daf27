"""Everyday re-upload edits that PDQ alone misses are found through the pipeline: a bank
picture added as a file (bank-side variants) against edited uploads (query-side variants)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.scan.service import MatchService
from bastion.signals.base import Signal
from bastion.signals.compute import hash_bytes
from bastion.signals.pdq import hamming
from bastion.store.database import Database, migrate

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"
ORIG = DATA / "bridge-mods" / "aaa-orig.jpg"


def _crop(im: Image.Image, frac: float) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * frac), int(h * frac), int(w * (1 - frac)), int(h * (1 - frac))))


def _caption(im: Image.Image, frac: float) -> Image.Image:
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    draw.rectangle((0, int(h * (1 - frac)), w, h), fill=(255, 255, 255))
    for x in range(10, w - 40, 37):
        draw.text((x, int(h * (1 - frac / 2)) - 5), "caption", fill=(0, 0, 0))
    return out


def _letterbox(im: Image.Image, frac: float = 0.15) -> Image.Image:
    w, h = im.size
    pad = int(h * frac)
    out = Image.new("RGB", (w, h + 2 * pad), (0, 0, 0))
    out.paste(im, (0, pad))
    return out


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop-5%": lambda im: _crop(im, 0.05),
    "caption-20%": lambda im: _caption(im, 0.19),
    "letterbox": _letterbox,
    "letterbox+caption": lambda im: _letterbox(_caption(im, 0.19)),
    "rotate-3deg": lambda im: im.rotate(3, resample=Image.Resampling.BICUBIC),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> MatchService:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('robust') / 'bastion.db'}")
    migrate(db)
    with db.write() as session:
        banks.create(session, data=BankCreate(name="one", label="csam"))
        banks.add_files(session, name="one", paths=[ORIG])
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    return svc


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edit_missed_by_pdq_alone_is_found(service: MatchService, edit: str) -> None:
    original = Image.open(ORIG).convert("RGB")
    buf = io.BytesIO()
    EDITS[edit](original).save(buf, "JPEG", quality=90)
    upload = hash_bytes(buf.getvalue(), variants="query")
    plain = hash_bytes(ORIG.read_bytes())
    stored = [s for s in upload.signals if isinstance(s, Signal) and s.variant.kind == "stored"]
    orig_pdq = next(s for s in plain.signals if isinstance(s, Signal) and s.signal_type == "pdq")
    up_pdq = next(s for s in stored if s.signal_type == "pdq")
    # PDQ alone (all 8 dihedral hashes) misses the edit ...
    assert min(hamming(d, orig_pdq.value) for d in up_pdq.dihedral or ()) > 31
    # ... Bastion's variants find it.
    result = service.scan_result(upload)
    assert result.status == "match", edit
    assert all(m.distance <= 31 for m in result.matches)


def test_unrelated_pictures_stay_unmatched(service: MatchService) -> None:
    for path in sorted((DATA / "reg-test-input" / "labelme-subset").glob("*.jpg")):
        result = service.scan_result(hash_bytes(path.read_bytes(), variants="query"))
        assert result.status == "no_match", (path.name, [m.to_json() for m in result.matches])
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    assert service.scan_result(hash_bytes(buf.getvalue(), variants="query")).status == "no_match"
