"""Robustness variants (bastion.signals.robust): edits PDQ alone misses match through a
compatible variant pair; unrelated pictures never do."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bastion.signals.base import MIN_MATCH_QUALITY, Variant
from bastion.signals.pdq import PDQ_THRESHOLD, RGBArray, hamming, pdq_dihedral, pdq_hash
from bastion.signals.robust import (
    BAND_THRESHOLD,
    BANDS,
    CROP_SCALES,
    CROP_THRESHOLD,
    ROTATION_CROP,
    ROTATIONS,
    bank_variants,
    compatible,
    pair_threshold,
    query_variants,
)

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "../shared/data/images"
BRIDGE = "bridge-mods/aaa-orig.jpg"
STORED = Variant()


def load(rel: str) -> RGBArray:
    with Image.open(IMAGES / rel) as im:
        return np.asarray(im.convert("RGB"))


def jpeg(rgb: RGBArray, quality: int = 90) -> RGBArray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class Hashed:
    variant: Variant
    values: tuple[str, ...]  # 8 dihedral hashes for whole-picture query variants, else 1
    quality: int


def query_hashes(rgb: RGBArray) -> list[Hashed]:
    """What the scan pipeline computes for an upload."""
    hashes, quality = pdq_dihedral(rgb)
    out = [Hashed(STORED, tuple(hashes.values()), quality)]
    for variant, pixels in query_variants(rgb):
        if variant.kind == "trimmed":
            hashes, quality = pdq_dihedral(pixels)
            out.append(Hashed(variant, tuple(hashes.values()), quality))
        else:
            h = pdq_hash(pixels)
            out.append(Hashed(variant, (h.value,), h.quality))
    return out


def bank_hashes(rgb: RGBArray) -> list[Hashed]:
    """What adding a picture to a bank computes."""
    h = pdq_hash(rgb)
    out = [Hashed(STORED, (h.value,), h.quality)]
    for variant, pixels in bank_variants(rgb):
        h = pdq_hash(pixels)
        out.append(Hashed(variant, (h.value,), h.quality))
    return out


def matches(query: list[Hashed], bank: list[Hashed]) -> list[tuple[Variant, Variant, int, int]]:
    """Every (query variant, bank variant, distance, threshold) within its pair threshold."""
    out = []
    for q, b in itertools.product(query, bank):
        t = pair_threshold(q.variant, b.variant, PDQ_THRESHOLD)
        if t is None or min(q.quality, b.quality) < MIN_MATCH_QUALITY:
            continue
        d = min(hamming(v, b.values[0]) for v in q.values)
        if d <= t:
            out.append((q.variant, b.variant, d, t))
    return out


@pytest.fixture(scope="module")
def bridge() -> RGBArray:
    return load(BRIDGE)


@pytest.fixture(scope="module")
def bridge_bank(bridge: RGBArray) -> list[Hashed]:
    return bank_hashes(bridge)


# ------------------------------------------------------------------ the variants themselves


def test_query_variants_of_a_borderless_picture(bridge: RGBArray) -> None:
    variants = query_variants(bridge)
    assert [(v.kind, v.detail) for v, _ in variants] == [
        *(("band", d) for d in BANDS),
        ("crop", f"centre-{ROTATION_CROP}"),
    ]
    h, w = bridge.shape[:2]
    top80, bottom80, centre88 = (p for _, p in variants)
    assert top80.shape == (round(0.8 * h), w, 3)
    assert np.array_equal(top80, bridge[: round(0.8 * h)])
    assert np.array_equal(bottom80, bridge[round(0.2 * h) :])
    dy, dx = round(h * 0.06), round(w * 0.06)
    assert np.array_equal(centre88, bridge[dy : h - dy, dx : w - dx])


def test_bank_variants_are_centre_crops_and_bands(bridge: RGBArray) -> None:
    variants = bank_variants(bridge)
    crops = [(v, p) for v, p in variants if v.kind == "crop" and "rotate" not in str(v.detail)]
    assert [v.detail for v, _ in crops] == [f"centre-{s}" for s in CROP_SCALES]
    h, w = bridge.shape[:2]
    for (v, p), scale in zip(crops, CROP_SCALES, strict=True):
        dy, dx = round(h * (100 - scale) / 200), round(w * (100 - scale) / 200)
        assert np.array_equal(p, bridge[dy : h - dy, dx : w - dx]), v
    assert [v.detail for v, _ in variants if v.kind == "band"] == list(BANDS)
    assert not any(v.kind == "trimmed" for v, _ in variants)
    turned = [(v, p) for v, p in variants if "rotate" in str(v.detail)]
    assert [v.detail for v, _ in turned] == [
        f"rotate{d:+d}:centre-{ROTATION_CROP}" for d in ROTATIONS
    ]
    # Rotated on a copy shrunk to at most 1024 px a side, then cropped to the central 88%.
    for _, p in turned:
        sh, sw = round(h * 1024 / w), 1024
        assert p.shape == (sh - 2 * round(sh * 0.06), sw - 2 * round(sw * 0.06), 3)
    assert len({v.index for v, _ in variants if v.kind == "crop"}) == len(CROP_SCALES) + 2


def test_regions_are_taken_of_the_trimmed_picture_too() -> None:
    boxed = load("hasher-edge-cases/letterboxed_sample-b.jpg")
    content = boxed[200:1204, 200:1800]
    for variants in (query_variants(boxed), bank_variants(boxed)):
        assert variants[0][0].kind == "trimmed"
        assert np.array_equal(variants[0][1], content)
        bands = {v.detail: p for v, p in variants if v.kind == "band"}
        assert sorted(bands) == ["bottom-80", "top-80", "trimmed:bottom-80", "trimmed:top-80"]
        assert np.array_equal(bands["top-80"], boxed[: round(0.8 * boxed.shape[0])])
        assert np.array_equal(bands["trimmed:top-80"], content[: round(0.8 * content.shape[0])])
    crops = {v.detail: p for v, p in bank_variants(boxed) if v.kind == "crop"}
    assert sorted(crops) == sorted(
        [f"trimmed:centre-{s}" for s in CROP_SCALES]
        + [f"trimmed:rotate{d:+d}:centre-{ROTATION_CROP}" for d in ROTATIONS]
    )
    assert np.array_equal(crops["trimmed:centre-90"], content[50:954, 80:1520])


def test_tiny_pictures_get_no_region_variants() -> None:
    tiny = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert query_variants(tiny) == []
    assert bank_variants(tiny) == []


WHOLE = [Variant("stored"), Variant("displayed"), Variant("frame", 3, 1.5), Variant("trimmed")]


@pytest.mark.parametrize("q", WHOLE)
@pytest.mark.parametrize("b", WHOLE)
def test_whole_picture_kinds_compare_at_the_bank_threshold(q: Variant, b: Variant) -> None:
    assert compatible(q, b)
    assert pair_threshold(q, b, 31) == 31
    assert pair_threshold(q, b, 20) == 20


@pytest.mark.parametrize("q", WHOLE)
def test_whole_pictures_compare_with_bank_crops(q: Variant) -> None:
    crop = Variant("crop", 2, None, "centre-91")
    assert compatible(q, crop)
    assert pair_threshold(q, crop, 31) == min(31, CROP_THRESHOLD)
    assert pair_threshold(q, crop, 10) == 10  # never looser than the bank asks


def test_bands_compare_only_with_the_same_band() -> None:
    top = Variant("band", 0, None, "top-80")
    bottom = Variant("band", 1, None, "bottom-80")
    assert pair_threshold(top, Variant("band", 0, None, "top-80"), 31) == min(31, BAND_THRESHOLD)
    assert pair_threshold(top, bottom, 31) is None
    # The same region of the trimmed picture is the same region.
    trimmed_top = Variant("band", 2, None, "trimmed:top-80")
    assert pair_threshold(top, trimmed_top, 31) == min(31, BAND_THRESHOLD)
    assert pair_threshold(trimmed_top, top, 31) == min(31, BAND_THRESHOLD)
    assert pair_threshold(trimmed_top, Variant("band", 3, None, "trimmed:bottom-80"), 31) is None
    for whole in WHOLE:
        assert pair_threshold(top, whole, 31) is None
        assert pair_threshold(whole, top, 31) is None
    assert pair_threshold(top, Variant("crop", 0, None, "centre-97"), 31) is None


def test_query_crops_compare_only_with_rotated_crops_of_the_same_region() -> None:
    crop = Variant("crop", 0, None, "centre-88")
    for other in [
        *WHOLE,
        crop,
        Variant("crop", 3, None, "centre-90"),
        Variant("band", 0, None, "top-80"),
    ]:
        assert not compatible(crop, other)
    for detail in ("rotate+3:centre-88", "rotate-3:centre-88", "trimmed:rotate+3:centre-88"):
        turned = Variant("crop", 10, None, detail)
        assert pair_threshold(crop, turned, 31) == min(31, CROP_THRESHOLD)
        assert pair_threshold(Variant("crop", 0, None, "trimmed:centre-88"), turned, 31) == min(
            31, CROP_THRESHOLD
        )
    assert not compatible(crop, Variant("crop", 10, None, "rotate+3:centre-80"))


# ------------------------------------------------------------------ edits that now match


def centre(rgb: RGBArray, per_side: float) -> RGBArray:
    h, w = rgb.shape[:2]
    dy, dx = round(h * per_side), round(w * per_side)
    return rgb[dy : h - dy, dx : w - dx]


def test_a_5_percent_crop_matches_through_a_bank_crop(
    bridge: RGBArray, bridge_bank: list[Hashed]
) -> None:
    cropped = jpeg(centre(bridge, 0.05))
    assert hamming(pdq_hash(cropped).value, bridge_bank[0].values[0]) > PDQ_THRESHOLD
    found = matches(query_hashes(cropped), bridge_bank)
    assert any(q.kind == "stored" and b.kind == "crop" for q, b, _, _ in found), found


def test_a_10_percent_caption_band_matches_through_the_band(
    bridge: RGBArray, bridge_bank: list[Hashed]
) -> None:
    captioned = bridge.copy()
    h, w = bridge.shape[:2]
    k = round(0.1 * h)
    captioned[h - k :] = 255
    marks = np.random.default_rng(1).random((k // 2, int(w * 0.9))) < 0.5
    captioned[
        h - k + k // 4 : h - k + k // 4 + k // 2, int(w * 0.05) : int(w * 0.05) + marks.shape[1]
    ][marks] = 0
    captioned = jpeg(captioned)
    found = matches(query_hashes(captioned), bridge_bank)
    assert any(q.detail == "top-80" and b.detail == "top-80" for q, b, _, _ in found), found


def test_a_letterbox_matches_through_the_trimmed_picture(
    bridge: RGBArray, bridge_bank: list[Hashed]
) -> None:
    h, w = bridge.shape[:2]
    boxed = np.zeros((h + 2 * 150, w, 3), np.uint8)
    boxed[150 : 150 + h] = bridge
    boxed = jpeg(boxed)
    assert hamming(pdq_hash(boxed).value, bridge_bank[0].values[0]) > PDQ_THRESHOLD
    found = matches(query_hashes(boxed), bridge_bank)
    assert any(q.kind == "trimmed" and b.kind == "stored" for q, b, _, _ in found), found


def test_the_shared_letterboxed_bridge_matches(bridge_bank: list[Hashed]) -> None:
    found = matches(query_hashes(load("hasher-edge-cases/letterboxed_sample-b.jpg")), bridge_bank)
    assert any(q.kind == "trimmed" for q, _, _, _ in found), found


# ------------------------------------------------------------------ no false match


def shared_pictures() -> dict[str, list[str]]:
    """Picture -> paths of it (the original first) from EXPECTED.tsv's same_picture_as."""
    with (IMAGES / "EXPECTED.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row["same_picture_as"] == "-":
            groups.setdefault(row["path"], []).insert(0, row["path"])
    for row in rows:
        if row["same_picture_as"] != "-":
            groups[row["same_picture_as"]].append(row["path"])
    return groups


def test_unrelated_shared_pictures_never_match_under_any_pair() -> None:
    groups = shared_pictures()
    assert len(groups) >= 15
    originals = {p: load(p) for p in groups}
    banks = {p: bank_hashes(rgb) for p, rgb in originals.items()}
    # Queries: every original, plus a few edits of the bridge (letterbox, dihedral, modes).
    queries = {p: query_hashes(rgb) for p, rgb in originals.items()}
    for extra in (
        "hasher-edge-cases/letterboxed_sample-b.jpg",
        "reg-test-input/dih/bridge-5-flipx.jpg",
    ):
        assert extra in groups[BRIDGE]
        queries[extra] = query_hashes(load(extra))
    picture_of = {path: pic for pic, paths in groups.items() for path in paths}
    compared = 0
    for qpath, qh in queries.items():
        for bpath, bh in banks.items():
            if picture_of[qpath] == bpath:
                continue
            compared += 1
            assert matches(qh, bh) == [], (qpath, bpath)
    assert compared >= len(banks) * (len(banks) - 1)


def test_a_black_caption_that_border_removal_nibbles_still_matches(
    bridge: RGBArray, bridge_bank: list[Hashed]
) -> None:
    # A black band over the bottom 20% whose last rows are blank: border removal takes those
    # rows for a bar, so the bands of the trimmed picture shift; those of the picture as
    # given still line up with the bank's.
    captioned = bridge.copy()
    h, w = bridge.shape[:2]
    k = round(0.2 * h)
    captioned[h - k :] = 0
    marks = np.random.default_rng(2).random((k // 3, int(w * 0.9))) < 0.5
    top = h - k + k // 6
    captioned[top : top + marks.shape[0], int(w * 0.05) : int(w * 0.05) + marks.shape[1]][marks] = (
        255
    )
    captioned = jpeg(captioned)
    variants = {v.detail for v, _ in query_variants(captioned)}
    assert "trimmed:top-80" in variants  # the blank rows were taken for a bar
    found = matches(query_hashes(captioned), bridge_bank)
    assert any(q.detail == "top-80" and b.detail == "top-80" for q, b, _, _ in found), found


@pytest.mark.parametrize("degrees", [3.0, -3.0, 2.5])
def test_a_small_rotation_matches_through_a_rotated_bank_crop(
    bridge: RGBArray, bridge_bank: list[Hashed], degrees: float
) -> None:
    turned = jpeg(np.asarray(Image.fromarray(bridge).rotate(degrees, Image.Resampling.BICUBIC)))
    assert hamming(pdq_hash(turned).value, bridge_bank[0].values[0]) > PDQ_THRESHOLD
    found = matches(query_hashes(turned), bridge_bank)
    assert any(
        q.kind == "crop" and b.detail is not None and "rotate" in b.detail for q, b, _, _ in found
    ), found
