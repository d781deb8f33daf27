"""The evidence vault: case media encrypted at rest.

Each item's bytes are encrypted with AES-256-GCM (NIST SP 800-38D; the ``cryptography``
package's ``AESGCM``) under a fresh random 256-bit *data key* and a 96-bit random nonce,
and written to ``$home/evidence/<random>.bin``; the file name is the associated data, so a
ciphertext cannot be swapped between rows. The data key is itself encrypted ("wrapped")
with the master key (:mod:`bastion.evidence.keys`), also AES-256-GCM, and stored in the
item's row (``evidence_items.wrapped_key``: nonce || ciphertext || tag). Reading checks the
GCM tag and the plaintext's SHA-256 against the row. Destroying an item deletes its file
and sets ``wrapped_key`` to NULL: without the data key every copy (backups included) is
unreadable. Plaintext never touches the disk: encryption happens in memory.

A file is written (and synced) before its row is added to the caller's transaction; if
that transaction rolls back, the file is an orphan whose data key never existed anywhere:
unreadable, and removed by :meth:`Vault.sweep_orphans`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import BastionError, ConfigurationError, NotFound
from bastion.evidence.keys import MasterKey
from bastion.store.audit import record_audit_event
from bastion.store.models_review import EvidenceItem
from bastion.store.types import utcnow

_NONCE = 12
#: What an evidence item holds: a case's bytes, a preservation metadata record, or an
#: item's submitted text (:mod:`bastion.evidence.texts`).
KINDS = ("media", "record", "text")


class EvidenceCorrupt(BastionError):
    """Stored evidence failed its integrity check (GCM tag or SHA-256), or its data key
    was wrapped by a master key that is not configured."""

    code = "evidence-corrupt"


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted file written by :meth:`Vault.seal`, waiting for its row."""

    file_name: str
    wrapped_key: bytes = field(repr=False)
    master_key_id: str
    nonce: bytes
    sha256: str
    size: int


def _wrap_aad(file_name: str) -> bytes:
    return b"bastion-data-key:" + file_name.encode()


class Vault:
    """Encrypted media under ``root`` (``$home/evidence``), keys wrapped by ``master``.
    ``previous`` master keys may unwrap (during a rotation)."""

    def __init__(self, root: Path, master: MasterKey,
                 previous: tuple[MasterKey, ...] = ()) -> None:
        self.root = root
        self.master = master
        self._keys = {k.key_id: k for k in (*previous, master)}

    def _path(self, file_name: str) -> Path:
        return self.root / file_name

    def put(
        self, session: Session, *, content_id: str, data: bytes, case_id: int | None,
        actor: str, delete_after: datetime | None = None, kind: str = "media",
    ) -> EvidenceItem:
        """Encrypt ``data`` to a new file and add its row (and an audit event) to
        ``session``'s transaction. Returns the row (id assigned)."""
        return self.record(session, self.seal(data), content_id=content_id, case_id=case_id,
                           actor=actor, delete_after=delete_after, kind=kind)

    def seal(self, data: bytes) -> Sealed:
        """Encrypt ``data`` to a new file (synced) and return what its row needs; do this
        before a transaction so the file write does not hold database locks. Pass the
        result to :meth:`record`, or to :meth:`discard` if the transaction fails."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        file_name = f"{secrets.token_hex(16)}.bin"
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE)
        ciphertext = AESGCM(data_key).encrypt(nonce, data, file_name.encode())
        wnonce = secrets.token_bytes(_NONCE)
        wrapped = wnonce + AESGCM(self.master.key).encrypt(wnonce, data_key,
                                                           _wrap_aad(file_name))
        path = self._path(file_name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(ciphertext)
            f.flush()
            os.fsync(f.fileno())
        return Sealed(file_name, wrapped, self.master.key_id, nonce,
                      hashlib.sha256(data).hexdigest(), len(data))

    def record(
        self, session: Session, sealed: Sealed, *, content_id: str, case_id: int | None,
        actor: str, delete_after: datetime | None = None, kind: str = "media",
        detail: dict[str, Any] | None = None,
    ) -> EvidenceItem:
        """Add the row of a :meth:`seal`-ed item (and an audit event, with ``detail``'s
        keys added) to ``session``'s transaction; returns the row (id assigned). ``kind``:
        one of :data:`KINDS`. Raises ValueError for another kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown evidence kind {kind!r}")
        item = EvidenceItem(
            case_id=case_id, content_id=content_id, file_name=sealed.file_name,
            wrapped_key=sealed.wrapped_key, master_key_id=sealed.master_key_id,
            nonce=sealed.nonce, sha256=sealed.sha256, size=sealed.size, created_at=utcnow(),
            delete_after=delete_after, kind=kind,
        )
        session.add(item)
        session.flush()
        record_audit_event(session, actor=actor, action="evidence.store",
                           object_type="evidence", object_id=str(item.id),
                           detail={**(detail or {}), "case_id": case_id, "size": sealed.size,
                                   "kind": kind})
        return item

    def discard(self, sealed: Sealed) -> None:
        """Delete a sealed file whose row was never committed."""
        self._path(sealed.file_name).unlink(missing_ok=True)

    def get_item(self, session: Session, item_id: int) -> EvidenceItem:
        """The row of a live item; raises :class:`NotFound` (also once destroyed)."""
        item = session.get(EvidenceItem, item_id)
        if item is None or item.wrapped_key is None or item.deleted_at is not None:
            raise NotFound(f"no evidence item {item_id}")
        return item

    def read(self, session: Session, item_id: int) -> bytes:
        """Decrypt one item in memory. Raises :class:`NotFound`, :class:`EvidenceCorrupt`.
        (Callers audit who read it and why.)"""
        item = self.get_item(session, item_id)
        assert item.wrapped_key is not None
        master = self._keys.get(item.master_key_id)
        if master is None:
            raise EvidenceCorrupt(f"evidence item {item_id} is wrapped by master key "
                                  f"{item.master_key_id}, which is not configured")
        try:
            wrapped = item.wrapped_key
            data_key = AESGCM(master.key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                                  _wrap_aad(item.file_name))
            ciphertext = self._path(item.file_name).read_bytes()
            data = AESGCM(data_key).decrypt(item.nonce, ciphertext, item.file_name.encode())
        except FileNotFoundError:
            raise EvidenceCorrupt(f"evidence item {item_id}: its file is missing") from None
        except InvalidTag:
            raise EvidenceCorrupt(f"evidence item {item_id} failed its integrity check") from None
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise EvidenceCorrupt(f"evidence item {item_id}: SHA-256 differs from the record")
        return data

    def destroy(self, session: Session, item_id: int, *, actor: str, reason: str) -> None:
        """Destroy an item's data key and delete its file (audited with ``reason``, a
        short code such as ``retention``). Raises :class:`NotFound`."""
        item = self.get_item(session, item_id)
        item.wrapped_key = None
        item.deleted_at = utcnow()
        session.flush()
        self._path(item.file_name).unlink(missing_ok=True)
        record_audit_event(session, actor=actor, action="evidence.destroy",
                           object_type="evidence", object_id=str(item_id),
                           detail={"reason": reason[:50]})

    def sweep_orphans(self, session: Session, *, older_than_s: float = 3600.0) -> int:
        """Delete files that no live row names (left by rolled-back transactions or
        destroyed items) and that are older than ``older_than_s`` seconds (a file is
        written just before its row commits: a younger one may be in flight); returns
        how many."""
        if not self.root.is_dir():
            return 0
        live = set(session.execute(
            select(EvidenceItem.file_name).where(EvidenceItem.wrapped_key.is_not(None))
        ).scalars())
        cutoff = time.time() - older_than_s
        n = 0
        for path in self.root.glob("*.bin"):
            try:
                young = path.stat().st_mtime > cutoff
            except FileNotFoundError:
                continue
            if path.name not in live and not young:
                path.unlink(missing_ok=True)
                n += 1
        return n


