"""The result of hashing one file: what ``bastion hash --json`` prints per line and what the
scan pipeline matches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bastion.signals.base import Signal, VideoSignal

MediaType = Literal["image", "video", "other"]
HashStatus = Literal["hashed", "not_scanned"]


@dataclass(slots=True)
class HashResult:
    """Signals and facts about one file.

    ``status`` is ``not_scanned`` (with ``reason``, a short phrase) when the perceptual hash
    could not be computed; exact hashes (MD5, SHA-1, SHA-256) are in ``signals`` even then.
    ``width``/``height`` are of the stored pixels; ``orientation`` is the EXIF orientation
    (1-8, invalid values read as 1); ``duration_s`` is for videos, in seconds;
    ``mime`` is the type sniffed from the bytes; ``notes`` are warnings that did not stop
    hashing (e.g. broken EXIF, frames beyond the limit not hashed).
    """

    path: str | None
    media_type: MediaType
    status: HashStatus
    signals: list[Signal | VideoSignal] = field(default_factory=list)
    reason: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    duration_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``bastion hash --json`` object (keys named in issue 2 / DESIGN.md)."""
        out: dict[str, Any] = {
            "path": self.path,
            "media_type": self.media_type,
            "status": self.status,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.mime is not None:
            out["mime"] = self.mime
        for key in ("width", "height", "orientation", "duration_s"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        out["signals"] = [s.to_json() for s in self.signals]
        if self.notes:
            out["notes"] = list(self.notes)
        return out
