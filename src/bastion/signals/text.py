"""Text normalisation for keyword matching, with a map back to the original characters.

Keyword lists must match the way evaders write (``ｅｘａｍｐｌｅ``, ``exa<ZWSP>mple``, ``e x a m p
l e``, ``3xampl3``, ``cafe\\u0301``), and a reviewer must see exactly which characters of the
original matched. :func:`normalise` returns the normalised text with, for every normalised
character, the original character it came from; :meth:`NormalisedText.original_span` turns a
span of the normalised text into the ``[start, end)`` code-point span of the original that
covers every original character that produced it (deleted characters inside included).

The steps, in order (keyword terms go through the same ones, :func:`normalise_term`):

1. **Characters**, one at a time: Unicode NFKC (fullwidth, ligatures, mathematical letters),
   case folding (``str.casefold``), combining diacritics removed (NFD, then the generic
   diacritic blocks U+0300-036F, U+1AB0-1AFF, U+1DC0-1DFF, U+20D0-20FF, U+FE20-FE2F, Hebrew
   points and Arabic harakat dropped, then NFC: ``café`` NFC and NFD both become ``cafe``;
   marks that carry meaning in Thai, Indic scripts and Japanese are kept), format characters
   removed (category Cf: zero-width spaces and joiners, bidi controls, soft hyphens),
   variation selectors and emoji skin-tone modifiers removed (so emoji variants compare
   equal; emoji stay as tokens), control characters removed, every space character read as
   one space, decimal digits of any script read as ASCII digits, and single letters that look
   like a Latin letter (Unicode ``confusables.txt``: Cyrillic ``а``, Greek ``ο`` ...) read as
   that letter.
2. **Spacing**: single letters or digits spaced or dotted out (at least three, one of
   ``space . - _ * ·`` between each: ``s e x``, ``s.e.x``) are joined; runs of spaces become
   one.
3. **Substitutions** inside words that mix letters and digits: ``0 1 3 4 5 7`` read as
   ``o i e a s t`` (``3xampl3`` -> ``example``; a number alone stays a number); ``$`` after or
   before a letter reads as ``s`` and ``@`` between letters as ``a`` (not in e-mail addresses).
4. Optionally (:func:`collapse_repeats`, for entries that ask for it): runs of one repeated
   character become one (``exxxampple`` -> ``exaple``; the term is collapsed the same way).

How it is fast enough (>= 20 MB/s per core is the goal, ``benchmarks/bench_text.py``): texts
are processed in batches as arrays of code points (numpy), each step a few vectorised table
look-ups and masks; the per-character fold table is filled lazily, the first time a character
is seen, and kept for the life of the process. No per-character offset array is built: each
step that deletes, expands or merges characters keeps a sparse map of only those characters
(:class:`_Stage`), and spans are mapped back through them with binary searches, for the few
spans that matched. Step 3 visits only ``$`` and ``@`` candidates one by one; digit tokens
are found and substituted in bulk. ``tests/signals/text_reference.py`` restates every step one
character at a time, and the tests check that both give the same text and spans.

Limits: :data:`MAX_TEXT_CHARS` per text (:class:`~bastion.errors.LimitExceeded`).

Sources: Unicode Standard Annex #15 (normalisation forms), The Unicode Standard section 5.18
(case folding), Unicode Technical Standard #39 (``confusables.txt``), Unicode Technical
Standard #51 (emoji modifiers and variation selectors).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput, LimitExceeded

#: Longest text normalised in one call, in code points.
MAX_TEXT_CHARS = 1_000_000
#: Separator between texts of one batch: a noncharacter, never a word or spacing character.
BATCH_SEPARATOR = "\uffff"

_FOLDED_MARKS: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F),  # Combining Diacritical Marks
    (0x0591, 0x05BD),  # Hebrew cantillation and points
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),  # Arabic honorifics and small marks
    (0x064B, 0x065F),  # Arabic harakat
    (0x0670, 0x0670),
    (0x1AB0, 0x1AFF),  # Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF),  # Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF),  # Combining Diacritical Marks for Symbols (keycap U+20E3 included)
    (0xFE20, 0xFE2F),  # Combining Half Marks
)
_REMOVED: tuple[tuple[int, int], ...] = (
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0100, 0xE01EF),  # variation selectors supplement
    (0x1F3FB, 0x1F3FF),  # emoji skin-tone modifiers
    (0x115F, 0x1160),  # Hangul fillers (invisible)
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
)
#: Scripts written without spaces between words: matched as substrings (code-point ranges).
UNSPACED_SCRIPTS: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3021, 0x303C),  # Hangzhou numerals, kana repeat marks
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
#: Separators between spaced-out single characters (step 2).
SPACING_SEPARATORS = " .-_*·"
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}

# Character classes (bits of the class table).
WORD = 1  # letter, digit or mark: part of a token (steps 2 and 3)
SEP = 2  # a spacing separator
SPACE = 4
LETTER = 8
DIGIT = 16  # ASCII 0-9
SYMBOL = 32  # "$" or "@"
BOUNDARY_WORD = 64  # a word character of a script written with spaces (or "_")

_NCP = 0x110000
_UNKNOWN = 0xFFFFFFFF
_DELETED = 0xFFFFFFFE
_EXPANDED = 0xFFFFFFFD

IntArray = npt.NDArray[np.int64]
CpArray = npt.NDArray[np.uint32]
ClsArray = npt.NDArray[np.uint8]


def _in_ranges(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


@functools.cache
def _confusable_letters() -> dict[int, str]:
    """Non-ASCII letters whose UTS #39 prototype is one ASCII letter, mapped to it (lower)."""
    from bastion.signals.url import confusable_prototypes

    out: dict[int, str] = {}
    for cp, proto in confusable_prototypes().items():
        if cp < 128 or len(proto) != 1:
            continue
        p = proto.casefold()
        if len(p) == 1 and "a" <= p <= "z" and unicodedata.category(chr(cp)).startswith("L"):
            out[cp] = p
    return out


