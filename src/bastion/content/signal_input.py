"""Signals a platform computed itself (hash-only submissions), parsed and validated.

Accepted objects (``type`` is accepted for ``signal_type``)::

    {"signal_type": "pdq", "value": "<64 hex>", "quality": 0-100, "variant": {...}}
    {"signal_type": "md5" | "sha1" | "sha256", "value": "<hex>"}
    {"signal_type": "vpdq", "frames": [{"frame": 0, "timestamp_s": 0.0,
                                        "value": "<64 hex>", "quality": 100}, ...]}

A bare PDQ hash gets its 8 dihedral variants from the hash bits
(:func:`bastion.signals.pdq.dihedral_from_hash`), so a rotated or mirrored copy of a
known picture is still found without the pixels. Errors name the offending field
(``signals[3].value``) in :class:`SignalInputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.errors import InvalidInput
from bastion.signals.base import Signal, Variant, VideoFrame, VideoSignal, get_signal_type
from bastion.signals.pdq import dihedral_from_hash

#: Most signals in one request (``POST /v1/match`` batches, hash-only submissions).
MAX_SIGNALS = 1_000
#: Most vPDQ frames in one request, all signals together.
MAX_FRAMES = 100_000


class SignalInputError(InvalidInput):
    """A submitted signal is malformed; ``field`` names it (``signals[2].value``)."""

    code = "invalid-signal"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _quality(obj: dict[str, Any], where: str) -> int | None:
    q = obj.get("quality")
    if q is None:
        return None
    if not isinstance(q, int) or isinstance(q, bool) or not 0 <= q <= 100:
        raise SignalInputError("quality must be an integer 0-100", f"{where}.quality")
    return q


def _frames(obj: dict[str, Any], where: str, budget: int) -> tuple[VideoFrame, ...]:
    frames = obj.get("frames")
    if not isinstance(frames, list) or not frames:
        raise SignalInputError("vpdq needs a non-empty list of frames", f"{where}.frames")
    if len(frames) > budget:
        raise SignalInputError(f"more than {MAX_FRAMES} vPDQ frames in one request",
                               f"{where}.frames")
    pdq = get_signal_type("pdq")
    out: list[VideoFrame] = []
    for i, f in enumerate(frames):
        fw = f"{where}.frames[{i}]"
        if not isinstance(f, dict):
            raise SignalInputError("a frame must be an object", fw)
        try:
            value = pdq.parse(f.get("value"))  # type: ignore[arg-type]
        except InvalidInput as exc:
            raise SignalInputError(exc.message, f"{fw}.value") from None
        ts = f.get("timestamp_s", float(i))
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts < 0 or ts != ts:
            raise SignalInputError("timestamp_s must be a number >= 0", f"{fw}.timestamp_s")
        num = f.get("frame", i)
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            raise SignalInputError("frame must be an integer >= 0", f"{fw}.frame")
        q = _quality(f, fw)
        out.append(VideoFrame(num, float(ts), value, 100 if q is None else q))
    return tuple(out)


def signals_from_json(
    items: Sequence[Any], *, field: str = "signals"
) -> list[Signal | VideoSignal]:
    """Parse submitted signal objects (see the module docstring). Raises
    :class:`SignalInputError` naming the field, for at most :data:`MAX_SIGNALS` items."""
    if len(items) > MAX_SIGNALS:
        raise SignalInputError(f"at most {MAX_SIGNALS} signals per request", field)
    out: list[Signal | VideoSignal] = []
    frame_budget = MAX_FRAMES
    for i, obj in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(obj, dict):
            raise SignalInputError("a signal must be an object", where)
        name = obj.get("signal_type", obj.get("type"))
        if not isinstance(name, str):
            raise SignalInputError(
                "signal_type is required (pdq, md5, ...)", f"{where}.signal_type"
            )
        if name.strip().lower() == "vpdq":
            frames = _frames(obj, where, frame_budget)
            frame_budget -= len(frames)
            out.append(VideoSignal(frames=frames))
            continue
        try:
            st = get_signal_type(name)
        except InvalidInput as exc:
            raise SignalInputError(exc.message, f"{where}.signal_type") from None
        if st.name not in ("pdq", "md5", "sha1", "sha256"):
            raise SignalInputError(
                f"signal type {st.name!r} cannot be matched here (pdq, md5, sha1, sha256, vpdq)",
                f"{where}.signal_type",
            )
        raw = obj.get("value", obj.get("signal"))
        if not isinstance(raw, str):
            raise SignalInputError("value must be a string of hex characters", f"{where}.value")
        try:
            value = st.parse(raw)
        except InvalidInput as exc:
            raise SignalInputError(exc.message, f"{where}.value") from None
        if st.name != "pdq":
            out.append(Signal(st.name, value))
            continue
        try:
            variant = Variant.from_json(obj.get("variant"))
        except InvalidInput as exc:
            raise SignalInputError(exc.message, f"{where}.variant") from None
        quality = _quality(obj, where)
        out.append(Signal("pdq", value, quality, variant, dihedral=dihedral_from_hash(value)))
    return out


def canonical_json(signals: Sequence[Signal | VideoSignal]) -> list[dict[str, Any]]:
    """The signals in DESIGN.md's JSON shape, sorted (for a stable request digest)."""
    objs = [s.to_json() for s in signals]
    return sorted(objs, key=lambda o: (o["signal_type"], str(o.get("value", "")), str(o)))
