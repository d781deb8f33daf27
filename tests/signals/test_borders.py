"""Uniform border removal (bastion.signals.borders)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bastion.errors import InvalidInput
from bastion.signals.borders import find_content_box, trim_borders
from bastion.signals.pdq import PDQ_THRESHOLD, RGBArray, hamming, pdq_hash

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "../shared/data/images"
BRIDGE = "bridge-mods/aaa-orig.jpg"


def load(rel: str) -> RGBArray:
    with Image.open(IMAGES / rel) as im:
        return np.asarray(im.convert("RGB"))


def jpeg(rgb: RGBArray, quality: int) -> RGBArray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def framed(rgb: RGBArray, pad: tuple[int, int, int, int], colour: tuple[int, int, int]) -> RGBArray:
    """``rgb`` inside bars of ``colour``: pad = (top, bottom, left, right) pixels."""
    t, b, left, r = pad
    h, w = rgb.shape[:2]
    out = np.empty((h + t + b, w + left + r, 3), np.uint8)
    out[:] = colour
    out[t : t + h, left : left + w] = rgb
    return out


def generated(h: int, w: int, seed: int) -> RGBArray:
    """A busy picture: smooth colour gradients plus noise (no flat area anywhere)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [128 + 100 * np.sin(xx / 37.0), 128 + 100 * np.cos(yy / 23.0), (xx + yy) % 256], axis=2
    )
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bridge() -> RGBArray:
    return load(BRIDGE)


COLOURS = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (20, 60, 200), (16, 16, 16)]
PADS = {
    "letterbox": (120, 123, 0, 0),
    "pillarbox": (0, 0, 300, 297),
    "padding": (37, 53, 41, 29),
}


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize("kind", sorted(PADS))
@pytest.mark.parametrize("quality", [None, 90, 50])
def test_bars_of_any_colour_are_found_on_the_bridge(
    bridge: RGBArray, colour: tuple[int, int, int], kind: str, quality: int | None
) -> None:
    pad = PADS[kind]
    img = framed(bridge, pad, colour)
    if quality is not None:
        img = jpeg(img, quality)
    box = find_content_box(img)
    assert box is not None
    h, w = bridge.shape[:2]
    expected = (pad[0], pad[0] + h, pad[2], pad[2] + w)
    # Exact on lossless input; within a JPEG block's ringing (a few px) after compression.
    slack = 0 if quality is None else 6
    assert all(abs(a - e) <= slack for a, e in zip(box, expected, strict=True)), (box, expected)
    trimmed = trim_borders(img)
    assert trimmed is not None
    assert hamming(pdq_hash(trimmed).value, pdq_hash(bridge).value) <= 12


@pytest.mark.parametrize("colour", COLOURS)
def test_padding_around_a_generated_picture_is_found_exactly(colour: tuple[int, int, int]) -> None:
    content = generated(300, 420, seed=sum(colour))
    img = framed(content, (25, 40, 60, 10), colour)
    assert find_content_box(img) == (25, 325, 60, 480)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(0, 60),
    b=st.integers(0, 60),
    left=st.integers(0, 60),
    r=st.integers(0, 60),
    colour=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)
def test_any_border_thick_enough_is_removed_exactly(
    t: int, b: int, left: int, r: int, colour: tuple[int, int, int]
) -> None:
    content = generated(200, 260, seed=7)
    img = framed(content, (t, b, left, r), colour)
    h, w = img.shape[:2]
    box = find_content_box(img)
    # Borders under 1% of the side (and under 2 px) are left: PDQ absorbs them.
    want = (
        t if t >= max(2, np.ceil(0.01 * h)) else 0,
        h - (b if b >= max(2, np.ceil(0.01 * h)) else 0),
        left if left >= max(2, np.ceil(0.01 * w)) else 0,
        w - (r if r >= max(2, np.ceil(0.01 * w)) else 0),
    )
    if want == (0, h, 0, w):
        assert box is None
    else:
        assert box == want


def test_the_shared_letterboxed_bridge_trims_back_to_the_original() -> None:
    with (IMAGES / "EXPECTED.tsv").open(newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f, delimiter="\t")}
    row = rows["hasher-edge-cases/letterboxed_sample-b.jpg"]
    assert row["same_picture_as"] == BRIDGE
    original = pdq_hash(load(row["same_picture_as"])).value
    boxed = load("hasher-edge-cases/letterboxed_sample-b.jpg")
    assert hamming(pdq_hash(boxed).value, original) > PDQ_THRESHOLD  # PDQ alone misses it
    trimmed = trim_borders(boxed)
    assert trimmed is not None
    assert hamming(pdq_hash(trimmed).value, original) <= PDQ_THRESHOLD
    assert find_content_box(boxed) == (200, 1204, 200, 1800)


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (90, 10, 200)])
def test_a_solid_picture_has_no_border(colour: tuple[int, int, int]) -> None:
    img = np.empty((480, 640, 3), np.uint8)
    img[:] = colour
    assert find_content_box(img) is None
    assert find_content_box(jpeg(img, 60)) is None
    assert trim_borders(img) is None


