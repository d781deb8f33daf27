"""Finding and removing uniform borders: letterbox and pillarbox bars, screenshot padding.

A re-uploaded picture often gains bars or padding of one flat colour (black letterbox bars on a
video frame, white padding around a screenshot, a grey canvas). PDQ sees the whole picture, so
a border moves a hash by 75-150 bits; hashing the picture again with the border removed (the
``trimmed`` variant, DESIGN.md) brings it back within the threshold.

Method (Bastion's own; no reference implementation exists). For each side, the lines (rows
for top and bottom, columns for left and right) are read from the edge inwards:

1. The *border colour* is the per-channel median of the outermost line.
2. A line is *off-colour* at a pixel when any channel differs from the border colour by more
   than ``tolerance`` levels (0-255). JPEG and video compression leave bars near-uniform, not
   exact, so the tolerance absorbs them; a line belongs to the border while at most
   :data:`NOISE_FRACTION` of its pixels are off-colour (stray bright pixels, stars, ringing).
   The border as a whole must also be flat: its pixels' mean absolute difference from the
   border colour at most :data:`FLATNESS` levels (a wall or sky within the tolerance is not).
3. The border ends at the first line that is not border. A real bar ends at an *edge*: within a
   few lines (``max(4, 2%)`` of the side) a line must be mostly off-colour
   (:data:`EDGE_FRACTION`). A dark sky that brightens slowly, a vignette or a white wall that
   shades into detail has no such edge, so it is left alone. The cut is made at that edge
   line, so the few lines of compression ringing before it (JPEG blocks, chroma subsampling)
   go with the border.
4. A border thinner than ``min_border_frac`` of the side is not worth removing (PDQ absorbs
   it); a side whose uniform run reaches ``max_border_frac`` of the side is content (a white
   sky, a studio backdrop), not a border, and is not trimmed. A picture that is one colour
   throughout therefore has no border.

Top and bottom are found first across the full width; then left and right within the rows
kept, and top and bottom once more within the columns kept (a window-boxed picture with bars
of two colours). Each side is measured on at most :data:`MAX_SAMPLES` pixels per line
(evenly spaced), so the cost is bounded by the side lengths, not the pixel count.

Shapes: ``rgb`` is an H x W x 3 ``uint8`` array (rows, columns, RGB). A content box is
``(top, bottom, left, right)`` in pixels with ``rgb[top:bottom, left:right]`` the content
(half-open: ``bottom`` and ``right`` are exclusive).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.signals.pdq import RGBArray

#: Largest per-channel difference (8-bit levels) from the border colour still counted as the
#: border colour. JPEG q50 and H.264 leave flat bars within a few levels; 24 also absorbs
#: ringing next to the content edge while staying well below the contrast of content.
DEFAULT_TOLERANCE = 24

#: A border must cover at least this share of the side's length (and 2 px) to be removed.
DEFAULT_MIN_BORDER_FRAC = 0.01

#: A uniform run reaching this share of the side's length is content, not a border. A 9:16
#: video pillarboxed in a 16:9 frame has bars of 34% per side; 0.4 keeps that.
DEFAULT_MAX_BORDER_FRAC = 0.4

#: Share of a line's pixels that may be off-colour while the line still counts as border.
NOISE_FRACTION = 0.02

#: Share of a line's pixels that must be off-colour for the line to count as content at the
#: edge of a border.
EDGE_FRACTION = 0.3

#: Largest mean absolute difference (8-bit levels, all channels) between a border's pixels
#: and its colour. Bars and padding are flat (JPEG q30 and H.264 keep them within about one
#: level; grain of sigma 4 is about 3.2); a plain wall or sky in a photo varies more (sensor
#: noise, shading: 5-10 levels).
FLATNESS = 4.0

#: Pixels read per line (evenly spaced); lines are never skipped.
MAX_SAMPLES = 512

#: Pictures with a side shorter than this have no border removed.
MIN_SIDE = 16

ContentBox = tuple[int, int, int, int]


def _check(rgb: RGBArray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise InvalidInput("border removal needs an H x W x 3 uint8 array")
    if rgb.shape[2] != 3:
        raise InvalidInput(f"border removal needs 3 channels, got {rgb.shape[2]}")


class _Lines:
    """Lazy access to the lines of one side, outermost first, each read at no more than
    :data:`MAX_SAMPLES` evenly spaced pixels (a strided view, no copy): ``lines(a, b)`` is
    (b - a, samples, 3)."""

    def __init__(self, rgb: RGBArray, side: str, span: tuple[int, int]) -> None:
        self.rgb = rgb
        self.side = side
        lo, hi = span  # the range of the other axis that the lines run across
        step = -(-(hi - lo) // MAX_SAMPLES)  # ceil: at most MAX_SAMPLES positions
        self.across = slice(lo, hi, step)
        self.length = rgb.shape[0] if side in ("top", "bottom") else rgb.shape[1]

    def __call__(self, a: int, b: int) -> npt.NDArray[np.uint8]:
        n = self.length
        if self.side == "top":
            return self.rgb[a:b, self.across]
        if self.side == "bottom":
            return self.rgb[n - b : n - a, self.across][::-1]
        if self.side == "left":
            return self.rgb[self.across, a:b].transpose(1, 0, 2)
        return self.rgb[self.across, n - b : n - a][:, ::-1].transpose(1, 0, 2)


def _off_fraction(
    lines: npt.NDArray[np.uint8], low: npt.NDArray[np.uint8], high: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float64]:
    """Per line, the share of pixels with a channel outside ``[low, high]``."""
    off = (lines[..., 0] < low[0]) | (lines[..., 0] > high[0])
    for c in (1, 2):
        off |= lines[..., c] < low[c]
        off |= lines[..., c] > high[c]
    return np.count_nonzero(off, axis=1) / lines.shape[1]  # type: ignore[no-any-return]


def _side(lines: _Lines, *, tolerance: int, min_lines: int, max_lines: int) -> int:
    """Border thickness (lines) of one side; 0 when there is no border to remove (none, too
    thin, no edge, or uniform beyond ``max_lines``)."""
    n = lines.length
    edge_window = max(4, round(0.02 * n))
    outer = lines(0, 1)
    colour = np.median(outer[0].astype(np.int16), axis=0)
    low = np.clip(colour - tolerance, 0, 255).astype(np.uint8)
    high = np.clip(colour + tolerance, 0, 255).astype(np.uint8)
    if _off_fraction(outer, low, high)[0] > NOISE_FRACTION:
        return 0
    # Read inwards in growing chunks until a line that is not border: most pictures stop at
    # the first line, thin borders after one chunk.
    depth = min(n, max_lines + 1)
    k = -1
    start, chunk = 1, 16
    while start < depth:
        stop = min(depth, start + chunk)
        off = _off_fraction(lines(start, stop), low, high)
        hits = np.flatnonzero(off > NOISE_FRACTION)
        if hits.size:
            k = start + int(hits[0])
            break
        start, chunk = stop, chunk * 2
    if k < min_lines or k > max_lines:
        return 0  # too thin, or uniform as deep as allowed (content, or a solid picture)
    # Bars are flat; a wall, a sky or a backdrop varies within the tolerance.
    step = max(1, k // 64)
    sample = lines(0, k)[::step].astype(np.int16)
    if float(np.abs(sample - colour.astype(np.int16)).mean()) > FLATNESS:
        return 0
    edge = np.flatnonzero(
        _off_fraction(lines(k, min(n, k + edge_window)), low, high) >= EDGE_FRACTION
    )
    if edge.size == 0:
        return 0  # the colour fades into the picture: no bar edge
    # Lines between the last clean border line and the edge are mostly border colour with
    # compression ringing (JPEG blocks, chroma subsampling: up to 16 px): they go too.
    return k + int(edge[0])


def find_content_box(
    rgb: RGBArray,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    min_border_frac: float = DEFAULT_MIN_BORDER_FRAC,
    max_border_frac: float = DEFAULT_MAX_BORDER_FRAC,
) -> ContentBox | None:
    """Find the picture inside uniform borders (see the module docstring for the method).

    ``rgb``: H x W x 3 ``uint8``. ``tolerance``: per-channel levels (0-255) a border pixel may
    differ from the border colour. ``min_border_frac`` / ``max_border_frac``: the thinnest
    border removed and the thickest uniform run still taken for a border, as shares of the
    side's length (0 < min < max < 0.5).

    Returns ``(top, bottom, left, right)`` such that ``rgb[top:bottom, left:right]`` is the
    content, or ``None`` when there is no border to remove (including solid pictures and
    pictures with a side under :data:`MIN_SIDE` px). Raises :class:`InvalidInput` for a wrong
    array shape or dtype, or parameters out of range.
    """
    _check(rgb)
    if not 0 <= tolerance <= 255:
        raise InvalidInput("tolerance must be 0-255 levels")
    if not 0.0 <= min_border_frac < max_border_frac < 0.5:
        raise InvalidInput("need 0 <= min_border_frac < max_border_frac < 0.5")
    h, w = rgb.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        return None

    common = {"tolerance": tolerance}

    def limits(n: int) -> tuple[int, int]:
        return max(2, int(np.ceil(min_border_frac * n))), int(max_border_frac * n)

    top, bottom, left, right = 0, h, 0, w
    for _ in range(2):
        before = (top, bottom, left, right)
        # Rows, across the columns currently kept; then columns, across the rows kept.
        lo, hi = limits(h)
        if top == 0:
            top = _side(_Lines(rgb, "top", (left, right)), **common, min_lines=lo, max_lines=hi)
        if bottom == h:
            bottom = h - _side(
                _Lines(rgb, "bottom", (left, right)), **common, min_lines=lo, max_lines=hi
            )
        lo, hi = limits(w)
        if left == 0:
            left = _side(_Lines(rgb, "left", (top, bottom)), **common, min_lines=lo, max_lines=hi)
        if right == w:
            right = w - _side(
                _Lines(rgb, "right", (top, bottom)), **common, min_lines=lo, max_lines=hi
            )
        if (top, bottom, left, right) == before:
            break
    if (top, bottom, left, right) == (0, h, 0, w):
        return None
    return top, bottom, left, right


def trim_borders(
    rgb: RGBArray,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    min_border_frac: float = DEFAULT_MIN_BORDER_FRAC,
    max_border_frac: float = DEFAULT_MAX_BORDER_FRAC,
) -> RGBArray | None:
    """``rgb`` (H x W x 3 ``uint8``) with its uniform borders removed, as a view into ``rgb``;
    ``None`` when :func:`find_content_box` finds no border. Same parameters and errors."""
    box = find_content_box(
        rgb,
        tolerance=tolerance,
        min_border_frac=min_border_frac,
        max_border_frac=max_border_frac,
    )
    if box is None:
        return None
    top, bottom, left, right = box
    return rgb[top:bottom, left:right]
