"""A slow, plain reference of keyword normalisation and matching, for differential tests.

:mod:`bastion.signals.text` and :mod:`bastion.index.keyword` are vectorised (numpy tables,
sparse offset maps, several Aho-Corasick automata); this module restates what they compute
one character at a time, with lists and ``str.find``, straight from the module docstrings.
The optimised code must give exactly the same normalised text, spans and matches.

Only the per-character primitives (:func:`~bastion.signals.text.fold_char`,
:func:`~bastion.signals.text.char_class`) come from the source: they are the specification
of step 1 for one character.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bastion.signals.text import (
    BOUNDARY_WORD,
    DIGIT,
    LETTER,
    SEP,
    SPACE,
    SYMBOL,
    WORD,
    char_class,
    fold_char,
)

_REMOVED_RANGES = (
    (0xFE00, 0xFE0F),
    (0xE0100, 0xE01EF),
    (0x1F3FB, 0x1F3FF),
    (0x115F, 0x1160),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
)
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}


def _attached(ch: str) -> bool:
    """A deleted character that belongs to the one before it (spans cover it)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch).startswith("M")
        or any(lo <= cp <= hi for lo, hi in _REMOVED_RANGES)
        or cp == 0x200D
    )


@dataclass
class RefText:
    """Normalised ``chars`` with, per character, the original ``[start, end)``."""

    chars: list[str]
    start: list[int]
    end: list[int]
    classes: list[int]

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def keep(self, mask: list[bool]) -> RefText:
        idx = [i for i, k in enumerate(mask) if k]
        return RefText([self.chars[i] for i in idx], [self.start[i] for i in idx],
                       [self.end[i] for i in idx], [self.classes[i] for i in idx])


def _step1(text: str) -> RefText:
    chars: list[str] = []
    start: list[int] = []
    end: list[int] = []
    for i, ch in enumerate(text):
        folded = fold_char(ch)
        if not folded:
            if _attached(ch) and chars:
                end[-1] = max(end[-1], i + 1)
            continue
        for c in folded:
            chars.append(c)
            start.append(i)
            end.append(i + 1)
    return RefText(chars, start, end, [char_class(c) for c in chars])


def _step2(t: RefText) -> RefText:
    c = t.classes
    n = len(c)

    def word(i: int) -> bool:
        return 0 <= i < n and bool(c[i] & WORD)

    def single(i: int) -> bool:
        return word(i) and not word(i - 1) and not word(i + 1)

    def link(i: int) -> bool:
        return 0 <= i < n and bool(c[i] & SEP) and single(i - 1) and single(i + 1)

    delete = [link(i) and (link(i - 2) or link(i + 2)) for i in range(n)]
    for i in range(1, n):
        if c[i] & SPACE and c[i - 1] & SPACE:
            delete[i] = True
    return t.keep([not d for d in delete])


def _token(c: list[int], i: int, reach: int = 64) -> tuple[int, int]:
    lo = max(0, i - reach)
    hi = min(len(c), i + reach + 1)
    s = i
    while s > lo and c[s - 1] & WORD:
        s -= 1
    e = i + 1
    while e < hi and c[e] & WORD:
        e += 1
    return s, e


def _email_after(f: list[str], c: list[int], i: int) -> bool:
    n = len(f)
    while i < n and c[i] & LETTER:
        i += 1
    if i >= n:
        return False
    if f[i] == ".":
        return i + 1 < n and bool(c[i + 1] & WORD)
    return bool(c[i] & WORD) or f[i] in "@-"


def _step3(t: RefText) -> RefText:
    f = list(t.chars)
    c = t.classes
    n = len(f)
    done_until = -1
    for i in range(n):
        if not c[i] & (DIGIT | SYMBOL):
            continue
        prev_letter = i > 0 and bool(c[i - 1] & LETTER)
        next_letter = i < n - 1 and bool(c[i + 1] & LETTER)
        if not (prev_letter or next_letter):
            continue
        if f[i] in "$@":
            if f[i] == "$":
                j = i
                while j < n and f[j] == "$":
                    f[j] = "s"
                    j += 1
            elif prev_letter and next_letter and not _email_after(f, c, i + 1):
                f[i] = "a"
            continue
        if i < done_until:
            continue
        s, e = _token(c, i)
        done_until = e
        for j in range(s, e):
            f[j] = _LEET.get(f[j], f[j])
    return RefText(f, t.start, t.end, c)


def ref_normalise(text: str) -> RefText:
    """Steps 1-3 of :mod:`bastion.signals.text`, one character at a time."""
    return _step3(_step2(_step1(text)))


def ref_collapse(t: RefText) -> RefText:
    """Step 4: runs of one character become one, spanning the whole run."""
    out = RefText([], [], [], [])
    for i, ch in enumerate(t.chars):
        if out.chars and i > 0 and t.chars[i - 1] == ch:
            out.end[-1] = t.end[i]
            continue
        out.chars.append(ch)
        out.start.append(t.start[i])
        out.end.append(t.end[i])
        out.classes.append(t.classes[i])
    return out


def ref_pattern(term: str, collapse: bool) -> str:
    t = ref_normalise(term)
    if collapse:
        t = ref_collapse(t)
    return t.text.strip(" ")


def ref_match(
    entries: dict[str, tuple[str, str, bool]], text: str
) -> list[tuple[tuple[int, int], str]]:
    """Every ``(span, key)`` match of ``entries`` (key -> (term, mode, collapse)) in ``text``,
    sorted as :meth:`bastion.index.keyword.KeywordIndex.match` sorts them."""
    base = ref_normalise(text)
    collapsed = ref_collapse(base)
    found: set[tuple[tuple[int, int], str]] = set()
    for key, (term, mode, collapse) in entries.items():
        pattern = ref_pattern(term, collapse)
        if not pattern:
            continue
        t = collapsed if collapse else base
        s_text = t.text
        n = len(t.chars)
        need_left = mode in ("word", "prefix") and bool(char_class(pattern[0]) & BOUNDARY_WORD)
        need_right = mode == "word" and bool(char_class(pattern[-1]) & BOUNDARY_WORD)
        variants = {pattern, pattern.replace("l", "i")}
        for v in variants:
            i = s_text.find(v)
            while i >= 0:
                j = i + len(v)
                left_word = i > 0 and bool(t.classes[i - 1] & BOUNDARY_WORD)
                right_word = j < n and bool(t.classes[j] & BOUNDARY_WORD)
                if not ((need_left and left_word) or (need_right and right_word)):
                    found.add(((t.start[i], t.end[j - 1]), key))
                i = s_text.find(v, i + 1)
    return sorted(found, key=lambda m: (m[0], m[1]))
