"""Cryptographic hashes of the exact bytes received: MD5, SHA-1, SHA-256.

Hotline hash lists (NCMEC, IWF) use all three. Values are lowercase hex (32, 40, 64
characters). The hash of the empty file is a valid value but never a valid *bank entry*
(:data:`EMPTY_DIGESTS`): a list that holds it would match every failed upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import BinaryIO, ClassVar

from bastion.errors import InvalidInput
from bastion.signals.base import BytesHasher, SignalType, parse_hex, register

#: Read size for streaming (bytes).
CHUNK = 1 << 20


class _ExactHash(SignalType, BytesHasher):
    """Exact-match hash: distance 0 or 1 (equal or not), threshold 0."""

    bits: ClassVar[int]
    default_threshold = 0

    @classmethod
    def parse(cls, value: str) -> str:
        return parse_hex(value, bits=cls.bits, what=f"{cls.name} hash")

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1

    @classmethod
    def compute_bytes(cls, data: bytes) -> str:
        return hashlib.new(cls.name, data).hexdigest()


@register
class Md5Signal(_ExactHash):
    """MD5, 128 bits as 32 lowercase hex characters."""

    name = "md5"
    bits = 128
    examples = ("9e107d9d372bb6826bd81d3542a419d6",)


@register
class Sha1Signal(_ExactHash):
    """SHA-1, 160 bits as 40 lowercase hex characters."""

    name = "sha1"
    bits = 160
    examples = ("2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",)


@register
class Sha256Signal(_ExactHash):
    """SHA-256, 256 bits as 64 lowercase hex characters."""

    name = "sha256"
    bits = 256
    examples = ("d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",)


EXACT_TYPES: tuple[type[_ExactHash], ...] = (Md5Signal, Sha1Signal, Sha256Signal)

#: Digests of zero bytes, rejected as bank entries.
EMPTY_DIGESTS: frozenset[str] = frozenset(hashlib.new(t.name, b"").hexdigest() for t in EXACT_TYPES)


class ExactHasher:
    """Computes MD5, SHA-1 and SHA-256 in one pass over streamed chunks.

    >>> h = ExactHasher(); h.update(b"abc"); h.hexdigests()["md5"]
    '900150983cd24fb0d6963f7d28e17f72'
    """

    def __init__(self) -> None:
        self._h = {t.name: hashlib.new(t.name) for t in EXACT_TYPES}
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Feed the next chunk of bytes."""
        self.size += len(chunk)
        for h in self._h.values():
            h.update(chunk)

    def hexdigests(self) -> dict[str, str]:
        """Return ``{"md5": ..., "sha1": ..., "sha256": ...}`` of everything fed so far."""
        return {name: h.hexdigest() for name, h in self._h.items()}


def exact_digests(data: bytes | Iterable[bytes] | BinaryIO) -> dict[str, str]:
    """MD5, SHA-1 and SHA-256 of ``data`` (bytes, an iterable of chunks, or a binary file
    read in :data:`CHUNK`-sized pieces), as ``{"md5": hex, "sha1": hex, "sha256": hex}``."""
    h = ExactHasher()
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(bytes(data))
    elif hasattr(data, "read"):
        while chunk := data.read(CHUNK):
            h.update(chunk)
    else:
        for chunk in data:
            h.update(chunk)
    return h.hexdigests()


def check_not_empty_digest(signal_type: str, value: str) -> None:
    """Raise :class:`InvalidInput` if ``value`` is the digest of the empty file."""
    if value in EMPTY_DIGESTS:
        raise InvalidInput(f"{signal_type} of the empty file is not a valid entry")