def purge_due_media(session: Session, root: Path, *, now: datetime | None = None,
                    actor: str = "system:retention", limit: int = 1000) -> int:
    """Destroy (data key and file; audited with reason ``retention``) up to ``limit``
    live items whose ``delete_after`` has passed; returns how many. Needs no master key:
    destruction only forgets. A periodic job calls it (:mod:`bastion.content.maintenance`)."""
    at = now or utcnow()
    rows = list(session.execute(
        select(EvidenceItem).where(EvidenceItem.wrapped_key.is_not(None),
                                   EvidenceItem.delete_after.is_not(None),
                                   EvidenceItem.delete_after <= at)
        .order_by(EvidenceItem.id).limit(limit).with_for_update()
    ).scalars())
    for item in rows:
        item.wrapped_key = None
        item.deleted_at = at
        session.flush()
        (root / item.file_name).unlink(missing_ok=True)
        record_audit_event(session, actor=actor, action="evidence.destroy",
                           object_type="evidence", object_id=str(item.id),
                           detail={"reason": "retention"})
    return len(rows)


def rotate_master_key(session: Session, vault: Vault, new: MasterKey, *, actor: str) -> int:
    """Re-wrap every live data key with ``new`` (the vault's current and previous keys
    unwrap); the item files are untouched. Returns how many were re-wrapped. Raises
    :class:`EvidenceCorrupt` when a key cannot be unwrapped."""
    n = 0
    for item in session.execute(
        select(EvidenceItem).where(EvidenceItem.wrapped_key.is_not(None)).with_for_update()
    ).scalars():
        master = vault._keys.get(item.master_key_id)
        if master is None:
            raise EvidenceCorrupt(f"evidence item {item.id}: master key {item.master_key_id} "
                                  "is not configured")
        w = item.wrapped_key
        assert w is not None
        try:
            data_key = AESGCM(master.key).decrypt(w[:_NONCE], w[_NONCE:],
                                                  _wrap_aad(item.file_name))
        except InvalidTag:
            raise EvidenceCorrupt(f"evidence item {item.id}: data key unwrap failed") from None
        wnonce = secrets.token_bytes(_NONCE)
        item.wrapped_key = wnonce + AESGCM(new.key).encrypt(wnonce, data_key,
                                                            _wrap_aad(item.file_name))
        item.master_key_id = new.key_id
        n += 1
    session.flush()
    record_audit_event(session, actor=actor, action="evidence.rotate_master_key",
                       object_type="master_key", object_id=new.key_id, detail={"items": n})
    return n


def open_vault(settings: object) -> Vault:
    """The vault of ``settings`` (a :class:`~bastion.config.Settings`): ``$home/evidence``
    and its master key. Raises :class:`ConfigurationError`."""
    from bastion.config import Settings
    from bastion.evidence.keys import load_master_key

    if not isinstance(settings, Settings):  # pragma: no cover - typing guard
        raise ConfigurationError("open_vault needs Settings")
    return Vault(settings.home.resolve() / "evidence", load_master_key(settings))
