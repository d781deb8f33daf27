"""Keyword list matching: every list at once, on normalised text, spans in the original.

Texts are normalised (:mod:`bastion.signals.text`, in batches), encoded as UTF-8 and searched
with Aho-Corasick automata per group of entries (``ahocorasick_rs``, DFAs, all overlapping
occurrences, terms written in ASCII and the others in two automata: see :class:`_Automaton`;
A. V. Aho and M. J. Corasick, "Efficient string matching", CACM 18(6), 1975). Entries that
ask for ``collapse_repeats`` are searched in a second copy of the text with repeated
characters collapsed. A hit is kept when the entry's mode allows it:

- ``word``: the characters on both sides of the occurrence are not word characters of a
  script written with spaces, where the term's own edge character is one (so ``example`` is
  not found in ``examples``, but Chinese, Japanese and Thai terms, and emoji, are found
  anywhere);
- ``prefix``: as ``word`` on the left side only;
- ``substring``: always.

A term containing ``l`` is also searched with every ``l`` read as ``i`` (``1`` in ``k1ll``
becomes ``i`` in normalisation; ``l`` and ``1`` are the same stroke).

Spans are ``[start, end)`` code-point offsets in each original text, covering every original
character that produced the match.

**Updates in place.** Entries added since the last full build sit in a small *delta*
automaton, rebuilt at each change (milliseconds for hundreds of terms); removals take effect
at once (hits are checked against the live entries). When the delta grows past
``delta_limit`` entries, a background thread rebuilds the main automaton and swaps it in.
Each change is visible to the next :meth:`KeywordIndex.match` call. Readers need no lock; one
lock serialises writers.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import ahocorasick_rs
import numpy as np

from bastion.errors import LimitExceeded
from bastion.signals.keyword import KeywordEntry
from bastion.signals.text import (
    BOUNDARY_WORD,
    MAX_TEXT_CHARS,
    CpArray,
    IntArray,
    NormalisedText,
    char_class,
    collapse_repeats,
    normalise_many,
    normalise_terms,
)

K = TypeVar("K", bound=Hashable)

#: Most entries one index holds; more is refused.
MAX_KEYWORD_ENTRIES = 2_000_000
#: Entries held in the delta automaton before a background rebuild of the main one.
DELTA_LIMIT = 256
#: Up to this many patterns an automaton is a DFA (fastest); above, a contiguous NFA
#: (less memory).
DFA_MAX_PATTERNS = 200_000


@dataclass(frozen=True, slots=True)
class KeywordMatch(Generic[K]):
    """One occurrence of one entry in one text.

    ``key`` is the caller's id for the entry; ``span`` is ``[start, end)`` in code points of
    the original text; ``matched`` is the original text there; ``term`` and ``mode`` are the
    entry's.
    """

    key: K
    span: tuple[int, int]
    matched: str
    term: str
    mode: str

    def to_json(self) -> dict[str, object]:
        """``{"span": [start, end], "matched", "term", "mode"}`` (key left out)."""
        return {"span": list(self.span), "matched": self.matched, "term": self.term,
                "mode": self.mode}


@dataclass(frozen=True, slots=True)
class _Payload(Generic[K]):
    key: K
    entry: KeywordEntry
    need_left: bool
    need_right: bool


class _Automaton(Generic[K]):
    """Immutable automata over a group of entries of one channel.

    Patterns written in ASCII and the others are in two automata, each scanned over the
    whole text: two small DFAs (a narrow alphabet each) stay in the CPU caches where one
    large DFA does not, which is faster overall than one scan.
    """

    def __init__(self, items: Iterable[tuple[K, KeywordEntry, str]]) -> None:
        by_pattern: dict[str, list[_Payload[K]]] = {}
        for key, entry, pattern in items:
            if not pattern:
                continue
            left = entry.match in ("word", "prefix") and _boundary_char(pattern[0])
            right = entry.match == "word" and _boundary_char(pattern[-1])
            payload = _Payload(key, entry, left, right)
            variants = {pattern}
            if "l" in pattern:
                variants.add(pattern.replace("l", "i"))
            for v in variants:
                by_pattern.setdefault(v, []).append(payload)
        self.patterns = list(by_pattern)
        self.payloads: list[tuple[_Payload[K], ...]] = [tuple(by_pattern[p]) for p in self.patterns]
        #: (automaton, the index in :attr:`patterns` of each of its patterns)
        self.parts: list[tuple[ahocorasick_rs.BytesAhoCorasick, list[int], bool]] = []
        ascii_ids = [i for i, p in enumerate(self.patterns) if p.isascii()]
        other_ids = [i for i, p in enumerate(self.patterns) if not p.isascii()]
        for ids, is_ascii in ((ascii_ids, True), (other_ids, False)):
            if not ids:
                continue
            impl = (
                ahocorasick_rs.Implementation.DFA
                if len(ids) <= DFA_MAX_PATTERNS
                else ahocorasick_rs.Implementation.ContiguousNFA
            )
            ac = ahocorasick_rs.BytesAhoCorasick(
                [self.patterns[i].encode("utf-8", "surrogatepass") for i in ids],
                implementation=impl,
            )
            self.parts.append((ac, ids, is_ascii))


class _Haystack:
    """The forms of one normalised text the automata search, each made once when first
    needed: one byte per character with every non-ASCII character as 0x80 (for ASCII
    terms: offsets are character offsets, no UTF-8 needed), and UTF-8 (for the others)."""

    def __init__(self, nt: NormalisedText) -> None:
        self.nt = nt
        self._ascii: memoryview | None = None
        self._utf8: bytes | None = None

    def ascii(self) -> memoryview:
        """The normalised text as one byte per character (non-ASCII characters as 0x80,
        which no ASCII term contains), made once; offsets are character offsets."""
        if self._ascii is None:
            out = np.empty(len(self.nt.codes), dtype=np.uint8)
            np.minimum(self.nt.codes, 0x80, out=out, casting="unsafe")
            self._ascii = out.data
        return self._ascii

    def utf8(self) -> bytes:
        """The normalised text in UTF-8 (for the automaton of non-ASCII terms), made once."""
        if self._utf8 is None:
            self._utf8 = self.nt.text.encode("utf-8", "surrogatepass")
        return self._utf8

    def find(
        self, automata: Sequence[_Automaton[K]]
    ) -> list[tuple[_Automaton[K], int, int, int]]:
        """Every (overlapping) occurrence of every automaton's patterns: ``(automaton,
        pattern index, start, end)`` in characters of the normalised text."""
        hits: list[tuple[_Automaton[K], int, int, int]] = []
        byte_hits: list[tuple[_Automaton[K], int, int, int]] = []
        for a in automata:
            for ac, ids, is_ascii in a.parts:
                if is_ascii:
                    found = ac.find_matches_as_indexes(self.ascii(), overlapping=True)
                    hits.extend((a, ids[p], s, e) for p, s, e in found)
                else:
                    found = ac.find_matches_as_indexes(self.utf8(), overlapping=True)
                    byte_hits.extend((a, ids[p], s, e) for p, s, e in found)
        if byte_hits:
            char_s, char_e = _to_chars(self.nt, self.utf8(), byte_hits)
            hits.extend((a, p, cs, ce) for (a, p, _, _), cs, ce in zip(
                byte_hits, char_s.tolist(), char_e.tolist(), strict=True))
        return hits


#: Hits fewer than one per this many bytes of text are mapped to characters one by one
#: (:func:`_chars_at`), more with one pass over the whole text.
_SPARSE_HITS = 64
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


def _chars_at(data: bytes, codes: CpArray, offsets: IntArray) -> IntArray:
    """The code-point index of each byte offset of ``data``, the UTF-8 encoding of
    ``codes`` (each offset at a character boundary).

    Every U+FFFF (the batch separator; it is the only character encoded ``EF BF BF``) is
    an anchor known in both: an offset's index is its anchor's plus the characters between
    them (the bytes that are not UTF-8 continuation bytes), so the work is proportional to
    the hits' distances from the item starts, not to the whole batch."""
    arr = np.frombuffer(data, dtype=np.uint8)
    lead = np.flatnonzero(arr[:-2] == 0xEF)
    sep_b = lead[(arr[lead + 1] == 0xBF) & (arr[lead + 2] == 0xBF)]
    sep_c = np.flatnonzero(codes == 0xFFFF)
    if len(sep_b) != len(sep_c):  # cannot happen for valid UTF-8; be safe all the same
        sep_b = sep_c = np.zeros(0, dtype=np.int64)
    byte_anchor = np.concatenate([[0], sep_b + 3])
    char_anchor = np.concatenate([[0], sep_c + 1])
    j = np.searchsorted(byte_anchor, offsets, side="right") - 1
    out = np.empty(len(offsets), dtype=np.int64)
    for i, (b, a) in enumerate(zip(offsets.tolist(), j.tolist(), strict=True)):
        start = int(byte_anchor[a])
        out[i] = int(char_anchor[a]) + len(data[start:b].translate(None, _UTF8_CONTINUATION))
    return out


