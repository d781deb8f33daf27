"""Submitted text kept for review: an item's ``text``, ``title`` and ``links``, encrypted.

A reviewer cannot judge a keyword or URL match, or a classified ad's indicators, without
the words around them, so the text an item was submitted with is kept when the item
*opened a case or matched* (never for a clean post). It is kept exactly like media: one
JSON document sealed in the evidence vault (:class:`~bastion.evidence.vault.Vault`:
AES-256-GCM under the item's own data key, the key wrapped by the master key, the file
under ``$home/evidence``) with an ``evidence_items`` row of kind ``text``. So the same
rules hold for it as for the bytes: plaintext never touches the disk; destroying the row's
key destroys every copy; retention (benign decisions,
:func:`~bastion.evidence.vault.purge_due_media`), preservation
(:func:`bastion.evidence.preservation.preserve` copies it into the sealed metadata record
and stops its own clock), purge and master-key rotation cover it.

The document (:class:`KeptText`, ``format`` 1)::

    {"format": 1, "text": "..." | null, "title": "..." | null, "links": ["..."],
     "text_chars": 1234, "title_chars": 0, "max_chars": 100000}

``text`` and ``title`` are cut to ``max_chars`` code points each
(``Settings.review.kept_text_max_chars``); ``text_chars``/``title_chars`` are the
submitted lengths, so a cut is visible (:attr:`KeptText.truncated`) and recorded in the
``evidence.store`` audit event. ``links`` are bounded by the request's own limits (at
most 100 of at most 2,048 characters).

An item kept while no case is open (a keyword-only match, which the default policy only
scores) gets ``delete_after`` = now + ``review.benign_media_days``; one kept with its case
follows the case (benign decisions start the same clock; preservation stops it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.evidence.vault import EvidenceCorrupt, Sealed, Vault
from bastion.store.models_review import EvidenceItem

#: The document format written by this module.
FORMAT = 1


@dataclass(frozen=True, slots=True)
class KeptText:
    """An item's kept text (see the module docstring): ``text``/``title`` as kept (cut to
    ``max_chars`` code points), ``links`` as given, and the submitted lengths."""

    text: str | None
    title: str | None
    links: tuple[str, ...] = ()
    text_chars: int = 0
    title_chars: int = 0
    max_chars: int = 0

    @property
    def text_truncated(self) -> bool:
        """Whether ``text`` was cut."""
        return self.text is not None and self.text_chars > len(self.text)

    @property
    def title_truncated(self) -> bool:
        """Whether ``title`` was cut."""
        return self.title is not None and self.title_chars > len(self.title)

    @property
    def truncated(self) -> bool:
        """Whether anything was cut."""
        return self.text_truncated or self.title_truncated

    def to_json(self) -> dict[str, Any]:
        """The stored document."""
        return {"format": FORMAT, "text": self.text, "title": self.title,
                "links": list(self.links), "text_chars": self.text_chars,
                "title_chars": self.title_chars, "max_chars": self.max_chars}

    @classmethod
    def from_json(cls, obj: Any) -> KeptText:
        """Inverse of :meth:`to_json`. Raises :class:`EvidenceCorrupt` for anything else."""
        try:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise ValueError("unknown format")
            text, title, links = obj["text"], obj["title"], obj["links"]
            if not (text is None or isinstance(text, str)) or not (
                    title is None or isinstance(title, str)) or not isinstance(links, list) \
                    or not all(isinstance(x, str) for x in links):
                raise ValueError("wrong field types")
            return cls(text, title, tuple(links), int(obj["text_chars"]),
                       int(obj["title_chars"]), int(obj["max_chars"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvidenceCorrupt(f"a kept text is not a format-{FORMAT} document: "
                                  f"{exc}") from None


def kept_text_of(text: str | None, title: str | None, links: list[str] | tuple[str, ...],
                 *, max_chars: int) -> KeptText | None:
    """What is kept of an item's ``text``, ``title`` and ``links`` (None when it has none
    of them): ``text`` and ``title`` cut to ``max_chars`` code points each (> 0)."""
    if not text and not title and not links:
        return None
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    return KeptText(
        text=None if text is None else text[:max_chars],
        title=None if title is None else title[:max_chars],
        links=tuple(links), text_chars=len(text or ""), title_chars=len(title or ""),
        max_chars=max_chars)


@dataclass(slots=True)
class PendingText:
    """A kept text sealed in the vault (file written and synced) waiting for its row:
    :meth:`record` it in the verdict's transaction, or :meth:`discard` it if that fails."""

    vault: Vault
    kept: KeptText
    sealed: Sealed = field(repr=False)

    @classmethod
    def seal(cls, vault: Vault, kept: KeptText) -> PendingText:
        """Encrypt ``kept`` to a new vault file (before the transaction: no file sync
        while holding database locks)."""
        data = json.dumps(kept.to_json(), separators=(",", ":"))  # ASCII: \u escapes
        return cls(vault, kept, vault.seal(data.encode("ascii")))

    def record(self, session: Session, *, content_id: str, case_id: int | None, actor: str,
               delete_after: datetime | None) -> EvidenceItem:
        """Add the item's row (kind ``text``) and its audited ``evidence.store`` event (with
        ``truncated`` and the submitted lengths) to ``session``'s transaction."""
        return self.vault.record(
            session, self.sealed, content_id=content_id, case_id=case_id, actor=actor,
            delete_after=delete_after, kind="text",
            detail={"truncated": self.kept.truncated, "text_chars": self.kept.text_chars,
                    "title_chars": self.kept.title_chars, "links": len(self.kept.links)})

    def discard(self) -> None:
        """Delete the sealed file (its row was never committed)."""
        self.vault.discard(self.sealed)


def find_text(session: Session, content_id: str) -> EvidenceItem | None:
    """The newest live kept-text item of ``content_id``, or None."""
    return session.execute(
        select(EvidenceItem).where(EvidenceItem.content_id == content_id,
                                   EvidenceItem.kind == "text",
                                   EvidenceItem.wrapped_key.is_not(None))
        .order_by(EvidenceItem.id.desc()).limit(1)
    ).scalar_one_or_none()


def read_text(session: Session, vault: Vault, item_id: int) -> KeptText:
    """Decrypt a kept text in memory (callers audit who read it). Raises
    :class:`~bastion.errors.NotFound`, :class:`EvidenceCorrupt`."""
    data = vault.read(session, item_id)
    try:
        obj = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise EvidenceCorrupt(f"evidence item {item_id} is not a kept text") from None
    return KeptText.from_json(obj)
