"""Dihedral hashes derived from the bits of a bare PDQ hash (for hash-only submissions)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from bastion.signals.pdq import DIHEDRAL_TRANSFORMS, dihedral_from_hash, hamming, pdq_dihedral

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"


def test_bit_derived_dihedral_stays_close_to_hashing_the_transformed_picture() -> None:
    drifts: list[int] = []
    with (DATA / "EXPECTED.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rgb = np.asarray(Image.open(DATA / row["path"]).convert("RGB"))
            true, quality = pdq_dihedral(rgb)
            if quality < 50:
                continue
            approx = dihedral_from_hash(true["original"])
            assert approx[0] == true["original"]
            pairs = zip(DIHEDRAL_TRANSFORMS, approx, strict=True)
            drifts += [hamming(true[t], a) for t, a in pairs][1:]
    assert np.median(drifts) <= 6
    assert max(drifts) <= 31


def test_rotated_file_matches_bare_hash_of_original_through_bits() -> None:
    orig = np.asarray(Image.open(DATA / "bridge-mods" / "aaa-orig.jpg").convert("RGB"))
    rotated = np.asarray(
        Image.open(DATA / "reg-test-input" / "dih" / "bridge-2-rotate-90.jpg").convert("RGB")
    )
    (h_orig, _), (h_rot, _) = pdq_dihedral(orig), pdq_dihedral(rotated)
    variants = dihedral_from_hash(h_rot["original"])
    assert hamming(variants[0], h_orig["original"]) > 31
    assert min(hamming(v, h_orig["original"]) for v in variants) <= 31
