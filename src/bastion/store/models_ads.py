"""SQLAlchemy models of classified-ad analysis (issue 8): the ads kept for network linking.

Table (created by migration ``0006_ads``; :mod:`bastion.store.models` imports this module so
that ``Base.metadata`` holds it too):

``ads``  one analysed ad: the platform's ``ad_id`` (the ``content_id`` when it came through
         ``POST /v1/content``), its text and title (needed to rebuild text links and the
         network's template), location, posting time, PDQ hashes of its photos, and the
         analysis result (score, indicators, contacts, lexicon version). The row id is the
         ad's arrival order: replaying rows by id rebuilds the same networks with the same
         ids (:mod:`bastion.trafficking.adstore`).

Unlike content verdicts, an ad's text is stored: linking near-duplicate ads needs it. Ads are
analysed only when the operator opts in (``ads_analysis``) or the request carries ad fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.models import Base, BigId
from bastion.store.types import UtcDateTime, utcnow


class StoredAd(Base):
    """One analysed ad (see the module docstring). ``pdq`` is a list of 64-hex hashes;
    ``result`` the ``bastion ads scan`` object without ``network_id``; ``source`` where the
    ad came from (``cli`` or ``api``)."""

    __tablename__ = "ads"
    __table_args__ = (UniqueConstraint("ad_id", name="uq_ads_ad_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ad_id: Mapped[str] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    location: Mapped[str | None] = mapped_column(String(256), nullable=True)
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    pdq: Mapped[list[str]] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
