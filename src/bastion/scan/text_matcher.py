"""The text matcher: posts, messages, profiles and links against URL lists and keyword lists.

One :class:`TextMatcher` per process (next to the hash :class:`~bastion.scan.matcher.Matcher`
in :class:`~bastion.scan.service.MatchService`) holds every enabled ``url`` and ``keyword``
bank entry in two in-memory indexes keyed by entry id:

==================  ==========================================================================
index               holds
==================  ==========================================================================
``url``             :class:`~bastion.index.url.UrlIndex`: exact, prefix and host entries, and
                    look-alike hosts reported as ``confusable``
``keyword``         :class:`~bastion.index.keyword.KeywordIndex`: every keyword list at once
                    (Aho-Corasick over normalised text, spans in the original)
==================  ==========================================================================

It is built from the store (:func:`bastion.store.change_log.read_snapshot`, url and keyword
entries only) and kept fresh in place with the bank change log (:meth:`TextMatcher.apply`,
the contract of :mod:`bastion.store.change_log`, the same as
:meth:`bastion.scan.matcher.Matcher.apply`); hash entries in the log are ignored here.

Matching one text item (:meth:`TextMatcher.match_text`): URLs are found in the text
(:func:`bastion.signals.url.extract_urls`: ``http(s)://``, ``www.``, bare ``name.tld/path``,
defanged forms) and looked up with their span; links given apart from the text (an API
``links`` list) are parsed and looked up without a span; the text is matched against every
keyword list. Each hit is one :class:`~bastion.scan.matcher.Match` with ``distance`` 0 and
``span``/``matched``/``entry``/``kind``/``canonical`` set (see its docstring).

Limits (:class:`bastion.config.Limits`): ``max_text_chars`` per text, ``max_url_chars`` per
URL, ``max_urls_per_text`` URLs found in plus given with one text. Over a limit the item is
refused whole (:class:`~bastion.errors.LimitExceeded`), never matched in part; a given link
that is not an http(s) URL is :class:`~bastion.errors.InvalidInput`. Batch callers
(:meth:`TextMatcher.match_many`) get the reason per item instead.

While the first load is running, matching raises :class:`~bastion.errors.NotReady`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bastion.config import Limits
from bastion.errors import BastionError, InvalidInput, LimitExceeded, NotReady
from bastion.index.keyword import KeywordIndex, KeywordMatch
from bastion.index.url import UrlIndex, UrlMatch
from bastion.scan.changes import apply_changes
from bastion.scan.matcher import Match
from bastion.signals.keyword import KEYWORD_MATCH_MODES, KeywordEntry, parse_keyword_entry
from bastion.signals.url import UrlEntry, extract_urls, parse_url, parse_url_entry
from bastion.store.change_log import Change, ChangeCursor, Snapshot, read_snapshot
from bastion.store.database import Database
from bastion.store.records import BankRecord, EntryRecord

log = logging.getLogger(__name__)

#: The signal types this matcher holds.
TEXT_SIGNAL_TYPES: Final = ("url", "keyword")


def url_entry_of(rec: EntryRecord) -> UrlEntry:
    """The :class:`UrlEntry` of a stored ``url`` entry: its canonical value with its
    ``options`` (defaults when None). Raises :class:`InvalidInput` if they do not parse."""
    opts = rec.options or {}
    return parse_url_entry(
        rec.value,
        match=opts.get("match"),
        scheme=opts.get("scheme"),
        query_order=opts.get("query_order"),
    )


def keyword_entry_of(rec: EntryRecord) -> KeywordEntry:
    """The :class:`KeywordEntry` of a stored ``keyword`` entry (its value is already the
    canonical term; options as stored by :func:`bastion.banks.values.check_options`).
    Raises :class:`InvalidInput` for options that are not."""
    opts = rec.options or {}
    match = opts.get("match") or "word"
    language = opts.get("language")
    collapse = opts.get("collapse_repeats", False)
    if (
        match in KEYWORD_MATCH_MODES
        and isinstance(collapse, bool)
        and (language is None or isinstance(language, str))
    ):
        return KeywordEntry(rec.value, match, language, collapse)
    return parse_keyword_entry(
        rec.value, match=str(match), language=language, collapse_repeats=collapse
    )


@dataclass(frozen=True, slots=True)
class _Meta:
    """What a match needs of one indexed entry (and what tells an update from a no-op)."""

    bank_id: int
    signal_type: str
    value: str
    classification: str | None
    options: dict[str, Any] | None


@dataclass(slots=True)
class _State:
    """One generation of the indexes (swapped whole by a load, updated in place after)."""

    urls: UrlIndex[int]
    keywords: KeywordIndex[int]
    meta: dict[int, _Meta] = field(default_factory=dict)
    by_bank: dict[int, set[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextItem:
    """One item to match: ``text`` and ``links`` given apart from it (may be empty)."""

    text: str
    links: tuple[str, ...] = ()


@dataclass(slots=True)
class TextOutcome:
    """The matches of one item, or why it could not be scanned (``reason``; then
    ``matches`` is empty: an item is never matched in part)."""

    matches: list[Match]
    reason: str | None = None


class TextMatcher:
    """In-memory URL and keyword indexes of every enabled ``url``/``keyword`` bank entry,
    updated in place from the change log (module docstring).

    Thread-safe: :meth:`apply` and the ``match_*`` methods may run concurrently (the indexes
    are safe for concurrent search and update; one lock serialises updates).

    >>> tm = TextMatcher(); tm.load_from_store(db)                   # doctest: +SKIP
    >>> [m.to_json()["matched"] for m in tm.match_text("see e x a m p l e")]  # doctest: +SKIP
    ['e x a m p l e']
    """

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._banks: dict[int, BankRecord] = {}
        self._state = self._empty_state()
        #: Stored entries whose options could not be read (logged; never matched).
        self.unusable: dict[int, str] = {}

    def _empty_state(self) -> _State:
        return _State(UrlIndex(), KeywordIndex(max_chars=self.limits.max_text_chars))

    # -- state --

    @property
    def ready(self) -> bool:
        """True once the first load is done."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until ready (or ``timeout`` seconds); returns :attr:`ready`."""
        return self._ready.wait(timeout)

    def stats(self) -> dict[str, int]:
        """Live entries per index: ``{"url": n, "keyword": n}``."""
        s = self._state
        return {"url": len(s.urls), "keyword": len(s.keywords)}

    def enabled_banks(self) -> list[BankRecord]:
        """The enabled banks known."""
        with self._lock:
            return [b for b in self._banks.values() if b.enabled]

    # -- loading and following --

    def load_snapshot(self, snapshot: Snapshot) -> None:
        """Build both indexes from an in-memory ``snapshot`` and mark the matcher ready."""
        self._install(snapshot.banks, snapshot.entries)

    def load_from_store(self, db: Database) -> ChangeCursor:
        """Build both indexes from the store's enabled url and keyword entries (read in one
        snapshot), mark the matcher ready, and return the change-log cursor consistent with
        what was loaded. A caller that already follows the log from an *earlier* cursor may
        ignore this one and apply its changes on top: every change is a "set state" of one
        object, so replaying older changes over a newer load ends in the same state."""
        records: list[EntryRecord] = []
        banks, cursor = read_snapshot(db, records.extend, signal_types=TEXT_SIGNAL_TYPES)
        self._install(banks, records)
        return cursor

    def _install(self, banks: dict[int, BankRecord], records: Iterable[EntryRecord]) -> None:
        state = self._empty_state()
        enabled = {b.id for b in banks.values() if b.enabled}
        url_items: list[tuple[int, UrlEntry]] = []
        kw_items: list[tuple[int, KeywordEntry]] = []
        unusable: dict[int, str] = {}
        for rec in records:
            if not rec.enabled or rec.bank_id not in enabled:
                continue
            if rec.signal_type not in TEXT_SIGNAL_TYPES:
                continue
            try:
                if rec.signal_type == "url":
                    url_items.append((rec.id, url_entry_of(rec)))
                else:
                    kw_items.append((rec.id, keyword_entry_of(rec)))
            except InvalidInput as exc:
                unusable[rec.id] = exc.message
                continue
            state.meta[rec.id] = _meta_of(rec)
            state.by_bank.setdefault(rec.bank_id, set()).add(rec.id)
        state.urls.add_many(url_items)
        state.keywords.add_many(kw_items)
        for entry_id, why in unusable.items():
            log.warning("bank entry %s cannot be matched: %s", entry_id, why)
        with self._lock:
            self._banks = dict(banks)
            self._state = state
            self.unusable = unusable
            self._ready.set()

    def apply(self, changes: Iterable[Change]) -> int:
        """Apply change-log changes in place (the contract in
        :mod:`bastion.store.change_log`); returns how many were applied."""
        with self._lock:
            return apply_changes(
                changes, self._banks, upsert=self._upsert, remove=self._remove,
                drop_bank=self._drop_bank,
            )

    def _upsert(self, rec: EntryRecord) -> None:
        if rec.signal_type not in TEXT_SIGNAL_TYPES:
            return
        bank = self._banks.get(rec.bank_id)
        state = self._state
        if bank is None or not bank.enabled or not rec.enabled:
            self._remove(rec.id)
            return
        meta = _meta_of(rec)
        old = state.meta.get(rec.id)
        if (
            old is not None
            and (old.signal_type, old.value, old.options, old.bank_id)
            == (meta.signal_type, meta.value, meta.options, meta.bank_id)
        ):
            state.meta[rec.id] = meta  # descriptive change only (classification ...)
            return
        try:
            url_entry = url_entry_of(rec) if rec.signal_type == "url" else None
            kw_entry = keyword_entry_of(rec) if rec.signal_type == "keyword" else None
        except InvalidInput as exc:
            log.warning("bank entry %s cannot be matched: %s", rec.id, exc.message)
            self._remove(rec.id)
            self.unusable[rec.id] = exc.message
            return
        self._remove(rec.id)
        if url_entry is not None:
            state.urls.add(rec.id, url_entry)
        elif kw_entry is not None:
            state.keywords.add(rec.id, kw_entry)
        state.meta[rec.id] = meta
        state.by_bank.setdefault(rec.bank_id, set()).add(rec.id)

    def _remove(self, entry_id: int) -> None:
        state = self._state
        self.unusable.pop(entry_id, None)
        meta = state.meta.pop(entry_id, None)
        if meta is None:
            return
        if meta.signal_type == "url":
            state.urls.remove(entry_id)
        else:
            state.keywords.remove(entry_id)
        ids = state.by_bank.get(meta.bank_id)
        if ids is not None:
            ids.discard(entry_id)
            if not ids:
                del state.by_bank[meta.bank_id]

    def _drop_bank(self, bank_id: int) -> None:
        for entry_id in list(self._state.by_bank.get(bank_id, ())):
            self._remove(entry_id)

    # -- matching --

    def _require_ready(self) -> None:
        if not self._ready.is_set():
            raise NotReady("URL and keyword indexes are still loading; try again shortly")

    def check_item(self, item: TextItem) -> None:
        """Check one item against the limits before any matching. Raises
        :class:`LimitExceeded` or :class:`InvalidInput` (a link that is not a string)."""
        lim = self.limits
        if not isinstance(item.text, str):
            raise InvalidInput("text must be a string")
        if len(item.text) > lim.max_text_chars:
            raise LimitExceeded(
                f"text of {len(item.text)} characters is over the limit of {lim.max_text_chars}"
            )
        if len(item.links) > lim.max_urls_per_text:
            raise LimitExceeded(
                f"{len(item.links)} links given, over the limit of {lim.max_urls_per_text}"
            )
        for i, link in enumerate(item.links):
            if not isinstance(link, str):
                raise InvalidInput(f"link {i} must be a string")

    def _url_matches(self, state: _State, item: TextItem) -> list[Match]:
        lim = self.limits
        found = extract_urls(
            item.text,
            max_chars=lim.max_text_chars,
            max_urls=max(lim.max_urls_per_text - len(item.links), 0),
            max_url_chars=lim.max_url_chars,
        )
        out: list[Match] = []
        for f in found:
            for um in state.urls.match(f.url):
                m = self._url_match(state, um, f.span, f.matched)
                if m is not None:
                    out.append(m)
        for i, link in enumerate(item.links):
            try:
                url = parse_url(link, max_chars=lim.max_url_chars)
            except LimitExceeded:
                raise LimitExceeded(
                    f"link {i} is longer than {lim.max_url_chars} characters"
                ) from None
            except InvalidInput as exc:
                raise InvalidInput(f"link {i} is not an http(s) URL: {exc.message}") from None
            for um in state.urls.match(url):
                m = self._url_match(state, um, None, link)
                if m is not None:
                    out.append(m)
        return out

    def _base(self, state: _State, entry_id: int) -> tuple[_Meta, BankRecord] | None:
        meta = state.meta.get(entry_id)
        if meta is None:
            return None
        bank = self._banks.get(meta.bank_id)
        if bank is None or not bank.enabled:
            return None
        return meta, bank

    def _url_match(
        self, state: _State, um: UrlMatch[int], span: tuple[int, int] | None, matched: str
    ) -> Match | None:
        got = self._base(state, um.key)
        if got is None:
            return None
        meta, bank = got
        return Match(
            bank=bank.name, bank_id=bank.id, entry_id=um.key, signal_type="url", distance=0,
            label=bank.label, classification=meta.classification,
            auto_action=bank.auto_action, span=span, matched=matched, entry=um.listed,
            kind=um.kind, canonical=um.canonical, host=um.host, listed_host=um.listed_host,
        )

    def _keyword_match(self, state: _State, km: KeywordMatch[int]) -> Match | None:
        got = self._base(state, km.key)
        if got is None:
            return None
        meta, bank = got
        return Match(
            bank=bank.name, bank_id=bank.id, entry_id=km.key, signal_type="keyword",
            distance=0, label=bank.label, classification=meta.classification,
            auto_action=bank.auto_action, span=km.span, matched=km.matched, entry=km.term,
            kind=km.mode,
        )

    def match_many(self, items: Sequence[TextItem]) -> list[TextOutcome]:
        """Match many items at once (keyword lists are searched in one batch: much faster
        than one by one for short texts). Each outcome holds the item's matches by position
        (links given apart last), or the reason it was not scanned (over a limit, a link
        that is not an http(s) URL). Raises :class:`NotReady` while loading."""
        self._require_ready()
        state = self._state
        outcomes = [TextOutcome([]) for _ in items]
        good: list[int] = []
        for i, item in enumerate(items):
            try:
                self.check_item(item)
                if len(state.urls):
                    outcomes[i].matches.extend(self._url_matches(state, item))
            except BastionError as exc:
                outcomes[i] = TextOutcome([], exc.message)
                continue
            good.append(i)
        if len(state.keywords) and good:
            results = state.keywords.match_many([items[i].text for i in good])
            for i, kms in zip(good, results, strict=True):
                for km in kms:
                    m = self._keyword_match(state, km)
                    if m is not None:
                        outcomes[i].matches.append(m)
        for o in outcomes:
            o.matches.sort(key=_position)
        return outcomes

    def match_text(self, text: str, links: Sequence[str] = ()) -> list[Match]:
        """Every match of one text item and the links given with it, by position (links
        given apart last). Raises :class:`NotReady` while loading,
        :class:`LimitExceeded` over a limit, :class:`InvalidInput` for a link that is not
        an http(s) URL."""
        self._require_ready()
        item = TextItem(text, tuple(links))
        self.check_item(item)
        state = self._state
        out = self._url_matches(state, item) if len(state.urls) else []
        if len(state.keywords):
            for km in state.keywords.match(text):
                m = self._keyword_match(state, km)
                if m is not None:
                    out.append(m)
        out.sort(key=_position)
        return out


def _meta_of(rec: EntryRecord) -> _Meta:
    return _Meta(rec.bank_id, rec.signal_type, rec.value, rec.classification, rec.options)


def _position(m: Match) -> tuple[int, int, int, str, int]:
    if m.span is None:
        return (1, 0, 0, m.bank, m.entry_id)
    return (0, m.span[0], m.span[1], m.bank, m.entry_id)
