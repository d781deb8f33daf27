"""Safe decoding of untrusted images into the RGB pictures that PDQ hashes.

One call, :func:`decode_image`, turns the bytes of an image file into the pictures PDQ hashes,
each already squashed as the reference tool does (512x512 by nearest-neighbour sampling when a
side exceeds 512 px, :func:`squash_image`; smaller pictures as they are):

- ``stored``: the colour channels exactly as stored, alpha ignored, as an H x W x 3 uint8
  array. This is what Meta's reference ``pdq-photo-hasher`` hashes, so the ``stored`` PDQ
  matches partners' hashes bit for bit (it also exposes a picture hidden under fully
  transparent pixels);
- ``displayed`` (only when it differs from what the reference sees): what a viewer sees.
  For a picture with any pixel not fully opaque, the colours composited over
  :data:`BACKGROUND_RGB` (white, what a web page or an image viewer shows behind a
  transparent picture). For a 1-bit picture larger than the 512 px squash, the dots
  averaged to grey (area-average resize to 512x512): the reference's nearest-neighbour
  squash aliases dithering, which moves a 1-bit copy about 12 bits from its source; the
  averaged picture lands within 2-4 bits;
- ``frames``: for animations (GIF, WebP, APNG) every frame after the first, lazily, up to
  :attr:`Limits.max_animation_frames` frames in all. Each frame is the displayed canvas
  (previous frames and disposal applied by Pillow, remaining transparency composited over
  :data:`BACKGROUND_RGB`), with its presentation time in seconds. A one-frame GIF is a plain
  picture.

How each Pillow mode becomes RGB (FIELD-NOTES lists the mistakes other hashers make):

====================  ===================================================================
mode                  conversion
====================  ===================================================================
RGB                   as stored
1, L, P, RGBA, RGBX,  Pillow's ``convert("RGB")``: palettes expanded to their colours
LA, PA, YCbCr, LAB,   (never hashed as indices), CMYK through Pillow's conversion (Adobe
HSV, CMYK, RGBa       inverted CMYK is un-inverted by the JPEG decoder: never inverted)
I;16, I;16B, I;16L    each sample ``floor(v / 257)`` (full 16-bit range to 8 bits, not clipped)
I (32-bit)            0..255 as is; 0..65535 as ``floor(v / 257)``; wider ranges scaled
                      linearly from their min..max (PDQ is invariant to luma scaling)
F (float)             0..1 scaled by 255; 0..255 as is; wider ranges scaled from min..max;
                      NaN as 0
====================  ===================================================================

Limits (:class:`bastion.config.Limits`), each checked before the work it bounds: bytes per file
(before parsing), pixels per picture (from the header, before any pixel is decoded:
decompression bombs), frames per animation. Pillow's own decompression-bomb ceiling
(``Image.MAX_IMAGE_PIXELS``, twice of which is an error) also applies.

EXIF orientation (tag 0x0112) is read and reported; values outside 1-8 (0, 9 ...) count as 1;
unreadable EXIF adds a note and never stops decoding. The pixels are *not* rotated: the
reference hashes stored pixels, and rotated displays are found by dihedral matching.

Errors: :class:`~bastion.errors.LimitExceeded` for input over a limit,
:class:`~bastion.errors.UnhashableContent` (with ``reason``) for truncated, corrupt or
undecodable bytes. Never a black or partial stand-in picture.

Pillow warnings (corrupt EXIF, decompression bomb) are silenced while decoding, since limits
are enforced here; ``warnings.catch_warnings`` is process-wide, so decode in worker
processes (:mod:`bastion.signals.isolation`) when threads are involved.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from bastion.config import Limits
from bastion.errors import LimitExceeded, UnhashableContent
from bastion.signals.media import MediaKind, sniff
from bastion.signals.pdq import SQUASH_SIZE

RGBArray = npt.NDArray[np.uint8]

#: The background a transparent picture is composited over for the ``displayed`` variant.
BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)

#: In fast-decode mode, JPEGs are decoded by libjpeg's DCT scaling (1/2, 1/4, 1/8) to the
#: smallest size whose shorter side is still at least this many pixels. Not reference-exact:
#: ``benchmarks/bench_hash.py`` measures the drift (160 px: median 0, max 14 bits over Meta's
#: test images; 256 px: max 8 bits but only about 2x the baseline at 1000x750).
FAST_DECODE_MIN_SIDE = 160

#: EXIF tag number of Orientation.
_ORIENTATION_TAG = 0x0112

_COLOUR_MODES = frozenset(
    {"1", "L", "P", "RGBA", "RGBX", "LA", "PA", "YCbCr", "LAB", "HSV", "CMYK", "RGBa"}
)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One animation frame: 0-based ``index``, presentation time ``timestamp_s`` (seconds
    from the start) and the displayed picture ``rgb`` (H x W x 3 uint8)."""

    index: int
    timestamp_s: float
    rgb: RGBArray