def night_sky(seed: int) -> RGBArray:
    """A dark sky brightening slowly towards the horizon, with sensor noise and stars."""
    rng = np.random.default_rng(seed)
    h, w = 600, 900
    y = np.linspace(6, 70, h)[:, None, None]
    sky = y + rng.normal(0, 3, (h, w, 1)) + np.array([0, 2, 6])
    stars = rng.random((h, w)) < 0.003
    sky[stars] = 230
    return np.clip(sky, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_night_sky_is_not_eaten(seed: int) -> None:
    sky = night_sky(seed)
    assert find_content_box(sky) is None
    assert find_content_box(jpeg(sky, 80)) is None


def test_a_dark_photo_is_not_trimmed(bridge: RGBArray) -> None:
    dark = (bridge.astype(np.float64) * 0.12).astype(np.uint8)
    assert find_content_box(dark) is None
    assert find_content_box(jpeg(dark, 75)) is None


def test_a_uniform_side_deeper_than_the_limit_is_content(bridge: RGBArray) -> None:
    # A white "sky" over 45% of the height is part of the picture, not padding.
    img = framed(bridge, (int(bridge.shape[0] * 0.9), 0, 0, 0), (255, 255, 255))
    assert find_content_box(img) is None
    # ... but the same with a looser limit is trimmed.
    box = find_content_box(img, max_border_frac=0.49)
    assert box is not None and box[0] == int(bridge.shape[0] * 0.9)


def test_a_letterboxed_and_pillarboxed_picture_with_two_colours(bridge: RGBArray) -> None:
    img = framed(bridge, (0, 0, 200, 200), (0, 0, 0))
    img = framed(img, (100, 100, 0, 0), (255, 255, 255))
    h, w = bridge.shape[:2]
    assert find_content_box(img) == (100, 100 + h, 200, 200 + w)


def test_tiny_pictures_are_left_alone() -> None:
    img = np.zeros((10, 40, 3), np.uint8)
    img[3:7, 5:30] = 200
    assert find_content_box(img) is None


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((20, 20), np.uint8),
        np.zeros((20, 20, 4), np.uint8),
        np.zeros((20, 20, 3), np.float32),
    ],
)
def test_wrong_arrays_raise_invalid_input(bad: RGBArray) -> None:
    with pytest.raises(InvalidInput):
        find_content_box(bad)


def test_bad_parameters_raise_invalid_input(bridge: RGBArray) -> None:
    with pytest.raises(InvalidInput):
        find_content_box(bridge, tolerance=300)
    with pytest.raises(InvalidInput):
        find_content_box(bridge, min_border_frac=0.3, max_border_frac=0.2)


def test_a_plain_wall_with_a_sharp_edge_is_not_a_bar(bridge: RGBArray) -> None:
    # Like a grey wall beside a door frame: within the tolerance of one colour, with a sharp
    # edge to the rest, but textured (noise and shading) where a bar is flat.
    rng = np.random.default_rng(3)
    h, w = bridge.shape[:2]
    wall = np.clip(
        128 + np.linspace(-8, 8, 250)[None, :, None] + rng.normal(0, 8, (h, 250, 3)), 0, 255
    ).astype(np.uint8)
    img = np.concatenate([wall, bridge], axis=1)
    assert find_content_box(img) is None
    flat = img.copy()
    flat[:, :250] = 128
    assert find_content_box(flat) == (0, h, 250, 250 + w)


def test_video_frame_pillarbox_is_found() -> None:
    path = REPO / "../shared/data/video/chair-22-sd-grey-bar.mp4"
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert find_content_box(frame) == (0, 720, 32, 448)


@pytest.mark.parametrize("sigma", [1.0, 2.5, 4.0])
def test_grainy_bars_are_still_bars(bridge: RGBArray, sigma: float) -> None:
    rng = np.random.default_rng(int(sigma))
    h, w = bridge.shape[:2]
    img = np.full((h + 300, w, 3), 20.0) + rng.normal(0, sigma, (h + 300, w, 3))
    img[150 : 150 + h] = bridge
    img = np.clip(img, 0, 255).astype(np.uint8)
    assert find_content_box(img) == (150, 150 + h, 0, w)
