"""The ``keyword`` signal type: terms and phrases from keyword lists (IWF Keywords List,
Lantern), matched on normalised text (:mod:`bastion.signals.text`).

A signal value is the term as written, in a tidy canonical form: Unicode NFC, outer
whitespace stripped, inner whitespace runs as one space (``"  cheese   pizza "`` ->
``"cheese pizza"``); case and spelling are kept for display. Two terms are the same signal
(distance 0) when they normalise to the same matching form (``EXAMPLE`` and ``ｅｘａｍｐｌｅ``).

A list entry adds three columns of the import (:class:`KeywordEntry`):

- ``match``: ``word`` (default: whole words in scripts written with spaces), ``prefix``
  (the term starts a word: ``example`` finds ``examples``) or ``substring`` (anywhere).
  Scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) always
  match as substrings, whatever the mode;
- ``language``: a BCP 47 tag (``en``, ``pt-BR``, ``zh-Hans``) kept as provenance;
- ``collapse_repeats``: ``true`` to also match with repeated letters collapsed
  (``exxxample``); off by default because it merges words such as ``good`` and ``god``.

Errors: :class:`~bastion.errors.InvalidInput` naming the column at fault;
:class:`~bastion.errors.LimitExceeded` for a term over :data:`MAX_TERM_CHARS`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from bastion.errors import InvalidInput, LimitExceeded
from bastion.signals.base import SignalType, register
from bastion.signals.text import BATCH_SEPARATOR, normalise_term

#: Longest term accepted, in code points.
MAX_TERM_CHARS = 256

KeywordMatchMode = Literal["word", "prefix", "substring"]
KEYWORD_MATCH_MODES: tuple[KeywordMatchMode, ...] = ("word", "prefix", "substring")

_SPACES_RE = re.compile(r"\s+")
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


def canonical_term(value: str) -> str:
    """The canonical form of a term: NFC, whitespace tidied. Raises :class:`InvalidInput`
    for a non-string, an empty term, a term of only invisible characters, or the batch
    separator U+FFFF; :class:`LimitExceeded` over :data:`MAX_TERM_CHARS`."""
    if not isinstance(value, str):
        raise InvalidInput("a keyword must be a string")
    term = _SPACES_RE.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if not term:
        raise InvalidInput("empty keyword")
    if len(term) > MAX_TERM_CHARS:
        raise LimitExceeded(f"keyword longer than {MAX_TERM_CHARS} characters")
    if BATCH_SEPARATOR in term:
        raise InvalidInput("keyword contains U+FFFF")
    if not normalise_term(term):
        raise InvalidInput(f"keyword {value!r} has no visible characters")
    return term


@register
class KeywordSignal(SignalType):
    """A keyword-list term (module docstring). Distance 0 when both terms normalise to the
    same matching form, else 1; threshold 0."""

    name = "keyword"
    default_threshold = 0
    examples = ("example", "cheese pizza", "🍕")

    @classmethod
    def parse(cls, value: str) -> str:
        return canonical_term(value)

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b or normalise_term(a) == normalise_term(b) else 1


@dataclass(frozen=True, slots=True)
class KeywordEntry:
    """A keyword list entry: the canonical ``term``, its ``match`` mode, ``language``
    (BCP 47, lower-case primary subtag, or None) and ``collapse_repeats``.

    ``normalised`` is the matching form (:func:`bastion.signals.text.normalise_term`).
    """

    term: str
    match: KeywordMatchMode = "word"
    language: str | None = None
    collapse_repeats: bool = False

    @property
    def normalised(self) -> str:
        """The form matched against normalised text."""
        return normalise_term(self.term, collapse=self.collapse_repeats)


def _parse_bool(value: str | bool | None, column: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidInput(f"{column} must be true or false, got {value!r}")


def parse_keyword_entry(
    value: str,
    *,
    match: str | None = None,
    language: str | None = None,
    collapse_repeats: str | bool | None = None,
) -> KeywordEntry:
    """Validate one keyword list row: the term plus the optional ``match``, ``language``
    and ``collapse_repeats`` columns (empty or None = default). Raises
    :class:`InvalidInput` naming the column at fault."""
    term = canonical_term(value)
    mode = (match or "word").strip().lower()
    if mode not in KEYWORD_MATCH_MODES:
        raise InvalidInput(
            f"match must be one of {', '.join(KEYWORD_MATCH_MODES)}, got {match!r}"
        )
    lang: str | None = None
    if language is not None and language.strip():
        tag = language.strip().replace("_", "-")
        if not _LANGUAGE_RE.fullmatch(tag):
            raise InvalidInput(f"language must be a BCP 47 tag such as en or pt-BR: {language!r}")
        primary, _, rest = tag.partition("-")
        lang = primary.lower() + (f"-{rest}" if rest else "")
    return KeywordEntry(term, mode, lang, _parse_bool(collapse_repeats, "collapse_repeats"))
