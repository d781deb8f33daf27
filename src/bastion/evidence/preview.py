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
from typing import Any

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


#: Frames on a contact sheet (3 x 3) and each tile's long side, pixels.
SHEET_FRAMES = 9
SHEET_TILE = 170


def contact_sheet(data: bytes, *, blur: int, max_pixels: int = 100_000_000,
                  max_seconds: float = 4 * 3600.0, max_decoded_frames: int = 20_000) -> bytes:
    """A blurred greyscale contact sheet (JPEG, 3 x 3 tiles of :data:`SHEET_TILE` px) of
    up to :data:`SHEET_FRAMES` frames sampled evenly over the video in ``data``: a still
    picture, so nothing autoplays and there is no sound. Decoding stops at ``max_seconds``
    of media time or ``max_decoded_frames`` frames. Raises :class:`UnhashableContent` for
    bytes that are not a readable video within the pixel limit."""
    import av

    frames: list[Image.Image] = []
    try:
        container: Any = av.open(io.BytesIO(data))
        with container:
            streams = [s for s in container.streams if s.type == "video"]
            if not streams:
                raise UnhashableContent("no preview: no video stream")
            stream: Any = streams[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > max_pixels:
                raise UnhashableContent(f"video of {w}x{h} pixels is over the limit")
            duration = (float(stream.duration * stream.time_base)
                        if stream.duration and stream.time_base else
                        (container.duration or 0) / 1_000_000)
            duration = min(max(duration, 0.0), max_seconds)
            step = duration / SHEET_FRAMES if duration > 0 else 0.0
            next_t = 0.0
            first: float | None = None
            for decoded, frame in enumerate(container.decode(stream), start=1):
                t = float(frame.time or 0.0)
                first = t if first is None else first
                rel = t - first
                if rel > max_seconds or decoded > max_decoded_frames:
                    break
                if rel + 1e-6 >= next_t:
                    img = frame.to_image().convert("L")
                    img.thumbnail((SHEET_TILE, SHEET_TILE))
                    frames.append(img)
                    next_t = rel + step if step > 0 else rel + 1.0
                    if len(frames) >= SHEET_FRAMES:
                        break
    except UnhashableContent:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnhashableContent(f"no preview: not a readable video ({exc.__class__.__name__})"
                                ) from None
    if not frames:
        raise UnhashableContent("no preview: the video has no decodable frames")
    sheet = Image.new("L", (3 * SHEET_TILE, SHEET_TILE * ((len(frames) + 2) // 3)), 128)
    for i, img in enumerate(frames):
        x, y = (i % 3) * SHEET_TILE, (i // 3) * SHEET_TILE
        sheet.paste(img, (x + (SHEET_TILE - img.width) // 2, y + (SHEET_TILE - img.height) // 2))
    sheet = sheet.filter(ImageFilter.GaussianBlur(radius=max(1, blur // 3)))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=70)
    return out.getvalue()


def preview_of(data: bytes, *, blur: int, max_pixels: int = 100_000_000,
               max_seconds: float = 4 * 3600.0) -> bytes:
    """The blurred greyscale preview of a picture, or the contact sheet of a video.
    Raises :class:`UnhashableContent` when ``data`` is neither."""
    try:
        return blurred_preview(data, blur=blur, max_pixels=max_pixels)
    except UnhashableContent as exc:
        if "over the limit" in exc.reason:
            raise
    return contact_sheet(data, blur=blur, max_pixels=max_pixels, max_seconds=max_seconds)
