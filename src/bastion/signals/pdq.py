"""PDQ: Meta's 256-bit perceptual photo hash, bit-identical to the reference tool.

Source: Meta, "The TMK+PDQF and PDQ hashing algorithms" (ThreatExchange ``pdq/README.md``,
``hashing.pdf``); reference implementation ``pdq/cpp`` (``pdq-photo-hasher``); the C++ core
is called through the ``pdqhash`` binding.

Shape: 256 bits, 64 lowercase hex characters, most significant bit first (hex digit 0 holds
bits 255..252 of the reference's bit vector, as ``pdq-photo-hasher`` prints them). Distance:
Hamming, in bits, 0-256. Quality: 0-100 (gradient energy of the 64x64 luma grid).

What the reference tool does before hashing, and what :func:`prepare` reproduces: any picture
with a side over 512 px is *squashed* to exactly 512x512 by nearest-neighbour sampling (row
``floor(i*H/512)``, column ``floor(j*W/512)``), aspect ratio ignored. Without this squash the
``pdqhash`` binding differs from the reference by up to 26 bits on Meta's own test images.

Thresholds (Meta's recommendation, ``pdq/README.md``): distance <= 31 is a match; hashes of
quality < 50 are not matched. Unrelated natural photos are typically 110-140 bits apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pdqhash

from bastion.errors import InvalidInput
from bastion.signals.base import SignalType, parse_hex, register

#: The reference tool's squash size (pixels per side).
SQUASH_SIZE = 512

#: Dihedral transforms in the reference tool's order (``pdq-photo-hasher --dihedral``):
#: the transform applied to the picture that gives each hash.
DIHEDRAL_TRANSFORMS: tuple[str, ...] = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)

#: Meta's recommended match threshold (Hamming bits, inclusive).
PDQ_THRESHOLD = 31

#: A genuine PDQ hash sets about half its bits (median threshold over 256 DCT coefficients;
#: Meta's reference hashes set exactly 128). Entries outside this band are flagged on import.
PLAUSIBLE_BITS = (96, 160)

RGBArray = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class PdqHash:
    """One PDQ hash: ``value`` (64 lowercase hex) and ``quality`` (0-100)."""

    value: str
    quality: int


def _bits_to_hex(bits: npt.ArrayLike) -> str:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def prepare(rgb: RGBArray) -> RGBArray:
    """Return the pixels the reference tool hashes: ``rgb`` (H x W x 3, uint8) squashed to
    512x512 by nearest-neighbour sampling when a side exceeds 512 px, else unchanged;
    always C-contiguous. Raises :class:`InvalidInput` for a wrong shape or dtype."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInput(f"PDQ needs an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    if h > SQUASH_SIZE or w > SQUASH_SIZE:
        rows = (np.arange(SQUASH_SIZE, dtype=np.int64) * h) // SQUASH_SIZE
        cols = (np.arange(SQUASH_SIZE, dtype=np.int64) * w) // SQUASH_SIZE
        rgb = rgb[rows][:, cols]
    return np.ascontiguousarray(rgb)


def pdq_hash(rgb: RGBArray, *, squash: bool = True) -> PdqHash:
    """PDQ of an RGB picture (H x W x 3 uint8), as the reference tool computes it.

    ``squash=False`` hashes at full size (what ``pdqhash.compute`` alone does; not
    reference-exact). Pictures with a side under 5 px give quality 0. Raises InvalidInput
    for a wrong array shape.
    """
    arr = prepare(rgb) if squash else np.ascontiguousarray(rgb)
    if min(arr.shape[:2]) < 5:
        return PdqHash("0" * 64, 0)
    bits, quality = pdqhash.compute(arr)
    return PdqHash(_bits_to_hex(bits), int(quality))