def _simple(ch: str) -> str:
    if ch.isspace():
        return " "
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    if cat in ("Cf", "Cc") or _in_ranges(ord(ch), _REMOVED):
        return ""
    return ch


def fold_char(ch: str) -> str:
    """Step 1 of the module docstring for one character: its folded form (maybe empty or
    several characters). Pure; never raises."""
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF or ch == BATCH_SEPARATOR:
        return ch
    first = _simple(ch)
    if first != ch:
        return first
    if cp < 128:
        return ch.lower()
    s = unicodedata.normalize("NFKC", ch).casefold()
    s = unicodedata.normalize("NFD", s)
    s = "".join(c for c in s if not _in_ranges(ord(c), _FOLDED_MARKS))
    s = unicodedata.normalize("NFC", s)
    s = "".join(_simple(c) for c in s)
    return s.translate(_confusable_letters())


def char_class(ch: str) -> int:
    """The class bits (``WORD``, ``SEP``, ``SPACE`` ...) of one folded character."""
    bits = 0
    cat = unicodedata.category(ch)
    if ch.isalnum() or cat.startswith("M"):
        bits |= WORD
        if not _in_ranges(ord(ch), UNSPACED_SCRIPTS):
            bits |= BOUNDARY_WORD
    if ch == "_":
        bits |= BOUNDARY_WORD
    if ch in SPACING_SEPARATORS:
        bits |= SEP
    if ch == " ":
        bits |= SPACE
    if ch.isalpha():
        bits |= LETTER
    if "0" <= ch <= "9":
        bits |= DIGIT
    if ch in "$@":
        bits |= SYMBOL
    return bits


