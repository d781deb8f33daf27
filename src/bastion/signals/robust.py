"""Robustness variants: further pictures of one item, hashed so that everyday re-upload edits
that PDQ alone misses still match.

PDQ (Meta, ThreatExchange ``pdq/README.md``) sees the whole picture. Measured on benign images
(``benchmarks/eval_robustness.py``), a 5% crop per side moves a hash 60-130 bits, a letterbox
or screenshot border 75-150, a caption band over the bottom 10% about 27 (20%: 43), while the
match threshold is 31. Bastion hashes a few extra pictures (DESIGN.md variant kinds) and
compares only pairs of variants that show the same part of the original:

``trimmed`` (both sides)
    The picture with its uniform borders removed (:mod:`bastion.signals.borders`): letterbox
    and pillarbox bars, screenshot padding. A whole-picture kind.
``crop`` (bank side only)
    Centre crops of the bank picture, ``detail`` ``"centre-NN"``: the central NN% of the
    height and of the width (``(100 - NN) / 2`` % cut from each side). A cropped upload *is*
    such a crop of the original, so its whole-picture hash matches one of them. PDQ moves
    about 30 bits per 1.5% per side of scale mismatch, so the crops form a grid of
    :data:`CROP_SCALES`, 1% per side apart, covering crops of up to 10% per side. Crops are
    taken of the trimmed picture when the bank picture has borders (``"trimmed:centre-NN"``).
``crop`` of a rotated picture (bank side) and ``crop`` ``"centre-88"`` (query side)
    Small rotations (a "straightened" photo) move PDQ 35-60 bits for 3 degrees. The bank
    side also hashes its content rotated by each angle of :data:`ROTATIONS` (degrees,
    counter-clockwise, bicubic, black corners) and cropped to the central
    :data:`ROTATION_CROP` % (``detail`` ``"rotate+3:centre-88"``); the query side hashes its
    own central :data:`ROTATION_CROP` % (``"centre-88"``). The crop leaves out the corners
    that a rotation fills or cuts, so an upload rotated by about 2-4 degrees either way
    matches. Rotation is done on a copy no larger than :data:`ROTATION_MAX_SIDE` px (PDQ
    itself works on 64x64).
``band`` (both sides)
    The picture without a strip along one edge, ``detail`` ``"top-80"`` (the top 80% of the
    rows: a caption band over the bottom is cut off) or ``"bottom-80"`` (the bottom 80%: a
    band over the top). A caption covering up to 20% of the height lies wholly in the part
    cut off, so both sides show the same pixels. When borders were found, the bands are
    also taken of the trimmed picture (``"trimmed:top-80"``, ``"trimmed:bottom-80"``): a
    letterboxed and captioned upload still lines up, and a caption band that border removal
    partly took for a bar (its blank rows) still has its bands of the picture as given.
    Bands are compared by region (``top-80`` with ``top-80`` and ``trimmed:top-80``).

Which pairs are compared, and at which threshold (:func:`pair_threshold`):

==================================  ===================================  ================
query variant                       bank variant                         threshold
==================================  ===================================  ================
stored, displayed, frame, trimmed   stored, displayed, frame, trimmed    the bank's
stored, displayed, frame, trimmed   crop (any detail)                    CROP_THRESHOLD
crop ``centre-88``                  crop ``rotate±N:centre-88``          CROP_THRESHOLD
band                                band of the same region              BAND_THRESHOLD
anything else                       anything else                        never compared
==================================  ===================================  ================

(The crop and band thresholds are capped by the bank's own threshold.) Every threshold is
inclusive (distance <= threshold is a match) in Hamming bits of 256-bit PDQ hashes. The
smallest distance between unrelated pictures for each pair kind, measured by
``benchmarks/eval_robustness.py``, is written beside each threshold constant.

Cost, at about 5 ms per PDQ on a 512 px picture (:func:`bastion.signals.pdq.pdq_hash`):
the query side adds 3 PDQs (two bands, one centre crop) plus 3 when borders are found (the
trimmed picture, whose 8 dihedral hashes come from that one DCT, and its two bands); the bank
side adds ``len(CROP_SCALES) + len(ROTATIONS)`` + 2 = 14 (and two small rotations), plus 3
when borders are found. Bank variants need the bank's
*pictures*: entries imported as bare hashes (hash lists from hotlines) get only the
query-side help (``trimmed``).

How the caller (the scan pipeline) uses this module::

    # Upload: the stored (or displayed) picture as usual, 8 dihedral hashes; then
    for variant, pixels in query_variants(rgb):
        if variant.kind == "trimmed":
            hashes, quality = pdq_dihedral(pixels)     # all 8 transforms are matched
        else:
            h = pdq_hash(pixels)                       # band, crop: original orientation only
    # Bank add (from a picture): the stored hash as usual; then for every
    # (variant, pixels) in bank_variants(rgb): pdq_hash(pixels).value, kept with the variant.
    # Matching: for each query hash (each dihedral transform of stored/trimmed) and each
    # bank hash within reach,
    t = pair_threshold(query_signal.variant, bank_signal.variant, bank_threshold)
    if t is not None and distance <= t: match   # report query_variant and bank variant
    # Quality < 50 on either side never matches (MIN_MATCH_QUALITY), as for stored hashes.

For video frames (kind ``frame``), :func:`bastion.signals.borders.trim_borders` alone is
worth its cost (letterboxed frames); bands per frame are not used.

Measured on the benign set (``benchmarks/eval_robustness.py``; recall PDQ alone -> Bastion,
zero false matches for both among about 270,000 unrelated pairs; all 774 edited queries 32%
-> 89%): crops of 2/5/10% per side 14/0/0% -> 97/92/92% (off the grid, 3.5 and 7.5%: 78%);
letterbox, pillarbox and screenshot padding 0% -> 89-92%; caption bands over the bottom 10
or 20% or the top 10% 0-16% -> 100%; rotation by 3 degrees 3% -> 92%, by 2 or 4 degrees
14/3% -> 70%. Smallest distance between unrelated pictures over every compared pair kind:
74 bits (threshold 31). Not recovered: a border of the same colour as the picture's own
background (a logo on white padded with white, a black-framed scan letterboxed in black)
merges with it; fine textures and noise-like pictures, which PDQ already loses on resizing
or on its own rotations by 90 degrees.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from bastion.signals.base import Variant
from bastion.signals.borders import trim_borders
from bastion.signals.pdq import RGBArray

#: Kinds that show the whole picture (after decoding; ``trimmed`` after border removal).
WHOLE_KINDS = frozenset({"stored", "displayed", "frame", "trimmed"})

#: Scales of the bank side's centre crops: the share of the height and of the width kept.
#: Steps of 2% in scale (1% per side) keep any crop of up to 10% per side within 0.5% per
#: side of a grid point. Measured (eval_robustness): a crop on a grid point matches ~92% of
#: the benign set, 0.5% per side off ~78%; a 3%-step grid drops the latter to ~73%.
CROP_SCALES: tuple[int, ...] = (98, 96, 94, 92, 90, 88, 86, 84, 82, 80)

#: Rotations (degrees, counter-clockwise) of the bank side's rotated crops. Measured
#: (eval_robustness): uploads rotated by 3 degrees match 92% of the benign set, by 2 degrees
#: or 4 degrees the other way 70% (PDQ alone: 3-14%).
ROTATIONS: tuple[int, ...] = (3, -3)

#: The central share (%) of height and width hashed for rotation matching, on both sides: a
#: 3-degree rotation of a 4:3 picture moves its corners about 5% of a side.
ROTATION_CROP = 88

#: Pictures are rotated after shrinking to at most this many pixels per side (box filter).
ROTATION_MAX_SIDE = 1024

#: Band variants (both sides): detail -> (first row, last row) as shares of the height.
BANDS: dict[str, tuple[float, float]] = {
    "top-80": (0.0, 0.8),
    "bottom-80": (0.2, 1.0),
}

#: Threshold for a whole-picture query against a bank centre crop (Hamming bits, inclusive).
#: Meta's 31. Smallest distance measured between unrelated pictures (eval_robustness, 43
#: edited pictures x 18 edits + 200 face patches, every variant pair): stored~crop 80,
#: trimmed~crop 78 (92 within ../shared/data/images alone). Raising it to 36 or 40 found no
#: further true match on that set, so the margin is kept.
CROP_THRESHOLD = 31

#: Threshold for a band against a band of the same region (Hamming bits, inclusive). Meta's
#: 31; smallest unrelated distance measured for band~band pairs: 78 (90 within
#: ../shared/data/images alone).
BAND_THRESHOLD = 31

#: Regions with a side shorter than this are not hashed (PDQ needs detail to work with).
MIN_REGION_SIDE = 32


def _content(rgb: RGBArray) -> tuple[RGBArray, RGBArray | None]:
    """The picture regions are taken from, and the trimmed picture (or None)."""
    trimmed = trim_borders(rgb)
    return (rgb if trimmed is None else trimmed), trimmed


def centre_crop(rgb: RGBArray, scale: int) -> RGBArray:
    """The central ``scale`` % of the height and of the width of ``rgb`` (H x W x 3), as a
    view; ``round(H * (100 - scale) / 200)`` rows cut from the top and from the bottom, the
    same for columns."""
    h, w = rgb.shape[:2]
    dy = round(h * (100 - scale) / 200)
    dx = round(w * (100 - scale) / 200)
    return rgb[dy : h - dy, dx : w - dx]


def band_region(rgb: RGBArray, detail: str) -> RGBArray:
    """The rows of ``rgb`` that band ``detail`` (a key of :data:`BANDS`) keeps, as a view.
    Raises KeyError for an unknown detail."""
    lo, hi = BANDS[detail]
    h = rgb.shape[0]
    return rgb[round(h * lo) : round(h * hi)]


def rotated(rgb: RGBArray, degrees: float) -> RGBArray:
    """``rgb`` (H x W x 3 ``uint8``) rotated ``degrees`` counter-clockwise about its centre on
    a canvas of the same size (corners black, bicubic), after shrinking it (box filter) so
    that no side exceeds :data:`ROTATION_MAX_SIDE` px. Returns a new array."""
    im = Image.fromarray(np.ascontiguousarray(rgb))
    h, w = rgb.shape[:2]
    if max(h, w) > ROTATION_MAX_SIDE:
        f = ROTATION_MAX_SIDE / max(h, w)
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX)
    return np.asarray(im.rotate(degrees, Image.Resampling.BICUBIC))


def _big_enough(region: RGBArray) -> bool:
    return bool(min(region.shape[:2]) >= MIN_REGION_SIDE)


def _bands(picture: RGBArray, *, trimmed: bool) -> list[tuple[Variant, RGBArray]]:
    out: list[tuple[Variant, RGBArray]] = []
    for i, region_name in enumerate(BANDS):
        region = band_region(picture, region_name)
        if _big_enough(region):
            index = i + len(BANDS) if trimmed else i
            detail = f"trimmed:{region_name}" if trimmed else region_name
            out.append((Variant("band", index, None, detail), region))
    return out


def region_of(variant: Variant) -> str | None:
    """The region a ``crop`` or ``band`` variant shows, without ``trimmed:`` or
    ``rotate±N:`` prefixes (``"trimmed:top-80"`` -> ``"top-80"``, ``"rotate-3:centre-88"``
    -> ``"centre-88"``); ``None`` for other kinds."""
    if variant.kind not in ("crop", "band") or variant.detail is None:
        return None
    return variant.detail.rsplit(":", 1)[-1]


def _is_rotated(variant: Variant) -> bool:
    """True for a bank crop of a rotated picture (``detail`` with a ``rotate±N:`` part)."""
    parts = (variant.detail or "").split(":")[:-1]
    return variant.kind == "crop" and any(p.startswith("rotate") for p in parts)


def query_variants(rgb: RGBArray) -> list[tuple[Variant, RGBArray]]:
    """Extra pictures to hash for an upload (H x W x 3 ``uint8``), beyond the stored one.

    Returns ``[(Variant, pixels), ...]``: ``trimmed`` (when uniform borders were found; hash
    with ``pdq_dihedral``), the bands of :data:`BANDS` of the picture as given (``index`` 0,
    1; hash with ``pdq_hash``) and, with borders, the same bands of the trimmed picture
    (``index`` 2, 3, ``detail`` ``"trimmed:..."``), then the central :data:`ROTATION_CROP` %
    of the content (``crop``, ``detail`` ``"centre-88"`` or ``"trimmed:centre-88"``; hash with
    ``pdq_hash``). Pixels are views into ``rgb``. At most 6 pictures; regions under
    :data:`MIN_REGION_SIDE` px are left out. Raises InvalidInput for a wrong array.
    """
    content, trimmed = _content(rgb)
    out: list[tuple[Variant, RGBArray]] = []
    if trimmed is not None:
        out.append((Variant("trimmed"), trimmed))
    out.extend(_bands(rgb, trimmed=False))
    if trimmed is not None:
        out.extend(_bands(trimmed, trimmed=True))
    region = centre_crop(content, ROTATION_CROP)
    if _big_enough(region):
        prefix = "" if trimmed is None else "trimmed:"
        out.append((Variant("crop", 0, None, f"{prefix}centre-{ROTATION_CROP}"), region))
    return out


def bank_variants(rgb: RGBArray) -> list[tuple[Variant, RGBArray]]:
    """Extra pictures to hash for a picture added to a bank (H x W x 3 ``uint8``).

    Returns ``[(Variant, pixels), ...]``: ``trimmed`` (when borders were found), the centre
    crops of :data:`CROP_SCALES` of the content (the trimmed picture if any, else the picture;
    ``detail`` ``"centre-NN"`` or ``"trimmed:centre-NN"``), the bands of :data:`BANDS` of the
    picture as given and, with borders, of the trimmed picture (as :func:`query_variants`).
    Hash ``trimmed`` with ``pdq_dihedral`` or ``pdq_hash`` (only its original orientation is
    compared), the rest with ``pdq_hash``. Then, for each angle of :data:`ROTATIONS`, the
    central :data:`ROTATION_CROP` % of the content rotated by it (``crop``, ``detail``
    ``"rotate+3:centre-88"``, with ``trimmed:`` in front when trimmed; new arrays). At most
    ``len(CROP_SCALES) + len(ROTATIONS) + 5`` pictures; regions under
    :data:`MIN_REGION_SIDE` px are left out. Raises InvalidInput for a wrong array.
    """
    content, trimmed = _content(rgb)
    prefix = "" if trimmed is None else "trimmed:"
    out: list[tuple[Variant, RGBArray]] = []
    if trimmed is not None:
        out.append((Variant("trimmed"), trimmed))
    for i, scale in enumerate(CROP_SCALES):
        region = centre_crop(content, scale)
        if _big_enough(region):
            out.append((Variant("crop", i, None, f"{prefix}centre-{scale}"), region))
    out.extend(_bands(rgb, trimmed=False))
    if trimmed is not None:
        out.extend(_bands(trimmed, trimmed=True))
    for i, degrees in enumerate(ROTATIONS, start=len(CROP_SCALES)):
        region = centre_crop(rotated(content, degrees), ROTATION_CROP)
        if _big_enough(region):
            detail = f"{prefix}rotate{degrees:+d}:centre-{ROTATION_CROP}"
            out.append((Variant("crop", i, None, detail), region))
    return out


def compatible(query_variant: Variant, bank_variant: Variant) -> bool:
    """True if a query hash of ``query_variant`` may be compared with a bank hash of
    ``bank_variant`` (the table in the module docstring)."""
    q, b = query_variant.kind, bank_variant.kind
    if q in WHOLE_KINDS:
        return b in WHOLE_KINDS or b == "crop"
    if q == "crop":
        return _is_rotated(bank_variant) and region_of(query_variant) == region_of(bank_variant)
    if q == "band":
        return b == "band" and region_of(query_variant) == region_of(bank_variant)
    return False


def pair_threshold(
    query_variant: Variant, bank_variant: Variant, bank_threshold: int
) -> int | None:
    """The largest Hamming distance (bits, inclusive) at which a query hash of
    ``query_variant`` matches a bank hash of ``bank_variant``, given the bank's own PDQ
    threshold; ``None`` when the pair is never compared. Crop and band pairs use
    :data:`CROP_THRESHOLD` / :data:`BAND_THRESHOLD`, capped at ``bank_threshold``."""
    if not compatible(query_variant, bank_variant):
        return None
    if bank_variant.kind == "crop":
        return min(bank_threshold, CROP_THRESHOLD)
    if bank_variant.kind == "band":
        return min(bank_threshold, BAND_THRESHOLD)
    return bank_threshold
