"""Previews made in memory: blurred greyscale by default, colour only on a reveal.

Reviewers see a blurred, greyscale picture unless they reveal one item (industry practice:
Thorn's Safer, ROOST's Coop and Bluesky's Ozone blur and desaturate by default). Previews
are computed on each request from the decrypted bytes and never written anywhere.

:func:`blurred_preview` returns a JPEG at most ``max_side`` pixels on its long side,
greyscale (ITU-R 601 luma, Pillow's ``L`` mode), Gaussian-blurred with radius ``blur``
pixels, EXIF orientation applied, metadata dropped. :func:`revealed_image` re-encodes the
picture in colour (at most 1600 pixels, no metadata), so the browser never receives the
original file. Both raise :class:`~bastion.errors.UnhashableContent` (reason) for bytes
that are not a picture within the pixel limit.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from bastion.errors import UnhashableContent

#: Long side of a blurred preview, pixels.
PREVIEW_SIDE = 512
#: Long side of a revealed picture, pixels.
REVEAL_SIDE = 1600


def _open(data: bytes, max_pixels: int, side: int) -> Image.Image:
    try:
        opened = Image.open(io.BytesIO(data))
        w, h = opened.size
        if w * h > max_pixels:
            raise UnhashableContent(f"picture of {w}x{h} pixels is over the limit")
        opened.draft("RGB", (side, side))
        img: Image.Image = ImageOps.exif_transpose(opened)
        img.load()
    except UnhashableContent:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnhashableContent(f"no preview: not a readable picture ({exc.__class__.__name__})"
                                ) from None
    return img


def blurred_preview(data: bytes, *, blur: int, max_pixels: int = 100_000_000,
                    max_side: int = PREVIEW_SIDE) -> bytes:
    """A blurred greyscale JPEG of the picture in ``data`` (see the module docstring)."""
    img = _open(data, max_pixels, max_side)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (128, 128, 128, 255))
        img = Image.alpha_composite(bg, img)
    grey = img.convert("L")
    grey.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    grey = grey.filter(ImageFilter.GaussianBlur(radius=max(1, blur)))
    out = io.BytesIO()
    grey.save(out, format="JPEG", quality=70)
    return out.getvalue()


def revealed_image(data: bytes, *, max_pixels: int = 100_000_000) -> bytes:
    """The picture in colour, re-encoded as JPEG without metadata (see the module
    docstring)."""
    img = _open(data, max_pixels, REVEAL_SIDE).convert("RGB")
    img.thumbnail((REVEAL_SIDE, REVEAL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=88)
    return out.getvalue()