def _to_chars(
    nt: NormalisedText, data: bytes, hits: Sequence[tuple[object, int, int, int]]
) -> tuple[IntArray, IntArray]:
    """The character offsets in ``nt`` of the byte offsets (in ``data``, its UTF-8) of each
    hit's start and end."""
    byte_s = np.fromiter((h[2] for h in hits), dtype=np.int64, count=len(hits))
    byte_e = np.fromiter((h[3] for h in hits), dtype=np.int64, count=len(hits))
    if len(data) == len(nt.codes):
        return byte_s, byte_e
    if 2 * len(hits) * _SPARSE_HITS < len(data):
        both = _chars_at(data, nt.codes, np.concatenate([byte_s, byte_e]))
        return both[: len(hits)], both[len(hits) :]
    c = nt.codes
    nbytes = 1 + (c >= 0x80).astype(np.int64) + (c >= 0x800) + (c >= 0x10000)
    cum = np.cumsum(nbytes)
    return (np.searchsorted(cum, byte_s, side="right"),
            np.searchsorted(cum, byte_e, side="right"))


def _boundary_char(ch: str) -> bool:
    return bool(char_class(ch) & BOUNDARY_WORD)


@dataclass(frozen=True, slots=True)
class _State(Generic[K]):
    main: tuple[_Automaton[K] | None, _Automaton[K] | None]
    delta: tuple[_Automaton[K] | None, _Automaton[K] | None]


