"""Where a report's file bytes come from at upload time.

A report row never holds bytes: each file has a ``locator`` that a :class:`FileProvider`
resolves when the file is uploaded to NCMEC. The evidence vault (issue 6, preservation)
provides the production implementation; :class:`DirectoryFileProvider` reads files from one
directory (tests, and a staging directory an operator controls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from bastion.errors import BastionError, LimitExceeded
from bastion.store.database import Database

#: Largest file uploaded to NCMEC in one request, bytes.
MAX_REPORT_FILE_BYTES = 512 * 1024 * 1024


class FileUnavailable(BastionError):
    """The bytes of a report's file cannot be read now (the message names the locator); the
    upload is retried later."""

    code = "file-unavailable"


class FileProvider(Protocol):
    """Returns the bytes of a report file named by ``locator``; raises
    :class:`FileUnavailable` (or :class:`LimitExceeded`) when it cannot."""

    def read(self, locator: str) -> bytes:
        """The file's bytes."""


class DirectoryFileProvider:
    """Files named by their path relative to ``root`` (no ``..``, no absolute paths)."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_REPORT_FILE_BYTES) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes

    def read(self, locator: str) -> bytes:
        """Read ``root/locator``; raises :class:`FileUnavailable` or :class:`LimitExceeded`."""
        path = (self.root / locator).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise FileUnavailable(f"report file locator {locator!r} is outside the directory")
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise LimitExceeded(f"report file {locator!r} is over {self.max_bytes} bytes")
            return path.read_bytes()
        except OSError as exc:
            raise FileUnavailable(f"report file {locator!r} cannot be read: "
                                  f"{exc.strerror or type(exc).__name__}") from exc


class _EvidenceReader(Protocol):
    def read(self, session: Session, item_id: int) -> bytes:
        """Decrypted bytes of one evidence item."""


class VaultFileProvider:
    """Files in the encrypted evidence vault, named ``evidence:<item id>``
    (:meth:`bastion.evidence.vault.Vault.read`, decrypted in memory only)."""

    def __init__(self, db: Database, vault: _EvidenceReader) -> None:
        self.db = db
        self.vault = vault

    def read(self, locator: str) -> bytes:
        """The item's bytes; raises :class:`FileUnavailable` for another locator or an item
        that cannot be read."""
        kind, _, ident = locator.partition(":")
        if kind != "evidence" or not ident.isdigit():
            raise FileUnavailable(f"report file locator {locator!r} is not evidence:<id>")
        try:
            with self.db.read() as session:
                return self.vault.read(session, int(ident))
        except BastionError as exc:
            raise FileUnavailable(f"report file {locator}: {exc.message}") from exc


class NoFileProvider:
    """Used when no evidence store is configured: every read says so (reports wait)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def read(self, locator: str) -> bytes:
        """Raises :class:`FileUnavailable` with the reason."""
        raise FileUnavailable(f"report file {locator}: {self.why}")