class _Tables:
    """Fold and class tables over all code points, filled on first sight of a character.

    ``fold[cp]`` is the folded code point, or ``_DELETED``, ``_EXPANDED`` (the string is in
    ``expansions``) or ``_UNKNOWN``; ``cls[cp]`` the class bits of a folded character.
    """

    def __init__(self) -> None:
        self.fold: CpArray = np.full(_NCP, _UNKNOWN, dtype=np.uint32)
        self.cls: ClsArray = np.zeros(_NCP, dtype=np.uint8)
        self.cls_known = np.zeros(_NCP, dtype=bool)
        self.expansions: dict[int, tuple[int, ...]] = {}
        #: Deleted characters that belong to the character before them (combining marks,
        #: variation selectors, skin-tone modifiers, zero-width joiners): spans cover them.
        self.attach = np.zeros(_NCP, dtype=bool)
        self.lock = threading.Lock()
        self.learn(np.arange(128, dtype=np.uint32))

    def learn(self, cps: CpArray) -> None:
        """Fill the tables' entries for the code points ``cps`` (uint32) not seen before
        (thread-safe; each code point is learnt once)."""
        with self.lock:
            for cp in np.unique(cps).tolist():
                if self.fold[cp] != _UNKNOWN:
                    continue
                s = fold_char(chr(cp))
                for c in s:
                    if not self.cls_known[ord(c)]:
                        self.cls[ord(c)] = char_class(c)
                        self.cls_known[ord(c)] = True
                if len(s) == 1:
                    self.fold[cp] = ord(s)
                elif not s:
                    self.fold[cp] = _DELETED
                    ch = chr(cp)
                    self.attach[cp] = (
                        unicodedata.category(ch).startswith("M")
                        or _in_ranges(cp, _REMOVED)
                        or cp == 0x200D
                    )
                else:
                    self.expansions[cp] = tuple(ord(c) for c in s)
                    self.fold[cp] = _EXPANDED


@functools.cache
def _tables() -> _Tables:
    return _Tables()


# --- offset maps -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Stage:
    """How one step's output characters map back to its input characters, kept sparse: only
    the input characters whose output is not exactly one character are listed.

    ``odd`` are those input positions (ascending) and ``lens`` their output lengths (0:
    deleted, >= 2: expanded); ``first[j]`` is where ``odd[j]``'s output begins (where it
    would have been, if deleted) and ``shift[j]`` the input minus output position of the
    characters after it. Output ``k`` comes from input ``lo(k)``; the last input character it
    covers, ``hi(k)``, is ``lo(k)`` except: in a ``runs`` stage (collapsed repeats) the whole
    run up to the next output's source, and in a stage with ``attached`` positions (deleted
    marks that belong to the character before them) the last of those before the next
    output's source.
    """

    n_in: int
    n_out: int
    odd: IntArray
    lens: IntArray
    first: IntArray
    shift: IntArray
    attached: IntArray | None = None
    runs: bool = False

    @staticmethod
    def of(n_in: int, odd: IntArray, lens: IntArray, attached: IntArray | None = None,
           runs: bool = False) -> _Stage:
        """A stage from the odd input positions (ascending) and their output lengths."""
        odd = odd.astype(np.int64, copy=False)
        lens = lens.astype(np.int64, copy=False)
        shift = np.cumsum(1 - lens)
        first = odd - shift + (1 - lens)  # odd[j] minus the shift of the ones before it
        return _Stage(n_in, n_in - int(shift[-1]) if len(shift) else n_in, odd, lens, first,
                      shift, attached, runs)

    def lo(self, k: IntArray) -> IntArray:
        """Source input position of each output position in ``k``."""
        if len(self.odd) == 0:
            return k.astype(np.int64, copy=True)
        j = np.searchsorted(self.first, k, side="right") - 1
        has = j >= 0
        jj = np.where(has, j, 0)
        inside = has & (k < self.first[jj] + self.lens[jj])
        out = np.where(has, k + self.shift[jj], k)
        return np.where(inside, self.odd[jj], out)

    def hi(self, k: IntArray) -> IntArray:
        """Last input position covered by each output position in ``k``."""
        src = self.lo(k)
        if not self.runs and (self.attached is None or len(self.attached) == 0):
            return src
        after = k + 1
        nxt = np.full(len(k), self.n_in, dtype=np.int64)
        more = after < self.n_out
        nxt[more] = self.lo(after[more])
        if self.runs:
            return np.maximum(nxt - 1, src)
        assert self.attached is not None
        a = np.searchsorted(self.attached, nxt) - 1
        ok = a >= 0
        last = np.where(ok, self.attached[np.where(ok, a, 0)], -1)
        return np.where(ok & (last > src), last, src)


