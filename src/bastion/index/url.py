"""URL list matching: exact, prefix (path boundaries respected) and host-wide entries, and
look-alike hosts reported as ``confusable``.

Every lookup is a handful of dictionary probes, independent of the list size:

- ``exact``: one key per canonical URL without its scheme (``host[:port]path[?query]``),
  plus one with the query's parameters sorted for ``query_order=any`` entries;
- ``prefix``: the query path's ancestors at ``/`` boundaries (``/a/b`` tries ``/a/b``,
  ``/a/``, ``/a``, ``/``) and, under an entry with a query, its parameter boundaries;
- ``host``: the query host and each parent domain (``a.b.example`` tries ``a.b.example``,
  ``b.example``, ``example``);
- ``confusable``: each of those host suffixes' UTS #39 skeleton
  (:func:`bastion.signals.url.host_skeleton`) against the skeletons of listed hosts. A query
  whose host differs from a listed host but looks the same is reported as ``confusable``
  when it would match that entry with the listed host put in its place; the match names
  the entry, the listed host and the query's host.

Scheme rules: an entry's ``scheme`` (``any``, ``http``, ``https``) must admit the query's;
a URL found without a scheme (``example.com/x`` in a post) could be either and is admitted
by every rule.

Updates are in place (:meth:`UrlIndex.add`, :meth:`UrlIndex.remove`), visible to the next
:meth:`UrlIndex.match` call; readers need no lock (each update replaces whole dictionary
values), writers are serialised by one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from bastion.errors import LimitExceeded
from bastion.signals.url import (
    CanonicalUrl,
    UrlEntry,
    host_skeleton,
    host_to_unicode,
    parse_url,
)

K = TypeVar("K", bound=Hashable)

#: Most entries one index holds (about 1 KB each with its keys); more is refused.
MAX_URL_ENTRIES = 10_000_000

UrlMatchKind = Literal["exact", "prefix", "host", "confusable"]


@dataclass(frozen=True, slots=True)
class UrlMatch(Generic[K]):
    """One list entry matched by one URL.

    ``key`` is the caller's id for the entry; ``kind`` is the entry's match mode, or
    ``confusable`` for a look-alike host; ``canonical`` is the query's canonical URL and
    ``listed`` the entry's; for ``confusable``, ``host`` is the query's host and
    ``listed_host`` the entry's, both in display (Unicode) form.
    """

    key: K
    kind: UrlMatchKind
    canonical: str
    listed: str
    host: str | None = None
    listed_host: str | None = None

    def to_json(self) -> dict[str, object]:
        """``{"kind", "canonical", "listed"[, "host", "listed_host"]}`` (key left out)."""
        out: dict[str, object] = {
            "kind": self.kind,
            "canonical": self.canonical,
            "listed": self.listed,
        }
        if self.host is not None:
            out["host"] = self.host
            out["listed_host"] = self.listed_host
        return out


def _scheme_ok(rule: str, scheme: str | None) -> bool:
    return rule == "any" or scheme is None or rule == scheme


def _rest(url: CanonicalUrl, *, sorted_query: bool = False) -> str:
    """The canonical URL without its scheme: ``authority path [? query]``."""
    q = url.sorted_query() if sorted_query else url.query
    return url.authority + url.path + (f"?{q}" if q is not None else "")


def _path_prefixes(path: str) -> Iterator[str]:
    """``/a/b`` -> ``/a/b``, ``/a/``, ``/a``, ``/`` (each prefix ending at a ``/`` boundary)."""
    seen = {path}
    yield path
    i = path.rfind("/")
    while i >= 0:
        for cand in (path[: i + 1], path[:i]):
            if cand and cand not in seen:
                seen.add(cand)
                yield cand
        i = path.rfind("/", 0, i)


def _query_prefixes(query: str) -> Iterator[str]:
    """``a=1&b=2`` -> ``a=1&b=2``, ``a=1`` (prefixes at parameter boundaries)."""
    yield query
    i = query.rfind("&")
    while i > 0:
        yield query[:i]
        i = query.rfind("&", 0, i)


class UrlIndex(Generic[K]):
    """In-memory URL list matcher (module docstring). Entries are keyed by the caller's
    hashable ``key`` (e.g. ``(bank_id, entry_id)``); adding a key again replaces it.

    >>> from bastion.signals.url import parse_url_entry
    >>> idx: UrlIndex[str] = UrlIndex()
    >>> idx.add("e1", parse_url_entry("example.com/a", match="prefix"))
    >>> [m.kind for m in idx.match("https://EXAMPLE.com/a/b?x=1")]
    ['prefix']
    """

    def __init__(self, *, max_entries: int = MAX_URL_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, UrlEntry] = {}
        self._exact: dict[str, tuple[K, ...]] = {}
        self._exact_any: dict[str, tuple[K, ...]] = {}
        self._prefix: dict[str, tuple[K, ...]] = {}
        self._host: dict[str, tuple[K, ...]] = {}
        self._skeletons: dict[str, tuple[str, ...]] = {}
        self._host_refs: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    # -- updates ---------------------------------------------------------------------

    @staticmethod
    def _slots(entry: UrlEntry) -> list[tuple[str, str]]:
        u = entry.url
        if entry.match == "host":
            return [("host", u.authority)]
        if entry.match == "prefix":
            return [("prefix", _rest(u))]
        if entry.query_order == "any" and u.query is not None:
            return [("exact_any", _rest(u, sorted_query=True))]
        return [("exact", _rest(u))]

    def _table(self, name: str) -> dict[str, tuple[K, ...]]:
        return {
            "host": self._host,
            "prefix": self._prefix,
            "exact": self._exact,
            "exact_any": self._exact_any,
        }[name]

    def add(self, key: K, entry: UrlEntry) -> None:
        """Add (or replace) one entry; visible to the next :meth:`match`.

        Raises :class:`LimitExceeded` past ``max_entries``.
        """
        with self._lock:
            if key in self._entries:
                self._remove_locked(key)
            elif len(self._entries) >= self._max_entries:
                raise LimitExceeded(f"URL index holds {self._max_entries} entries already")
            self._entries[key] = entry
            for table, slot in self._slots(entry):
                t = self._table(table)
                t[slot] = (*t.get(slot, ()), key)
            host = entry.url.host
            n = self._host_refs.get(host, 0)
            self._host_refs[host] = n + 1
            if n == 0:
                sk = host_skeleton(host)
                self._skeletons[sk] = (*self._skeletons.get(sk, ()), host)

    def add_many(self, items: Iterable[tuple[K, UrlEntry]]) -> None:
        """Add many entries (a bank load); same rules as :meth:`add`."""
        for key, entry in items:
            self.add(key, entry)

    def remove(self, key: K) -> bool:
        """Remove one entry; returns whether it was there. Visible to the next match."""
        with self._lock:
            return self._remove_locked(key)

    def _remove_locked(self, key: K) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        for table, slot in self._slots(entry):
            t = self._table(table)
            rest = tuple(k for k in t.get(slot, ()) if k != key)
            if rest:
                t[slot] = rest
            else:
                t.pop(slot, None)
        host = entry.url.host
        n = self._host_refs[host] - 1
        if n:
            self._host_refs[host] = n
        else:
            del self._host_refs[host]
            sk = host_skeleton(host)
            hosts = tuple(h for h in self._skeletons.get(sk, ()) if h != host)
            if hosts:
                self._skeletons[sk] = hosts
            else:
                self._skeletons.pop(sk, None)
        return True

    # -- lookups ---------------------------------------------------------------------

    def match(self, url: CanonicalUrl | str) -> list[UrlMatch[K]]:
        """Every entry that ``url`` matches, exact/prefix/host first, then look-alikes.

        ``url`` may be canonical or any string :func:`~bastion.signals.url.parse_url`
        accepts (raising :class:`InvalidInput` if it does not).
        """
        if isinstance(url, str):
            url = parse_url(url)
        out: list[UrlMatch[K]] = []
        seen: set[K] = set()
        self._direct(url, url, out, seen, None)
        self._confusable(url, out, seen)
        return out

    def _direct(
        self,
        url: CanonicalUrl,
        reported: CanonicalUrl,
        out: list[UrlMatch[K]],
        seen: set[K],
        lookalike: tuple[str, str] | None,
    ) -> None:
        canonical = str(reported)
        found: list[tuple[tuple[K, ...], UrlMatchKind]] = []
        rest = _rest(url)
        if self._exact:
            keys = self._exact.get(rest)
            if keys:
                found.append((keys, "exact"))
        if self._exact_any and url.query is not None:
            keys = self._exact_any.get(_rest(url, sorted_query=True))
            if keys:
                found.append((keys, "exact"))
        if self._prefix:
            prefix = self._prefix
            base = url.authority
            if url.query is not None:
                for q in _query_prefixes(url.query):
                    keys = prefix.get(f"{base}{url.path}?{q}")
                    if keys:
                        found.append((keys, "prefix"))
            for p in _path_prefixes(url.path):
                keys = prefix.get(base + p)
                if keys:
                    found.append((keys, "prefix"))
        if self._host:
            hosts = self._host
            port = "" if url.port is None else f":{url.port}"
            labels = url.host.split(".")
            for i in range(len(labels)):
                h = ".".join(labels[i:])
                keys = hosts.get(h)
                if keys:
                    found.append((keys, "host"))
                if port:
                    keys = hosts.get(h + port)
                    if keys:
                        found.append((keys, "host"))
        entries = self._entries
        for keys, kind in found:
            for k in keys:
                entry = entries.get(k)
                if entry is None or k in seen or not _scheme_ok(entry.scheme, url.scheme):
                    continue
                seen.add(k)
                if lookalike is None:
                    out.append(UrlMatch(k, kind, canonical, entry.value))
                else:
                    out.append(
                        UrlMatch(k, "confusable", canonical, entry.value, *lookalike)
                    )

    def _confusable(self, url: CanonicalUrl, out: list[UrlMatch[K]], seen: set[K]) -> None:
        if not self._skeletons or url.host.startswith("["):
            return
        labels = url.host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            listed_hosts = self._skeletons.get(host_skeleton(suffix))
            if not listed_hosts:
                continue
            for listed in listed_hosts:
                if listed == suffix:
                    continue
                swapped = url.with_host(".".join([*labels[:i], listed]))
                pair = (host_to_unicode(url.host), host_to_unicode(listed))
                self._direct(swapped, url, out, seen, pair)
