"""Analysed ads kept in Bastion's main store, and their networks rebuilt from it.

:class:`AdRepository` is what ``bastion ads scan``/``networks`` and ``POST /v1/content`` (for
ads) share::

    repo = AdRepository(db)                       # networks load lazily from the ``ads`` table
    with db.write() as session:
        kept = repo.keep(session, ad, result, source="api")   # result with its network_id
    repo.networks().summaries()

Rows of :class:`~bastion.store.models_ads.StoredAd` are the ads in arrival order (row id).
Networks are not stored: on first use the repository replays the rows by id into a fresh
:class:`~bastion.trafficking.networks.AdNetworks` (one incremental add per ad, same networks
and ids as when they arrived: a network is named after its oldest ad's row id), and before
each new ad it catches up on rows other processes stored since (re-reading the last
:data:`CATCH_UP_WINDOW` ids, so a row committed late, out of id order, is still picked up; in
that case this process's network ids may differ from a replay's until it restarts). When the
surrounding transaction fails, :meth:`discard` drops the in-memory networks, which are
rebuilt on next use.

Deleting ads (the purge of an item, :func:`delete_ads`) changes the store's ads generation
(``store_meta``); every repository, in any process, notices on its next use and rebuilds its
networks without them (ids of networks whose oldest ad is gone change; the rest stay).

One repository per database in a process (:func:`shared_repository`): the API's content
service and the review UI's network pages read the same in-memory networks. Readers go through
:meth:`AdRepository.read` (the repository's lock held, networks caught up first), because the
networks change while ads arrive.

The active lexicon stays a file: ``$BASTION_HOME/ads/lexicon.toml`` when ``bastion ads fit``
wrote one, else the shipped ``v1`` (:func:`active_lexicon`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.store.models import StoreMeta
from bastion.store.models_ads import StoredAd
from bastion.trafficking.lexicon import Lexicon, load_lexicon
from bastion.trafficking.networks import AdNetworks, Overview, Spread
from bastion.trafficking.schemas import Ad, AdResult, Contact, Indicator
from bastion.trafficking.service import network_ad

#: Ids below the newest loaded one that a catch-up reads again (rows committed out of order).
CATCH_UP_WINDOW = 1_000
#: Rows read per query while replaying.
_REPLAY_CHUNK = 5_000

T = TypeVar("T")
#: ``store_meta`` key whose value changes whenever stored ads are deleted.
GENERATION_KEY = "ads.generation"
_SHARED_LOCK = threading.Lock()
#: The attribute of a database object that holds its shared repository.
_SHARED_ATTR = "_bastion_ad_repository"


def shared_repository(db: Any) -> AdRepository:
    """This process's :class:`AdRepository` of ``db`` (created on first use and kept on
    the database object, so it lives and dies with it), so that the API and the review UI
    share one copy of the networks."""
    with _SHARED_LOCK:
        repo = getattr(db, _SHARED_ATTR, None)
        if not isinstance(repo, AdRepository):
            repo = AdRepository(db)
            setattr(db, _SHARED_ATTR, repo)
        return repo


def delete_ads(session: Session, ad_ids: list[str]) -> int:
    """Delete the stored ads ``ad_ids`` (in ``session``'s transaction) and, when any was
    stored, change the ads generation so that every repository rebuilds its networks
    without them. Returns the number of ads deleted."""
    if not ad_ids:
        return 0
    gone = 0
    for k in range(0, len(ad_ids), 500):
        result = session.execute(
            delete(StoredAd).where(StoredAd.ad_id.in_(ad_ids[k : k + 500])))
        gone += int(getattr(result, "rowcount", 0) or 0)
    if gone:
        row = session.get(StoreMeta, GENERATION_KEY, with_for_update=True)
        value = secrets.token_hex(8)
        if row is None:
            session.add(StoreMeta(key=GENERATION_KEY, value=value))
        else:
            row.value = value
        session.flush()
    return gone


def _generation(session: Session) -> str:
    value = session.execute(
        select(StoreMeta.value).where(StoreMeta.key == GENERATION_KEY)).scalar_one_or_none()
    return value or ""


def ads_dir(home: Path) -> Path:
    """The folder of ad files (the fitted lexicon) under the data directory ``home``."""
    return home / "ads"


def active_lexicon(home: Path) -> Lexicon:
    """``$BASTION_HOME/ads/lexicon.toml`` if ``bastion ads fit`` wrote one, else ``v1``.
    Raises InvalidInput for a malformed lexicon file."""
    path = ads_dir(home) / "lexicon.toml"
    return load_lexicon(path if path.is_file() else None)


def result_json(result: AdResult) -> dict[str, Any]:
    """What is stored of a result: the scan object without ``network_id`` and ``ad_id``."""
    out = result.to_json()
    out.pop("network_id", None)
    out.pop("ad_id", None)
    return out


def result_from_row(row: StoredAd, network_id: str | None = None) -> AdResult:
    """The :class:`AdResult` of a stored row. Raises InvalidInput for a corrupt row."""
    obj = row.result
    try:
        inds = tuple(
            Indicator(i["id"], (int(i["span"][0]), int(i["span"][1])), float(i["weight"]),
                      i["source"], i["evidence"], i["category"], i.get("matched", ""),
                      i.get("field", "text"))
            for i in obj.get("indicators", [])
        )
        contacts = tuple(Contact.from_json(c) for c in obj.get("contacts", []))
        return AdResult(row.ad_id, float(row.score), inds, contacts,
                        str(obj.get("lexicon_version", "")), network_id,
                        tuple(obj.get("notes", [])))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InvalidInput(f"stored ad {row.ad_id!r} is corrupt: {exc}") from exc


def ad_from_row(row: StoredAd) -> Ad:
    """The :class:`Ad` of a stored row."""
    return Ad(ad_id=row.ad_id, text=row.text, title=row.title, location=row.location,
              posted_at=row.posted_at, pdq=tuple(row.pdq or ()))


class AdRepository:
    """Ads in the main store and their in-memory networks (see the module docstring).

    ``db`` is a :class:`~bastion.store.database.Database`; ``keep_text=False`` keeps ad texts
    out of memory (networks then have no template). Thread-safe: one lock serialises linking.
    """

    def __init__(self, db: Any, *, keep_text: bool = True) -> None:
        self.db = db
        self.keep_text = keep_text
        self._lock = threading.RLock()
        self._networks: AdNetworks | None = None
        self._last_id = 0
        self._overview: tuple[int, int, list[Overview]] | None = None
        self._generation = ""

    def _load(self, session: Session) -> AdNetworks:
        generation = _generation(session)
        if self._networks is not None and generation != self._generation:
            self._networks = None  # ads were deleted: rebuild without them
            self._overview = None
        if self._networks is None:
            self._networks = AdNetworks(keep_text=self.keep_text)
            self._last_id = 0
            self._generation = generation
        nets = self._networks
        low = max(0, self._last_id - CATCH_UP_WINDOW)
        while True:
            # ids first: the window's rows are mostly loaded already (reading whole rows,
            # texts and results, for them cost tens of milliseconds per call)
            heads = session.execute(
                select(StoredAd.id, StoredAd.ad_id).where(StoredAd.id > low)
                .order_by(StoredAd.id).limit(_REPLAY_CHUNK)
            ).all()
            if not heads:
                return nets
            missing = [row_id for row_id, ad_id in heads if ad_id not in nets]
            if missing:
                rows = session.execute(
                    select(StoredAd).where(StoredAd.id.in_(missing)).order_by(StoredAd.id)
                ).scalars().all()
                for row in rows:
                    if row.ad_id not in nets:
                        nets.add(replace(network_ad(ad_from_row(row), result_from_row(row)),
                                         key=row.id))
            low = heads[-1][0]
            self._last_id = max(self._last_id, low)

    def networks(self, session: Session | None = None) -> AdNetworks:
        """The networks of every stored ad (loading or catching up first)."""
        with self._lock:
            if session is not None:
                return self._load(session)
            with self.db.read() as s:
                return self._load(s)

    def read(self, fn: Callable[[AdNetworks], T], session: Session | None = None) -> T:
        """``fn(networks)`` with the lock held, after catching up on stored ads (in
        ``session``, else a new read session). ``fn`` must not keep the networks."""
        with self._lock:
            if session is not None:
                return fn(self._load(session))
            with self.db.read() as s:
                return fn(self._load(s))

    def current_network_id(self, session: Session, ad_id: str) -> str | None:
        """The network ``ad_id`` is in now (merges followed), or None for an ad not
        stored."""
        with self._lock:
            nets = self._load(session)
            return nets.network_of(ad_id) if ad_id in nets else None

    def overview(self, session: Session | None = None, *, min_size: int = 2) -> list[Overview]:
        """:meth:`AdNetworks.overview` (cached until the next ad arrives)."""

        def build(nets: AdNetworks) -> list[Overview]:
            key = (len(nets), min_size)
            if self._overview is None or self._overview[:2] != key:
                self._overview = (*key, nets.overview(min_size=min_size))
            return self._overview[2]

        return self.read(build, session)

    def get(self, session: Session, ad_id: str) -> AdResult | None:
        """The stored result of ``ad_id`` with its current network id, or None."""
        row = session.execute(
            select(StoredAd).where(StoredAd.ad_id == ad_id)).scalar_one_or_none()
        if row is None:
            return None
        with self._lock:
            nets = self._load(session)
            return result_from_row(row, nets.network_of(ad_id) if ad_id in nets else None)

    def count(self, session: Session) -> int:
        """Stored ads."""
        return int(session.execute(select(func.count()).select_from(StoredAd)).scalar_one())

    def keep(self, session: Session, ad: Ad, result: AdResult, *, source: str) -> AdResult:
        """Store ``ad`` with ``result`` in ``session``'s transaction, link it, and return the
        result with its ``network_id``. Raises Conflict when ``ad_id`` is stored already.
        Call :meth:`discard` if the transaction then fails."""
        with self._lock:
            nets = self._load(session)
            if ad.ad_id in nets:
                raise Conflict(f"ad {ad.ad_id!r} is already stored")
            row = StoredAd(
                ad_id=ad.ad_id, text=ad.text, title=ad.title, location=ad.location,
                posted_at=ad.posted_at, pdq=list(ad.pdq), score=result.score,
                result=result_json(result), source=source[:16],
            )
            session.add(row)
            session.flush()
            network_id = nets.add(replace(network_ad(ad, result), key=row.id))
            self._last_id = max(self._last_id, row.id)
            return AdResult(result.ad_id, result.score, result.indicators, result.contacts,
                            result.lexicon_version, network_id, result.notes)

    def network_size(self, network_id: str) -> tuple[int, int]:
        """``(ads, distinct cities)`` of a loaded network. Raises NotFound."""
        sp = self.spread(network_id)
        return sp.ads, sp.cities

    def spread(self, network_id: str) -> Spread:
        """Ads, cities and days of a loaded network (see :meth:`AdNetworks.spread`).
        Raises NotFound."""
        with self._lock:
            if self._networks is None:
                raise NotFound(f"no network {network_id!r}")
            return self._networks.spread(network_id)

    def policy_facts(self, network_id: str) -> dict[str, float]:
        """The policy's network values of a loaded network: ``ads_network_size`` (ads),
        ``ads_network_cities`` (distinct cities) and ``ads_network_days`` (days from its first
        to its last posting). Raises NotFound."""
        sp = self.spread(network_id)
        return {"ads_network_size": float(sp.ads), "ads_network_cities": float(sp.cities),
                "ads_network_days": sp.days}

    def discard(self) -> None:
        """Forget the in-memory networks (after a failed transaction); rebuilt on next use."""
        with self._lock:
            self._networks = None
            self._last_id = 0
            self._overview = None