# --- normalised text ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class NormalisedText:
    """Normalised ``text`` of ``original``, with the way back to the original characters.

    ``codes`` and ``classes`` are the normalised text as code points and class bits.
    ``stages`` map normalised positions back to the original, one per step that deleted,
    expanded or merged characters (sparse: work in proportion to those characters, not to
    the text); see :meth:`original_spans`.
    """

    text: str
    original: str
    codes: CpArray
    classes: ClsArray
    stages: tuple[_Stage, ...] = ()

    def original_spans(self, starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
        """Vectorised :meth:`original_span` for spans ``[starts[i], ends[i])`` of
        :attr:`text` (each non-empty and in range; not checked here)."""
        lo = np.asarray(starts, dtype=np.int64)
        hi = np.asarray(ends, dtype=np.int64) - 1
        for stage in reversed(self.stages):
            lo = stage.lo(lo)
            hi = stage.hi(hi)
        return lo, hi + 1

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """``[start, end)`` in :attr:`text` (``0 <= start < end <= len(text)``) -> the
        ``[start, end)`` code-point span of :attr:`original` covering every character that
        produced it (deleted characters inside included, and marks attached to its last
        character). Raises :class:`InvalidInput` for an empty or out-of-range span."""
        if not 0 <= start < end <= len(self.codes):
            raise InvalidInput(f"span [{start}, {end}) outside a text of {len(self.codes)}")
        s, e = self.original_spans(np.array([start]), np.array([end]))
        return int(s[0]), int(e[0])


def _to_codes(text: str) -> CpArray:
    if not text:
        return np.zeros(0, dtype=np.uint32)
    arr: CpArray = np.array(text).reshape(1).view(np.uint32)
    if len(arr) != len(text):  # trailing NULs are dropped by numpy's str dtype
        arr = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return arr


def _to_text(codes: CpArray) -> str:
    if len(codes) == 0:
        return ""
    return codes.astype("<u4", copy=False).tobytes().decode("utf-32-le", "surrogatepass")


def _lookup(table: npt.NDArray[Any], codes: CpArray) -> npt.NDArray[Any]:
    """``table[codes]`` for code points (all below ``len(table)`` == 0x110000): ``take``
    without its bounds check ("wrap" never wraps here) is about three times faster than
    indexing."""
    return np.take(table, codes, mode="wrap")


def _fold(codes: CpArray) -> tuple[CpArray, _Stage | None]:
    """Step 1: folded code points and, if any character was deleted or expanded, the stage
    that maps them back (else None: one to one)."""
    t = _tables()
    f = _lookup(t.fold, codes)
    odd_mask = f >= _EXPANDED
    odd = np.flatnonzero(odd_mask)
    if len(odd) == 0:
        return f, None
    if (f[odd] == _UNKNOWN).any():
        t.learn(codes[odd][f[odd] == _UNKNOWN])
        f = _lookup(t.fold, codes)
        odd_mask = f >= _EXPANDED
        odd = np.flatnonzero(odd_mask)
        if len(odd) == 0:
            return f, None
    kinds = f[odd]
    is_deleted = kinds == _DELETED
    deleted = odd[is_deleted]
    attached = deleted[t.attach[codes[deleted]]]
    if is_deleted.all():
        out = f[~odd_mask]
        lens = np.zeros(len(odd), dtype=np.int64)
    else:
        expanded = odd[~is_deleted]
        exp_codes = [t.expansions[c] for c in codes[expanded].tolist()]
        lens = np.zeros(len(odd), dtype=np.int64)
        lens[~is_deleted] = [len(e) for e in exp_codes]
        full = np.ones(len(f), dtype=np.int64)
        full[odd] = lens
        out = np.repeat(f, full)
        firsts = np.cumsum(full) - full
        for pos, seq in zip(firsts[expanded].tolist(), exp_codes, strict=True):
            out[pos : pos + len(seq)] = seq
    return out, _Stage.of(len(f), odd, lens,
                          attached=attached.astype(np.int64) if len(attached) else None)


def _spacing_deletions(c: ClsArray) -> npt.NDArray[np.bool_]:
    """Step 2: mask of characters to delete (separators inside spaced-out runs of single
    characters, and every space after the first of a run)."""
    n = len(c)
    word = np.zeros(n + 4, dtype=bool)
    word[2:-2] = (c & WORD) != 0
    single = word[1:-1] & ~word[:-2] & ~word[2:]  # length n + 2, index i+1 <-> char i
    sep = (c & SEP) != 0
    link = np.zeros(n + 4, dtype=bool)
    link[2:-2] = sep & single[:-2] & single[2:]
    delete = link[2:-2] & (link[:-4] | link[4:])
    space = (c & SPACE) != 0
    delete[1:] |= space[1:] & space[:-1]
    return delete


_REACH = 64
#: Code point -> its substitution (step 3) for ASCII digits; every other value unchanged.
_LEET_DIGITS = np.array([ord(_LEET.get(chr(48 + d), chr(48 + d))) for d in range(10)],
                        dtype=np.uint32)


#: Positions whose token windows are found together (bounds the work arrays to about
#: ``_WINDOW_CHUNK * (2 * _REACH + 1)`` elements, whatever the number of candidates).
_WINDOW_CHUNK = 4096


def _token_windows(c: ClsArray, at: IntArray) -> tuple[IntArray, IntArray]:
    """The token (run of WORD characters) around each position in ``at``, looking at most
    ``_REACH`` characters away on each side: ``(starts, ends)``. Position ``i`` itself is in
    its window whether or not it is a word character."""
    if len(at) > _WINDOW_CHUNK:
        parts = [_token_windows(c, at[k : k + _WINDOW_CHUNK])
                 for k in range(0, len(at), _WINDOW_CHUNK)]
        return (np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]))
    n = len(c)
    offsets = np.arange(-_REACH, _REACH + 1, dtype=np.int64)
    idx = at[:, None] + offsets
    valid = (idx >= 0) & (idx < n)
    word = valid & ((c[np.clip(idx, 0, max(n - 1, 0))] & WORD) != 0)
    left = word[:, _REACH - 1 :: -1]  # i-1, i-2, ... i-REACH
    right = word[:, _REACH + 1 :]  # i+1 ... i+REACH
    run_l = np.where(left.all(axis=1), _REACH, left.argmin(axis=1))
    run_r = np.where(right.all(axis=1), _REACH, right.argmin(axis=1))
    return at - run_l, at + 1 + run_r


