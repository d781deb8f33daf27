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

How it is fast enough (>= 20 MB/s per core is the goal): texts are processed in batches as
arrays of code points (numpy), each step a few vectorised table look-ups and masks; the
per-character fold table is filled lazily, the first time a character is seen, and kept for
the life of the process.

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
#: Positions in a text: int32 while the text is shorter than 2**31 code points (half the
#: memory traffic of int64), else int64.
PosArray = npt.NDArray[np.signedinteger[Any]]


def _pos_dtype(n: int) -> type[np.int32] | type[np.int64]:
    return np.int32 if n < 2**31 - 1 else np.int64


def _kept_positions(keep: npt.NDArray[np.bool_]) -> PosArray:
    """Indices of the True entries of ``keep``, as :data:`PosArray`."""
    positions: PosArray = np.arange(len(keep), dtype=_pos_dtype(len(keep)))
    return positions[keep]
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


# --- normalised text ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class NormalisedText:
    """Normalised ``text`` of ``original``, with the source of every normalised character.

    ``start[k]``/``end[k]`` are the ``[start, end)`` span of the original characters that
    produced normalised character ``k`` (one character, or a run for collapsed repeats).
    ``codes`` and ``classes`` are the normalised text as code points and class bits.
    """

    text: str
    original: str
    start: PosArray
    end: PosArray
    codes: CpArray
    classes: ClsArray

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """``[start, end)`` in :attr:`text` (``0 <= start < end <= len(text)``) -> the
        ``[start, end)`` code-point span of :attr:`original` covering every character that
        produced it. Raises :class:`InvalidInput` for an empty or out-of-range span."""
        if not 0 <= start < end <= len(self.text):
            raise InvalidInput(f"span [{start}, {end}) outside a text of {len(self.text)}")
        return int(self.start[start]), int(self.end[end - 1])


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


def _fold(codes: CpArray) -> tuple[CpArray, PosArray | None, PosArray | None]:
    """Step 1: folded code points and, if any character was deleted or expanded, the
    ``[start, end)`` source span of each folded character (else None, None: one to one)."""
    t = _tables()
    f = t.fold[codes]
    odd = np.flatnonzero(f >= _EXPANDED)
    if len(odd) == 0:
        return f, None, None
    if (f[odd] == _UNKNOWN).any():
        t.learn(codes[odd][f[odd] == _UNKNOWN])
        f = t.fold[codes]
        odd = np.flatnonzero(f >= _EXPANDED)
        if len(odd) == 0:
            return f, None, None
    kinds = f[odd]
    deleted = odd[kinds == _DELETED]
    expanded = odd[kinds == _EXPANDED]
    if len(expanded) == 0:
        keep = np.ones(len(f), dtype=bool)
        keep[odd] = False
        out = f[keep]
        src = _kept_positions(keep)
    else:
        lens = np.ones(len(f), dtype=np.int64)
        lens[deleted] = 0
        exp_codes = [t.expansions[c] for c in codes[expanded].tolist()]
        lens[expanded] = [len(e) for e in exp_codes]
        src = np.repeat(np.arange(len(f), dtype=_pos_dtype(len(f) + 1)), lens)
        out = f[src]
        firsts = np.cumsum(lens) - lens
        for pos, seq in zip(firsts[expanded].tolist(), exp_codes, strict=True):
            out[pos : pos + len(seq)] = seq
    end = src + 1
    attached = deleted[t.attach[codes[deleted]]].astype(src.dtype)  # searchsorted: one dtype
    if len(attached):
        owner = np.searchsorted(src, attached) - 1
        ok = owner >= 0
        np.maximum.at(end, owner[ok], attached[ok] + 1)
    return out, src, end


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


def _token_bounds(c: ClsArray, i: int, reach: int = 64) -> tuple[int, int]:
    """The token (run of WORD characters) around ``i``, looking at most ``reach`` away."""
    lo = max(0, i - reach)
    window = ((c[lo : i + reach + 1] & WORD) != 0).tolist()
    k = i - lo
    s = k
    while s > 0 and window[s - 1]:
        s -= 1
    e = k + 1
    while e < len(window) and window[e]:
        e += 1
    return lo + s, lo + e


def _substitute(f: CpArray, c: ClsArray) -> None:
    """Step 3, in place on ``f`` (one to one)."""
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
    near = np.flatnonzero(prev_letter | next_letter)
    if len(near) == 0:
        return
    done_until = -1
    for k in near.tolist():
        i = int(cand[k])
        ch = chr(int(f[i]))
        if ch in "$@":
            if ch == "$":
                j = i
                while j < n and f[j] == 36:
                    f[j] = 115  # "s"
                    j += 1
            elif prev_letter[k] and next_letter[k] and not _email_after(f, c, i + 1):
                f[i] = 97  # "a"
            continue
        if i < done_until:
            continue
        s, e = _token_bounds(c, i)
        done_until = e
        for j in range(s, e):
            rep = _LEET.get(chr(int(f[j])))
            if rep is not None:
                f[j] = ord(rep)


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


def _normalise_codes(
    codes: CpArray,
) -> tuple[CpArray, ClsArray, PosArray | None, PosArray | None]:
    """Steps 1-3 on code points: (normalised codes, their classes, source start and end
    of each, or None, None when one to one)."""
    f, start, end = _fold(codes)
    c = _tables().cls[f]
    delete = _spacing_deletions(c)
    if delete.any():
        keep = ~delete
        f = f[keep]
        c = c[keep]
        if start is None or end is None:
            start = _kept_positions(keep)
            end = start + 1
        else:
            start = start[keep]
            end = end[keep]
    _substitute(f, c)
    return f, c, start, end


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
    f, c, start, end = _normalise_codes(_to_codes(text))
    if start is None or end is None:
        start = np.arange(len(f), dtype=_pos_dtype(len(text) + 1))
        end = start + 1
    return NormalisedText(_to_text(f), text, start, end, f, c)


def collapse_repeats(nt: NormalisedText) -> NormalisedText:
    """Step 4: each run of one repeated character becomes one, mapped to the whole run."""
    f = nt.codes
    if len(f) < 2:
        return nt
    keep = np.ones(len(f), dtype=bool)
    keep[1:] = f[1:] != f[:-1]
    if keep.all():
        return nt
    idx = np.flatnonzero(keep)
    last = np.empty_like(idx)
    last[:-1] = idx[1:] - 1
    last[-1] = len(f) - 1
    codes = f[idx]
    return NormalisedText(
        _to_text(codes), nt.original, nt.start[idx], nt.end[last], codes, nt.classes[idx]
    )


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