def pdq_dihedral(rgb: RGBArray, *, squash: bool = True) -> tuple[dict[str, str], int]:
    """The 8 dihedral PDQ hashes of ``rgb`` from one DCT (Meta's ``dihedral`` transforms).

    Returns ``({transform: 64-hex}, quality)`` with keys in :data:`DIHEDRAL_TRANSFORMS`
    order; ``"original"`` equals :func:`pdq_hash`. Raises InvalidInput for a wrong shape.
    """
    arr = prepare(rgb) if squash else np.ascontiguousarray(rgb)
    if min(arr.shape[:2]) < 5:
        return {t: "0" * 64 for t in DIHEDRAL_TRANSFORMS}, 0
    hashes, quality = pdqhash.compute_dihedral(arr)
    return (
        {t: _bits_to_hex(h) for t, h in zip(DIHEDRAL_TRANSFORMS, hashes, strict=True)},
        int(quality),
    )


def hamming(a: str, b: str) -> int:
    """Hamming distance in bits between two equal-length hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


@register
class PdqSignal(SignalType):
    """PDQ photo hash (see the module docstring for shape, distance and thresholds)."""

    name = "pdq"
    default_threshold = PDQ_THRESHOLD
    examples = ("d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22",)

    @classmethod
    def parse(cls, value: str) -> str:
        return parse_hex(value, bits=256, what="PDQ hash")

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return hamming(a, b)

    @classmethod
    def check_entry(cls, value: str) -> list[str]:
        """Validate a canonical PDQ value as a *bank entry*.

        Raises :class:`InvalidInput` for all-zero and all-one hashes (what featureless or
        failed hashers emit; they would match junk). Returns warnings (not errors) for a
        hash whose set-bit count lies outside :data:`PLAUSIBLE_BITS`.
        """
        ones = int(value, 16).bit_count()
        if ones == 0:
            raise InvalidInput("PDQ hash is all zeros (a featureless or failed hash)")
        if ones == 256:
            raise InvalidInput("PDQ hash is all ones (a featureless or failed hash)")
        lo, hi = PLAUSIBLE_BITS
        if not lo <= ones <= hi:
            return [f"PDQ hash sets {ones} of 256 bits; genuine hashes set about 128"]
        return []


# How each dihedral transform acts on the 16 x 16 DCT coefficients behind the hash bits (bit
# k is coefficient (k // 16, k % 16)): (transpose, negate odd rows, negate odd columns).
# Derived from Meta's ``pdqhash`` dihedral code and checked against ``compute_dihedral``.
_DIHEDRAL_OPS: dict[str, tuple[bool, bool, bool]] = {
    "original": (False, False, False),
    "rot90": (True, True, False),
    "rot180": (False, True, True),
    "rot270": (True, False, True),
    "flipx": (False, True, False),
    "flipy": (False, False, True),
    "flip_plus1": (True, False, False),
    "flip_minus1": (True, True, True),
}


def dihedral_from_hash(value: str) -> tuple[str, ...]:
    """Approximate the 8 dihedral hashes (``DIHEDRAL_TRANSFORMS`` order) of a bare PDQ hash.

    For a platform that sends only hashes: a rotation or mirror permutes the DCT coefficients
    (a transpose) and negates those of odd row or column index; a negated coefficient's bit
    is taken as inverted. Exact when the DCT median is 0; otherwise a few bits differ from
    hashing the transformed picture (coefficients lying between the two medians), measured
    on Meta's test images by ``tests/signals/test_pdq_dihedral_bits.py``. ``[0]`` is
    ``value`` itself. Raises InvalidInput for a malformed hash.
    """
    v = parse_hex(value, bits=256, what="PDQ hash")
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(v), dtype=np.uint8)).reshape(16, 16)
    odd = (np.arange(16) % 2).astype(np.uint8)
    out: list[str] = []
    for t in DIHEDRAL_TRANSFORMS:
        transpose, rows, cols = _DIHEDRAL_OPS[t]
        g = bits.T.copy() if transpose else bits.copy()
        if rows:
            g ^= odd[:, None]
        if cols:
            g ^= odd[None, :]
        out.append(_bits_to_hex(g.reshape(-1)))
    return tuple(out)