def _substitute(f: CpArray, c: ClsArray) -> None:
    """Step 3, in place on ``f`` (one to one).

    Candidates are ``$``, ``@`` and ASCII digits next to a letter, visited left to right:
    a ``$`` still unchanged turns its run of ``$`` into ``s``; an ``@`` between letters
    that does not start an e-mail domain becomes ``a``; a digit (or a ``$`` already turned
    into ``s`` by the run before it) has the leet digits of its token (:func:`_token_windows`)
    substituted, unless it lies inside the window substituted last. Only the ``$`` and
    ``@`` candidates are visited one by one; the token windows are found and substituted
    in bulk.
    """
    cand = np.flatnonzero(c & (DIGIT | SYMBOL))
    if len(cand) == 0:
        return
    n = len(f)
    prev_letter = np.zeros(len(cand), dtype=bool)
    next_letter = np.zeros(len(cand), dtype=bool)
    has_prev = cand > 0
    has_next = cand < n - 1
    prev_letter[has_prev] = (c[cand[has_prev] - 1] & LETTER) != 0
    next_letter[has_next] = (c[cand[has_next] + 1] & LETTER) != 0
    near_mask = prev_letter | next_letter
    if not near_mask.any():
        return
    symbol = near_mask & ((c[cand] & SYMBOL) != 0)
    triggers = cand[near_mask & ~symbol]
    if symbol.any():
        # "@" decisions read only characters that no substitution changes ("." "@" "-" and
        # classes), so their order does not matter; "$" runs are visited in order.
        extra: list[int] = []
        for k in np.flatnonzero(symbol).tolist():
            i = int(cand[k])
            if f[i] == 64:  # "@"
                if prev_letter[k] and next_letter[k] and not _email_after(f, c, i + 1):
                    f[i] = 97  # "a"
            elif f[i] == 36:  # "$"
                j = i
                while j < n and f[j] == 36:
                    f[j] = 115  # "s"
                    j += 1
            else:  # a "$" turned into "s" by its run: visited like a digit
                extra.append(i)
        if extra:
            triggers = np.union1d(triggers, np.array(extra, dtype=np.int64))
    if len(triggers) == 0:
        return
    triggers = triggers.astype(np.int64, copy=False)
    starts, ends = _token_windows(c, triggers)
    # Which triggers open a window: those at or past the end of the last one opened.
    chosen: list[int] = []
    done_until = -1
    for k, (i, e) in enumerate(zip(triggers.tolist(), ends.tolist(), strict=True)):
        if i >= done_until:
            chosen.append(k)
            done_until = e
    ws = starts[chosen]
    lens = ends[chosen] - ws
    pos = np.repeat(ws - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    sub = f[pos]
    digit = (sub >= 48) & (sub <= 57)
    f[pos[digit]] = _LEET_DIGITS[sub[digit] - 48]


def _email_after(f: CpArray, c: ClsArray, i: int) -> bool:
    """True if the letters from ``i`` are followed by ``.`` and a word character (a domain)."""
    n = len(f)
    while i < n and c[i] & LETTER:
        i += 1
    if i >= n:
        return False
    if f[i] == 46:  # "."
        return i + 1 < n and bool(c[i + 1] & WORD)
    return bool(c[i] & WORD) or int(f[i]) in (64, 45)  # "@", "-"


def _normalise_codes(codes: CpArray) -> tuple[CpArray, ClsArray, tuple[_Stage, ...]]:
    """Steps 1-3 on code points: (normalised codes, their classes, the stages mapping them
    back to ``codes``)."""
    f, fold_stage = _fold(codes)
    stages: tuple[_Stage, ...] = () if fold_stage is None else (fold_stage,)
    c = _lookup(_tables().cls, f)
    delete = _spacing_deletions(c)
    gone = np.flatnonzero(delete)
    if len(gone):
        keep = ~delete
        stages += (_Stage.of(len(f), gone, np.zeros(len(gone), dtype=np.int64)),)
        f = f[keep]
        c = c[keep]
    _substitute(f, c)
    return f, c, stages


def _check(text: str, max_chars: int) -> None:
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    if len(text) > max_chars:
        raise LimitExceeded(f"text longer than {max_chars} characters")


def normalise(text: str, *, max_chars: int = MAX_TEXT_CHARS) -> NormalisedText:
    """Steps 1-3 of the module docstring. Raises :class:`LimitExceeded` over ``max_chars``.

    >>> nt = normalise("Ｅ x a m p l e!")
    >>> nt.text, nt.original_span(0, 7)
    ('example!', (0, 13))
    """
    _check(text, max_chars)
    f, c, stages = _normalise_codes(_to_codes(text))
    return NormalisedText(_to_text(f), text, f, c, stages)


def collapse_repeats(nt: NormalisedText) -> NormalisedText:
    """Step 4: each run of one repeated character becomes one, mapped to the whole run."""
    f = nt.codes
    if len(f) < 2:
        return nt
    repeat = np.zeros(len(f), dtype=bool)
    np.equal(f[1:], f[:-1], out=repeat[1:])
    gone = np.flatnonzero(repeat)
    if len(gone) == 0:
        return nt
    keep = ~repeat
    codes = f[keep]
    stage = _Stage.of(len(f), gone, np.zeros(len(gone), dtype=np.int64), runs=True)
    return NormalisedText(_to_text(codes), nt.original, codes, nt.classes[keep],
                          (*nt.stages, stage))


def normalise_term(term: str, *, collapse: bool = False) -> str:
    """The normalised form of a keyword term (the same steps as the text it is matched
    in), stripped of outer spaces. May be empty (a term of only invisible characters)."""
    nt = normalise(term)
    if collapse:
        nt = collapse_repeats(nt)
    return nt.text.strip(" ")


@dataclass(frozen=True, slots=True, eq=False)
class NormalisedBatch:
    """Several texts normalised together (one pass of each step over all of them).

    ``text`` joins the normalised texts with :data:`BATCH_SEPARATOR`; ``starts[i]`` is where
    text ``i`` begins in the joined *original* (``originals`` joined the same way). Spans of
    ``text`` map back through ``start``/``end`` as in :class:`NormalisedText`.
    """

    text: NormalisedText
    starts: IntArray
    count: int

    def locate(self, start: int, end: int) -> tuple[int, int, int]:
        """A span of the joined normalised text -> ``(item, start, end)`` in that item's
        original text (code points)."""
        s, e = self.text.original_span(start, end)
        i = int(np.searchsorted(self.starts, s, side="right")) - 1
        base = int(self.starts[i])
        return i, s - base, e - base


def normalise_many(
    texts: Sequence[str], *, max_chars: int = MAX_TEXT_CHARS
) -> NormalisedBatch:
    """Normalise ``texts`` in one batch (much faster than one by one for short texts).

    Raises :class:`LimitExceeded` if any text is over ``max_chars``, :class:`InvalidInput`
    if one is not a string.
    """
    try:
        joined = BATCH_SEPARATOR.join(texts)
    except TypeError:
        raise InvalidInput("text must be a string") from None
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if len(texts) and int(lengths.max()) > max_chars:
        raise LimitExceeded(f"text longer than {max_chars} characters")
    lengths += 1
    starts = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        starts[1:] = np.cumsum(lengths)[:-1]
    return NormalisedBatch(normalise(joined, max_chars=max(len(joined), 1)), starts, len(texts))


def is_spaced_word_char(ch: str) -> bool:
    """True for a letter, digit or mark of a script that separates words with spaces (Latin,
    Cyrillic, Greek, Arabic, Hangul ...) and for ``_``; False for punctuation, spaces, emoji,
    and the characters of Chinese, Japanese, Thai, Lao, Khmer and Myanmar (matched as
    substrings)."""
    return bool(char_class(ch) & BOUNDARY_WORD)


def normalise_terms(terms: Sequence[str], collapse: Sequence[bool]) -> list[str]:
    """:func:`normalise_term` for many terms in one batch (bank loads); ``collapse[i]``
    says whether term ``i`` has its repeats collapsed. Terms must not contain
    :data:`BATCH_SEPARATOR` (:func:`bastion.signals.keyword.canonical_term` refuses it)."""
    if not terms:
        return []
    parts = normalise_many(terms, max_chars=_TERM_BATCH_CHARS).text.text.split(BATCH_SEPARATOR)
    out: list[str] = []
    for part, col in zip(parts, collapse, strict=True):
        if col:
            part = _REPEAT_RE.sub(r"\1", part)
        out.append(part.strip(" "))
    return out


_TERM_BATCH_CHARS = 1 << 40
_REPEAT_RE = re.compile(r"(.)\1+", re.DOTALL)
