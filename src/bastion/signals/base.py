"""What a signal is, and the interface every signal type implements.

A *signal* is one fingerprint value of one *signal type* (``pdq``, ``md5``, ``vpdq``, ``url``,
``keyword`` ...). Values travel as strings in one canonical form per type (for hashes: lowercase
hex), so that they round-trip through CSV, JSON, the database and the API unchanged.

Shapes (DESIGN.md, "Shapes")::

    {"signal_type": "pdq", "value": "<64 lowercase hex>", "quality": 100,
     "variant": {"kind": "stored", "index": 0}}

Implementations register themselves in :data:`REGISTRY` through :func:`register`; names are
permanent (they are stored in banks and shared with partners).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bastion.errors import InvalidInput

#: Variant kinds (DESIGN.md): the picture a hash was computed from.
VARIANT_KINDS = ("stored", "displayed", "frame", "trimmed", "crop", "band")

#: Hashes of quality below this are reported with ``low_quality: true`` and never matched
#: (Meta's PDQ recommendation: discard quality < 50).
MIN_MATCH_QUALITY = 50


@dataclass(frozen=True, slots=True)
class Variant:
    """Which picture of an item a signal was computed from.

    ``kind`` is one of :data:`VARIANT_KINDS`; ``index`` numbers variants of one kind (for
    ``frame``: the frame number, 0-based); ``timestamp_s`` is the presentation time in
    seconds for frames; ``detail`` names the region for ``crop``/``band``/``trimmed``.
    """

    kind: str = "stored"
    index: int = 0
    timestamp_s: float | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the DESIGN.md variant object (``kind``, ``index``, optional keys)."""
        out: dict[str, Any] = {"kind": self.kind, "index": self.index}
        if self.timestamp_s is not None:
            out["timestamp_s"] = round(self.timestamp_s, 6)
        if self.detail is not None:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> Variant:
        """Parse a variant object; ``None`` means the stored picture. Raises InvalidInput."""
        if obj is None:
            return STORED
        if not isinstance(obj, Mapping):
            raise InvalidInput("variant must be an object")
        kind = obj.get("kind", "stored")
        if kind not in VARIANT_KINDS:
            raise InvalidInput(f"unknown variant kind {kind!r}")
        index = obj.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidInput("variant index must be a non-negative integer")
        ts = obj.get("timestamp_s")
        if ts is not None and (not isinstance(ts, (int, float)) or isinstance(ts, bool)):
            raise InvalidInput("variant timestamp_s must be a number")
        detail = obj.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise InvalidInput("variant detail must be a string")
        return cls(kind, index, None if ts is None else float(ts), detail)


STORED = Variant()


@dataclass(frozen=True, slots=True)
class Signal:
    """One fingerprint of one item.

    ``value`` is in the signal type's canonical form (see :meth:`SignalType.parse`).
    ``quality`` is 0-100 for perceptual hashes and ``None`` for exact hashes.
    """

    signal_type: str
    value: str
    quality: int | None = None
    variant: Variant = STORED
    #: For PDQ: the 8 dihedral hashes in ``DIHEDRAL_TRANSFORMS`` order (``[0] == value``),
    #: computed from the same DCT; used by matching, not part of the JSON shape.
    dihedral: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def low_quality(self) -> bool:
        """True when the quality is known and below :data:`MIN_MATCH_QUALITY`."""
        return self.quality is not None and self.quality < MIN_MATCH_QUALITY

    def to_json(self) -> dict[str, Any]:
        """Return the DESIGN.md signal object."""
        out: dict[str, Any] = {"signal_type": self.signal_type, "value": self.value}
        if self.quality is not None:
            out["quality"] = self.quality
            if self.low_quality:
                out["low_quality"] = True
        out["variant"] = self.variant.to_json()
        return out


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One sampled video frame's PDQ: frame number (0-based, decode order of the video
    stream), presentation time in seconds, 64-hex value and quality 0-100."""

    frame: int
    timestamp_s: float
    value: str
    quality: int

    def to_json(self) -> dict[str, Any]:
        """Return ``{"frame", "timestamp_s", "value", "quality"}``."""
        return {
            "frame": self.frame,
            "timestamp_s": round(self.timestamp_s, 6),
            "value": self.value,
            "quality": self.quality,
        }


@dataclass(frozen=True, slots=True)
class VideoSignal:
    """A vPDQ signal: the PDQ hashes of a video's sampled frames, in presentation order."""

    frames: tuple[VideoFrame, ...]
    signal_type: str = "vpdq"
    variant: Variant = field(default=STORED)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"signal_type": "vpdq", "frames": [...]}`` (plus a non-stored variant)."""
        out: dict[str, Any] = {
            "signal_type": self.signal_type,
            "frames": [f.to_json() for f in self.frames],
        }
        if self.variant != STORED:
            out["variant"] = self.variant.to_json()
        return out


class SignalType(abc.ABC):
    """One way of fingerprinting content (after python-threatexchange's ``SignalType``).

    Subclasses set :attr:`name` (permanent, stored in banks), :attr:`default_threshold`
    (the largest distance that counts as a match, inclusive) and :attr:`examples` (valid
    values in canonical form), and implement :meth:`parse` and :meth:`distance`.
    Computation lives in mixins (:class:`BytesHasher` ...) because what a type is computed
    from differs (bytes, decoded pixels, text).
    """

    name: ClassVar[str]
    default_threshold: ClassVar[int] = 0
    examples: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abc.abstractmethod
    def parse(cls, value: str) -> str:
        """Validate ``value`` and return its canonical form. Raises :class:`InvalidInput`."""

    @classmethod
    def format(cls, value: str) -> str:
        """Return the external form of a canonical value (the identity for hex hashes).

        ``parse(format(v)) == v`` for every canonical ``v``.
        """
        return value

    @classmethod
    @abc.abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """Distance between two canonical values (0 = identical), an integer."""

    @classmethod
    def matches(cls, a: str, b: str, threshold: int | None = None) -> bool:
        """True if ``distance(a, b) <= threshold`` (inclusive; default threshold if None)."""
        t = cls.default_threshold if threshold is None else threshold
        return cls.distance(a, b) <= t


class BytesHasher(abc.ABC):
    """Mixin for signal types computed from the exact bytes of a file."""

    @classmethod
    @abc.abstractmethod
    def compute_bytes(cls, data: bytes) -> str:
        """Return the canonical value for ``data``."""


def parse_hex(value: str, *, bits: int, what: str) -> str:
    """Strip and lowercase ``value`` and check it is exactly ``bits // 4`` hex characters.

    Raises :class:`InvalidInput` naming ``what`` and the problem (length or character).
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string of {bits // 4} hex characters")
    v = value.strip().lower()
    n = bits // 4
    if len(v) != n:
        raise InvalidInput(f"{what} must be {n} hex characters, got {len(v)}")
    try:
        int(v, 16)
    except ValueError:
        raise InvalidInput(f"{what} must be hex (0-9, a-f)") from None
    if not all(c in "0123456789abcdef" for c in v):
        raise InvalidInput(f"{what} must be hex (0-9, a-f)")
    return v


REGISTRY: dict[str, type[SignalType]] = {}


def register(cls: type[SignalType]) -> type[SignalType]:
    """Class decorator: add a signal type to :data:`REGISTRY`; names must be unique."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"signal type {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_signal_type(name: str) -> type[SignalType]:
    """Return the registered signal type called ``name``. Raises :class:`InvalidInput`."""
    from bastion import signals  # noqa: F401  (importing the package registers built-ins)

    try:
        return REGISTRY[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InvalidInput(f"unknown signal type {name!r} (known: {known})") from None