def _channel(entry: KeywordEntry) -> int:
    return 1 if entry.collapse_repeats else 0


_Item = tuple[K, KeywordEntry, str]


def _build(items: Iterable[_Item[K]]) -> tuple[_Automaton[K] | None, ...]:
    groups: tuple[list[_Item[K]], list[_Item[K]]] = ([], [])
    for item in items:
        groups[_channel(item[1])].append(item)
    return tuple(_Automaton(g) if g else None for g in groups)


class KeywordIndex(Generic[K]):
    """Keyword lists matcher (module docstring). Entries are keyed by the caller's hashable
    ``key``; adding a key again replaces its entry.

    >>> from bastion.signals.keyword import parse_keyword_entry
    >>> idx: KeywordIndex[str] = KeywordIndex()
    >>> idx.add("k1", parse_keyword_entry("example"))
    >>> [(m.span, m.matched) for m in idx.match("An E x a m p l e.")]
    [((3, 16), 'E x a m p l e')]
    """

    def __init__(
        self,
        *,
        delta_limit: int = DELTA_LIMIT,
        max_entries: int = MAX_KEYWORD_ENTRIES,
        max_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        self._live: dict[K, KeywordEntry] = {}
        #: Each live entry's matching form, computed once when added.
        self._patterns: dict[K, str] = {}
        self._delta: dict[K, KeywordEntry] = {}
        self._state: _State[K] = _State((None, None), (None, None))
        self._lock = threading.Lock()
        self._delta_limit = delta_limit
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._rebuild: threading.Thread | None = None
        self._rebuild_again = False

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    # -- updates ---------------------------------------------------------------------

    def add(self, key: K, entry: KeywordEntry) -> None:
        """Add (or replace) one entry; visible to the next :meth:`match`.

        Raises :class:`LimitExceeded` past ``max_entries``.
        """
        with self._lock:
            if key not in self._live and len(self._live) >= self._max_entries:
                raise LimitExceeded(f"keyword index holds {self._max_entries} entries already")
            self._live[key] = entry
            self._patterns[key] = entry.normalised
            self._delta[key] = entry
            self._publish_delta_locked()
            if len(self._delta) > self._delta_limit:
                self._start_rebuild_locked()

    def add_many(self, items: Iterable[tuple[K, KeywordEntry]]) -> None:
        """Add many entries (a bank load) and rebuild the main automata at once, in the
        calling thread. Raises :class:`LimitExceeded` past ``max_entries`` (nothing added)."""
        items = list(items)
        patterns = normalise_terms(
            [e.term for _, e in items], [e.collapse_repeats for _, e in items]
        )
        with self._lock:
            new_keys = {k for k, _ in items if k not in self._live}
            if len(self._live) + len(new_keys) > self._max_entries:
                raise LimitExceeded(f"keyword index would exceed {self._max_entries} entries")
            self._live.update(items)
            self._patterns.update((k, p) for (k, _), p in zip(items, patterns, strict=True))
            snapshot = dict(self._live)
        self._swap_main(snapshot)

    def remove(self, key: K) -> bool:
        """Remove one entry; returns whether it was there. Visible to the next match."""
        with self._lock:
            if self._live.pop(key, None) is None:
                return False
            self._patterns.pop(key, None)
            if self._delta.pop(key, None) is not None:
                self._publish_delta_locked()
            return True

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild to finish (tests, benchmarks, shutdown)."""
        t = self._rebuild
        if t is not None:
            t.join(timeout)

    def _publish_delta_locked(self) -> None:
        delta = _build(self._items(self._delta))
        self._state = _State(self._state.main, (delta[0], delta[1]))

    def _items(self, entries: dict[K, KeywordEntry]) -> list[_Item[K]]:
        pats = self._patterns
        return [(k, e, pats[k]) for k, e in entries.items() if k in pats]

    def _start_rebuild_locked(self) -> None:
        if self._rebuild is not None and self._rebuild.is_alive():
            self._rebuild_again = True
            return
        snapshot = dict(self._live)
        self._rebuild = threading.Thread(
            target=self._swap_main, args=(snapshot,), name="keyword-index-rebuild", daemon=True
        )
        self._rebuild.start()

    def _swap_main(self, snapshot: dict[K, KeywordEntry]) -> None:
        with self._lock:
            items = self._items(snapshot)
        main = _build(items)
        with self._lock:
            self._delta = {
                k: e for k, e in self._live.items() if snapshot.get(k) is not e
            }
            delta = _build(self._items(self._delta))
            self._state = _State((main[0], main[1]), (delta[0], delta[1]))
            again = self._rebuild_again or len(self._delta) > self._delta_limit
            self._rebuild_again = False
        if again:
            with self._lock:
                snapshot = dict(self._live)
            self._swap_main(snapshot)

    # -- matching --------------------------------------------------------------------

    def match(self, text: str) -> list[KeywordMatch[K]]:
        """Every entry occurrence in ``text``, by position. Raises :class:`LimitExceeded`
        over ``max_chars`` characters."""
        return self.match_many([text])[0]

    def match_many(self, texts: Sequence[str]) -> list[list[KeywordMatch[K]]]:
        """:meth:`match` for many texts at once (one normalisation pass: much faster for
        short texts). Raises :class:`LimitExceeded` if any text is over ``max_chars``."""
        results: list[list[KeywordMatch[K]]] = [[] for _ in texts]
        if not texts:
            return results
        batch = normalise_many(texts, max_chars=self._max_chars)
        state = self._state
        live = self._live
        starts = batch.starts
        joined_original = batch.text.original
        for ch in (0, 1):
            automata = [a for a in (state.main[ch], state.delta[ch]) if a is not None]
            if not automata:
                continue
            nt = batch.text if ch == 0 else collapse_repeats(batch.text)
            hits = _Haystack(nt).find(automata)
            if hits:
                self._collect(nt, hits, live, starts, joined_original, results)
        for r in results:
            r.sort(key=lambda m: (m.span, str(m.key)))
        return results

    @staticmethod
    def _collect(
        nt: NormalisedText,
        hits: list[tuple[_Automaton[K], int, int, int]],
        live: dict[K, KeywordEntry],
        starts: IntArray,
        joined_original: str,
        results: list[list[KeywordMatch[K]]],
    ) -> None:
        char_s = np.fromiter((h[2] for h in hits), dtype=np.int64, count=len(hits))
        char_e = np.fromiter((h[3] for h in hits), dtype=np.int64, count=len(hits))
        classes = nt.classes
        n = len(classes)
        orig_s, orig_e = nt.original_spans(char_s, char_e)
        items = np.searchsorted(starts, orig_s, side="right") - 1
        lefts = (char_s > 0) & ((classes[np.maximum(char_s - 1, 0)] & BOUNDARY_WORD) != 0)
        rights = (char_e < n) & ((classes[np.minimum(char_e, n - 1)] & BOUNDARY_WORD) != 0)
        seen: set[tuple[int, object, int, int]] = set()
        for (a, p, _, _), os_, oe, item, left_word, right_word in zip(
            hits, orig_s.tolist(), orig_e.tolist(), items.tolist(), lefts.tolist(),
            rights.tolist(), strict=True,
        ):
            payloads: tuple[_Payload[K], ...] = a.payloads[p]
            for pl in payloads:
                if (pl.need_left and left_word) or (pl.need_right and right_word):
                    continue
                if live.get(pl.key) is not pl.entry:
                    continue
                dedup = (item, pl.key, os_, oe)
                if dedup in seen:
                    continue
                seen.add(dedup)
                base = int(starts[item])
                results[item].append(
                    KeywordMatch(pl.key, (os_ - base, oe - base), joined_original[os_:oe],
                                 pl.entry.term, pl.entry.match)
                )