@dataclass(slots=True)
class DecodedImage:
    """A decoded picture (see the module docstring for each field's meaning).

    ``stored``, ``displayed`` and the frames' ``rgb`` are the pictures PDQ hashes, squashed
    to 512x512 when a side exceeds 512 px. ``source`` is the loaded Pillow image of the
    first frame, for variants that need full-size pixels (``stored_rgb(source)``; read it
    before iterating ``frames``, which moves it to later frames).
    ``width``/``height`` are of the stored pixels as the header declares them.
    ``displayed_why`` is ``"alpha"`` or ``"1-bit"`` when ``displayed`` is set.
    ``frames`` yields frames 1.. of an animation lazily and raises
    :class:`UnhashableContent` if a later frame is corrupt; ``animated`` is True when the
    file has more than one frame. ``notes`` are warnings that did not stop decoding.
    """

    format: str
    mode: str
    width: int
    height: int
    orientation: int
    stored: RGBArray
    source: Image.Image
    displayed: RGBArray | None = None
    displayed_why: str | None = None
    animated: bool = False
    frames: Iterator[DecodedFrame] = field(default_factory=lambda: iter(()))
    notes: list[str] = field(default_factory=list)


def _grey3(a: npt.NDArray[np.uint8]) -> RGBArray:
    return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))


def _scale_wide(a: npt.NDArray[np.float64], lo: float, hi: float) -> npt.NDArray[np.uint8]:
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.floor((a - lo) * (255.0 / (hi - lo)) + 0.5).clip(0, 255).astype(np.uint8)


def int_to_8bit(a: npt.NDArray[np.integer],
                extrema: tuple[float, float] | None = None) -> npt.NDArray[np.uint8]:
    """Scale 32-bit integer samples to 8 bits: 0..255 unchanged, 0..65535 as
    ``floor(v / 257)``, anything wider linearly from min..max (rounded). ``extrema`` is the
    (min, max) of the whole picture when ``a`` is a sample of it. Shape unchanged."""
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = extrema if extrema is not None else (int(a.min()), int(a.max()))
    if lo >= 0 and hi <= 255:
        return a.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        return (a.astype(np.uint32) // 257).astype(np.uint8)
    return _scale_wide(a.astype(np.float64), float(lo), float(hi))


def float_to_8bit(a: npt.NDArray[np.floating],
                  extrema: tuple[float, float] | None = None) -> npt.NDArray[np.uint8]:
    """Scale float samples to 8 bits: 0..1 times 255, 0..255 as is (floored), wider ranges
    linearly from min..max (rounded); NaN counts as 0. ``extrema``: as for
    :func:`int_to_8bit`. Shape unchanged."""
    f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if f.size == 0:
        return np.zeros(f.shape, dtype=np.uint8)
    lo, hi = extrema if extrema is not None else (float(f.min()), float(f.max()))
    if lo >= 0.0 and hi <= 1.0:
        return np.floor(f * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.floor(f).astype(np.uint8)
    return _scale_wide(f, lo, hi)


def stored_rgb(im: Image.Image, extrema: tuple[float, float] | None = None) -> RGBArray:
    """The colour channels of a loaded Pillow image as stored, alpha ignored, as an
    H x W x 3 uint8 C-contiguous array (conversions in the module docstring). ``extrema``:
    for modes I and F, the (min, max) of the whole picture when ``im`` is a sample of it.

    Raises :class:`UnhashableContent` for a mode that has no RGB meaning.
    """
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I;16"):
        return _grey3((np.asarray(im).astype(np.uint32) // 257).astype(np.uint8))
    if mode == "I":
        return _grey3(int_to_8bit(np.asarray(im), extrema))
    if mode == "F":
        return _grey3(float_to_8bit(np.asarray(im), extrema))
    if mode == "La":
        return _grey3(np.asarray(im)[:, :, 0])
    if mode in _COLOUR_MODES:
        return np.asarray(im.convert("RGB"))
    try:
        return np.asarray(im.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise UnhashableContent(f"unsupported pixel mode {mode}") from exc


def alpha_channel(im: Image.Image) -> npt.NDArray[np.uint8] | None:
    """The opacity of each pixel (H x W uint8, 255 = opaque) of a loaded image, or ``None``
    when the image carries no transparency (alpha channel, palette alpha or a colour key)."""
    if not im.has_transparency_data:
        return None
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return np.asarray(im.getchannel(len(im.getbands()) - 1))  # "A", or "a" premultiplied
    if mode == "P":
        return np.asarray(im.convert("RGBA"))[:, :, 3]
    key = im.info.get("transparency")
    if key is None:
        return None
    arr = np.asarray(im)
    try:
        if arr.ndim == 3:
            mask = np.all(arr[:, :, : len(key)] == np.asarray(key, dtype=arr.dtype), axis=2)
        else:
            mask = arr == key
    except (TypeError, ValueError):
        return None
    return np.where(mask, 0, 255).astype(np.uint8)


def composite(rgb: RGBArray, alpha: npt.NDArray[np.uint8], *, premultiplied: bool = False,
              background: tuple[int, int, int] = BACKGROUND_RGB) -> RGBArray:
    """``rgb`` (H x W x 3 uint8) over ``background`` with opacity ``alpha`` (H x W uint8),
    rounded to nearest: ``(c*a + bg*(255-a) + 127) // 255`` (``premultiplied``: colours
    already multiplied by alpha, so ``c + (bg*(255-a) + 127) // 255``)."""
    a = alpha.astype(np.uint32)[:, :, None]
    bg = np.asarray(background, dtype=np.uint32)[None, None, :]
    c = rgb.astype(np.uint32)
    if premultiplied:
        out = c + (bg * (255 - a) + 127) // 255
    else:
        out = (c * a + bg * (255 - a) + 127) // 255
    return np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))


def displayed_rgb(im: Image.Image, stored: RGBArray) -> RGBArray | None:
    """The picture as displayed when the image has any pixel not fully opaque (composited
    over :data:`BACKGROUND_RGB`), else ``None``."""
    alpha = alpha_channel(im)
    if alpha is None or alpha.size == 0 or int(alpha.min()) == 255:
        return None
    return composite(stored, alpha, premultiplied=im.mode in ("RGBa", "La"))


def _one_bit_displayed(im: Image.Image) -> RGBArray | None:
    """For a 1-bit picture over the squash size: the dots area-averaged to 512x512 grey."""
    w, h = im.size
    if w <= SQUASH_SIZE and h <= SQUASH_SIZE:
        return None
    grey = im.convert("L").resize((SQUASH_SIZE, SQUASH_SIZE), Image.Resampling.BOX)
    return _grey3(np.asarray(grey))


def squash_image(im: Image.Image) -> Image.Image:
    """The reference tool's squash done by Pillow in the image's own mode: when a side
    exceeds 512 px, a 512x512 image of the pixels at row ``floor(i*H/512)``, column
    ``floor(j*W/512)`` (exactly :func:`bastion.signals.pdq.prepare`'s sampling, checked by the
    tests at many sizes and in every mode); else ``im`` itself.

    Sampling before mode conversion gives the same pixels as converting first (conversions
    are per pixel) and avoids converting millions of pixels that PDQ never reads: about ten
    times faster than sampling a full-size array. Pillow's affine transform maps output
    pixel centre ``j + 0.5`` to ``a*(j + 0.5) + c``; with ``a = W/512`` and
    ``c = -a/2 + 1e-6`` that is ``j*W/512`` nudged past float rounding (a non-integer
    ``j*W/512`` is at least 1/512 from the next integer, so the nudge never crosses one).
    """
    w, h = im.size
    if w <= SQUASH_SIZE and h <= SQUASH_SIZE:
        return im
    sx, sy = w / SQUASH_SIZE, h / SQUASH_SIZE
    coeffs = (sx, 0.0, -0.5 * sx + 1e-6, 0.0, sy, -0.5 * sy + 1e-6)
    return im.transform((SQUASH_SIZE, SQUASH_SIZE), Image.Transform.AFFINE, coeffs,
                        resample=Image.Resampling.NEAREST)


def _extrema(im: Image.Image) -> tuple[float, float] | None:
    if im.mode not in ("I", "F"):
        return None
    lo, hi = cast(tuple[float, float], im.getextrema())
    return float(lo), float(hi)


def prepared_pictures(im: Image.Image) -> tuple[RGBArray, RGBArray | None]:
    """``(stored, displayed)`` of a loaded image as PDQ hashes them: squashed to 512x512
    when a side exceeds 512 px (:func:`squash_image`), ``displayed`` ``None`` when every
    pixel is opaque."""
    try:
        small = squash_image(im)
    except (ValueError, OSError):  # a mode Pillow cannot transform: convert, then sample
        from bastion.signals.pdq import prepare

        full = stored_rgb(im)
        shown = displayed_rgb(im, full)
        return prepare(full), (None if shown is None else prepare(shown))
    rgb = stored_rgb(small, _extrema(im) if small is not im else None)
    shown = displayed_rgb(small, rgb)
    if shown is None and small is not im and im.has_transparency_data:
        # Transparent pixels exist but none was sampled: the displayed picture PDQ sees is
        # then the stored one, still reported as the displayed variant.
        alpha = alpha_channel(im)
        if alpha is not None and alpha.size and int(alpha.min()) < 255:
            shown = rgb.copy()
    return rgb, shown


def read_orientation(im: Image.Image) -> tuple[int, str | None]:
    """EXIF orientation (1-8) of an opened image and a note, if any: missing -> 1; values
    outside 1-8 -> 1 with a note; unreadable EXIF -> 1 with a note. Never raises."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG)
    except Exception as exc:  # untrusted metadata: any parser failure is only a note
        return 1, f"broken EXIF ignored ({type(exc).__name__})"
    if value is None:
        return 1, None
    if isinstance(value, int) and 1 <= value <= 8:
        return value, None
    return 1, f"invalid EXIF orientation {value!r} read as 1"


def _open(data: bytes, kind: MediaKind) -> Image.Image:
    fmt = kind.format
    assert fmt is not None
    if fmt in ("HEIF", "AVIF"):
        _register_heif()
    formats = [fmt]
    if fmt == "AVIF" and "AVIF" not in Image.OPEN:
        formats = ["HEIF"]
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(f"picture over the pixel limit ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnhashableContent(f"corrupt {kind.mime} (cannot read its header)") from exc
    except MemoryError as exc:
        raise UnhashableContent("out of memory reading the picture header") from exc
    except Exception as exc:  # third-party parsers raise many types on hostile input
        raise UnhashableContent(
            f"corrupt {kind.mime} ({type(exc).__name__}: {exc})"[:200]
        ) from exc


def _register_heif() -> None:
    import pillow_heif

    if "HEIF" not in Image.OPEN:
        pillow_heif.register_heif_opener()


def _load(im: Image.Image, what: str) -> None:
    try:
        im.load()
    except MemoryError as exc:
        raise UnhashableContent(f"memory limit exceeded decoding {what}") from exc
    except Exception as exc:  # truncated/corrupt data: never a partial stand-in picture
        raise UnhashableContent(
            f"truncated or corrupt {what} ({type(exc).__name__}: {exc})"[:200]
        ) from exc


def _check_pixels(w: int, h: int, limits: Limits) -> None:
    if w <= 0 or h <= 0:
        raise UnhashableContent(f"picture declares an empty size {w}x{h}")
    if w * h > limits.max_pixels:
        raise LimitExceeded(
            f"picture over the pixel limit ({w}x{h} = {w * h} > {limits.max_pixels} pixels)"
        )


def _frames(im: Image.Image, kind: MediaKind, limits: Limits, first_duration: float,
            notes: list[str]) -> Iterator[DecodedFrame]:
    t = first_duration
    for i in range(1, limits.max_animation_frames):
        try:
            im.seek(i)
        except EOFError:
            return
        except Exception as exc:
            raise UnhashableContent(
                f"corrupt {kind.mime} frame {i} ({type(exc).__name__}: {exc})"[:200]
            ) from exc
        _check_pixels(*im.size, limits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _load(im, f"{kind.mime} frame {i}")
            rgb, shown = prepared_pictures(im)
        yield DecodedFrame(i, t / 1000.0, rgb if shown is None else shown)
        t += float(im.info.get("duration") or 0)
    try:
        im.seek(limits.max_animation_frames)
    except Exception:
        return
    notes.append(
        f"animation has more than {limits.max_animation_frames} frames; later frames not hashed"
    )


def decode_image(data: bytes, *, limits: Limits | None = None, kind: MediaKind | None = None,
                 fast_decode: bool = False) -> DecodedImage:
    """Decode untrusted image bytes into the pictures PDQ hashes (see the module docstring).

    ``kind`` is the sniffed type (sniffed from ``data`` when omitted); the bytes must decode
    as that format, whatever a file name says. ``fast_decode`` decodes JPEGs at reduced size
    (:data:`FAST_DECODE_MIN_SIDE`), which is faster and not reference-exact.

    Raises :class:`LimitExceeded` (bytes, pixels) and :class:`UnhashableContent` (not an
    image, truncated, corrupt, unsupported mode).
    """
    limits = limits or Limits()
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(
            f"file over the size limit ({len(data)} > {limits.max_file_bytes} bytes)"
        )
    kind = kind or sniff(data[:4096])
    if kind.media_type != "image" or kind.format is None:
        raise UnhashableContent("not an image (unrecognised bytes)")
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = _open(data, kind)
        width, height = im.size
        _check_pixels(width, height, limits)
        if fast_decode and im.format == "JPEG" and min(width, height) >= 2 * FAST_DECODE_MIN_SIDE:
            im.draft(im.mode, (FAST_DECODE_MIN_SIDE, FAST_DECODE_MIN_SIDE))
            notes.append(f"fast decode at {im.size[0]}x{im.size[1]}: not reference-exact")
        _load(im, str(kind.mime))
        orientation, note = read_orientation(im)
        if note:
            notes.append(note)
        stored, displayed = prepared_pictures(im)
        why = "alpha" if displayed is not None else None
        if displayed is None and im.mode == "1":
            displayed = _one_bit_displayed(im)
            why = "1-bit" if displayed is not None else None
        animated = bool(getattr(im, "is_animated", False))
    out = DecodedImage(
        format=str(im.format or kind.format), mode=im.mode, width=width, height=height,
        orientation=orientation, stored=stored, source=im, displayed=displayed,
        displayed_why=why,
        animated=animated, notes=notes,
    )
    if animated:
        first = float(im.info.get("duration") or 0)
        out.frames = _frames(im, kind, limits, first, notes)
    return out
