"""The versioned indicator lexicon: loading, validation, and finding its entries in ad text.

A lexicon is data (``lexicon/v1.toml`` beside this module; format in ``lexicon/README.md``):
entries with patterns, a log-odds weight, an evidence level and a source. :func:`load_lexicon`
validates a file and compiles it once; :meth:`Lexicon.find` returns every occurrence of every
entry in a text as :class:`~bastion.trafficking.schemas.Indicator` objects with spans in code
points of that text. Phrase entries are compiled into one alternation (longest phrase first,
whole words, case-insensitive, any run of whitespace between words); emoji into another.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from bastion.errors import InvalidInput
from bastion.trafficking.schemas import Contact, Field, Indicator

MATCH_KINDS = ("phrase", "regex", "emoji", "contact")
EVIDENCE_LEVELS = ("validated", "not-predictive", "glossary")
CATEGORIES = ("validated", "not_predictive", "emoji", "control")
#: The lexicon version shipped with Bastion and used when none is configured.
DEFAULT_VERSION = "v1"
#: Bytes of a lexicon file.
MAX_LEXICON_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One lexicon entry (see ``lexicon/README.md`` for the meaning of each field)."""

    id: str
    category: str
    match: str
    patterns: tuple[str, ...]
    weight: float
    evidence: str
    source: str
    note: str = ""
    contact_kind: str | None = None
    min_value: int | None = None
    max_value: int | None = None


@dataclass(frozen=True)
class Lexicon:
    """A validated, compiled lexicon. ``version`` is reported with every score."""

    version: str
    intercept: float
    entries: tuple[Entry, ...]
    description: str = ""
    _phrase_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    #: The phrase regex for ASCII text lowered first (same matches, about 3x faster than
    #: IGNORECASE); None when a phrase is not ASCII.
    _phrase_re_ascii: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _phrase_ids: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _emoji_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _emoji_ids: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _regexes: tuple[tuple[Entry, tuple[re.Pattern[str], ...]], ...] = field(
        default=(), repr=False, compare=False
    )

    def entry(self, entry_id: str) -> Entry:
        """The entry called ``entry_id``. Raises InvalidInput if there is none."""
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise InvalidInput(f"lexicon {self.version} has no entry {entry_id!r}")

    def with_weights(self, version: str, intercept: float, weights: dict[str, float]) -> Lexicon:
        """A copy with new weights (by entry id; missing ids keep theirs) and version."""
        entries = [replace(e, weight=float(weights.get(e.id, e.weight))) for e in self.entries]
        return build_lexicon(version, intercept, entries, self.description)

    def find(
        self, text: str, contacts: Sequence[Contact] = (), *, field: Field = "text"
    ) -> list[Indicator]:
        """Every occurrence of every entry in ``text`` (and, for ``contact`` entries, in
        ``contacts`` of the same field), sorted by (span, id). Deterministic."""
        by_id = {e.id: e for e in self.entries}
        out: list[Indicator] = []

        def add(e: Entry, s: int, t: int, matched: str) -> None:
            out.append(Indicator(e.id, (s, t), e.weight, e.source, e.evidence, e.category,
                                 matched, field))

        if self._phrase_re is not None:
            # ASCII text: lowering it keeps every offset and matches as IGNORECASE does
            fast = self._phrase_re_ascii is not None and text.isascii()
            pattern = self._phrase_re_ascii if fast else self._phrase_re
            assert pattern is not None
            for m in pattern.finditer(text.lower() if fast else text):
                s, t = m.span()
                matched = text[s:t]
                eid = self._phrase_ids.get(_phrase_key(matched))
                if eid is not None:
                    add(by_id[eid], s, t, matched)
        if self._emoji_re is not None:
            for m in self._emoji_re.finditer(text):
                eid = self._emoji_ids.get(m.group().replace("\ufe0f", ""))
                if eid is not None:
                    add(by_id[eid], m.start(), m.end(), m.group())
        found: dict[re.Pattern[str], list[re.Match[str]]] = {}  # entries sharing a pattern
        for e, pats in self._regexes:
            seen: set[tuple[int, int]] = set()
            for pat in pats:
                matches = found.get(pat)
                if matches is None:
                    matches = found[pat] = list(pat.finditer(text))
                for m in matches:
                    if m.span() in seen or m.end() == m.start():
                        continue
                    if "n" in pat.groupindex and m.group("n") is not None:
                        n = int(m.group("n"))
                        if e.min_value is not None and n < e.min_value:
                            continue
                        if e.max_value is not None and n > e.max_value:
                            continue
                    seen.add(m.span())
                    add(e, m.start(), m.end(), m.group())
        for e in self.entries:
            if e.match != "contact":
                continue
            for c in contacts:
                if c.field == field and c.disguised and c.kind == e.contact_kind:
                    add(e, c.span[0], c.span[1], c.raw)
        out.sort(key=lambda i: (i.span[0], i.span[1], i.id))
        return out

    def to_toml(self) -> str:
        """The lexicon as a TOML document that :func:`load_lexicon` reads back unchanged."""
        lines = [
            f"version = {_toml_str(self.version)}",
            f"intercept = {_toml_float(self.intercept)}",
            f"description = {_toml_str(self.description)}",
        ]
        for e in self.entries:
            lines += [
                "",
                "[[entry]]",
                f"id = {_toml_str(e.id)}",
                f"category = {_toml_str(e.category)}",
                f"match = {_toml_str(e.match)}",
                f"weight = {_toml_float(e.weight)}",
                f"evidence = {_toml_str(e.evidence)}",
                f"source = {_toml_str(e.source)}",
            ]
            if e.note:
                lines.append(f"note = {_toml_str(e.note)}")
            if e.contact_kind is not None:
                lines.append(f"contact_kind = {_toml_str(e.contact_kind)}")
            if e.min_value is not None:
                lines.append(f"min_value = {e.min_value}")
            if e.max_value is not None:
                lines.append(f"max_value = {e.max_value}")
            lines.append("patterns = [" + ", ".join(_toml_str(p) for p in e.patterns) + "]")
        return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_float(x: float) -> str:
    return repr(float(x))


def _phrase_key(s: str) -> str:
    return " ".join(s.casefold().split())


def _phrase_regex(phrase: str) -> str:
    words = phrase.split()
    return r"\s+".join(re.escape(w) for w in words)


def build_lexicon(
    version: str, intercept: float, entries: Iterable[Entry], description: str = ""
) -> Lexicon:
    """Validate ``entries`` and compile them into a :class:`Lexicon`.

    Raises InvalidInput naming the entry at fault: duplicate ids, unknown match kind,
    category or evidence level, a non-finite weight, a ``not-predictive`` entry with a
    positive weight, a missing source, a phrase claimed by two entries, a bad regex.
    """
    entries = tuple(entries)
    if not version or not isinstance(version, str):
        raise InvalidInput("lexicon version must be a non-empty string")
    if not math.isfinite(intercept):
        raise InvalidInput("lexicon intercept must be a finite number")
    ids: set[str] = set()
    phrase_ids: dict[str, str] = {}
    phrase_pats: list[str] = []
    emoji_ids: dict[str, str] = {}
    regexes: list[tuple[Entry, tuple[re.Pattern[str], ...]]] = []
    for e in entries:
        where = f"lexicon {version}, entry {e.id!r}"
        if not e.id or e.id in ids:
            raise InvalidInput(f"{where}: id empty or repeated")
        ids.add(e.id)
        if e.match not in MATCH_KINDS:
            raise InvalidInput(f"{where}: match must be one of {', '.join(MATCH_KINDS)}")
        if e.category not in CATEGORIES:
            raise InvalidInput(f"{where}: category must be one of {', '.join(CATEGORIES)}")
        if e.evidence not in EVIDENCE_LEVELS:
            raise InvalidInput(f"{where}: evidence must be one of {', '.join(EVIDENCE_LEVELS)}")
        if not math.isfinite(e.weight):
            raise InvalidInput(f"{where}: weight must be finite")
        if e.evidence == "not-predictive" and e.weight > 0:
            raise InvalidInput(f"{where}: a not-predictive entry must weigh <= 0")
        if not e.source.strip():
            raise InvalidInput(f"{where}: source is required")
        if e.match == "contact":
            if e.contact_kind not in ("phone", "email", "handle", "url"):
                raise InvalidInput(f"{where}: contact_kind must be phone, email, handle or url")
            continue
        if not e.patterns:
            raise InvalidInput(f"{where}: patterns must not be empty")
        if e.match == "phrase":
            for p in e.patterns:
                key = _phrase_key(p)
                if not key:
                    raise InvalidInput(f"{where}: empty phrase")
                if key in phrase_ids and phrase_ids[key] != e.id:
                    raise InvalidInput(f"{where}: phrase {p!r} also in {phrase_ids[key]!r}")
                phrase_ids[key] = e.id
                phrase_pats.append(p)
        elif e.match == "emoji":
            for p in e.patterns:
                emoji_ids[p.replace("\ufe0f", "")] = e.id
        else:
            try:
                regexes.append((e, tuple(re.compile(p) for p in e.patterns)))
            except re.error as exc:
                raise InvalidInput(f"{where}: bad regex: {exc}") from exc
    phrase_re = phrase_re_ascii = None
    if phrase_pats:
        alts = sorted(set(phrase_pats), key=lambda p: (-len(p), p))
        phrase_re = re.compile(
            r"(?<!\w)(?:" + "|".join(_phrase_regex(p) for p in alts) + r")(?!\w)", re.IGNORECASE
        )
        if all(p.isascii() for p in alts):
            phrase_re_ascii = re.compile(
                r"(?<!\w)(?:" + "|".join(_phrase_regex(p.lower()) for p in alts) + r")(?!\w)")
    emoji_re = None
    if emoji_ids:
        alts = sorted(emoji_ids, key=lambda p: (-len(p), p))
        emoji_re = re.compile("(?:" + "|".join(re.escape(p) for p in alts) + ")\ufe0f?")
    return Lexicon(
        version=version,
        intercept=float(intercept),
        entries=entries,
        description=description,
        _phrase_re=phrase_re,
        _phrase_re_ascii=phrase_re_ascii,
        _phrase_ids=phrase_ids,
        _emoji_re=emoji_re,
        _emoji_ids=emoji_ids,
        _regexes=tuple(regexes),
    )


def _entry_from(obj: Any, version: str) -> Entry:
    if not isinstance(obj, dict):
        raise InvalidInput(f"lexicon {version}: every [[entry]] must be a table")
    eid = obj.get("id")
    where = f"lexicon {version}, entry {eid!r}"
    pats = obj.get("patterns", [])
    if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise InvalidInput(f"{where}: patterns must be a list of strings")
    try:
        return Entry(
            id=str(eid or ""),
            category=str(obj.get("category", "")),
            match=str(obj.get("match", "")),
            patterns=tuple(pats),
            weight=float(obj["weight"]),
            evidence=str(obj.get("evidence", "")),
            source=str(obj.get("source", "")),
            note=str(obj.get("note", "")),
            contact_kind=obj.get("contact_kind"),
            min_value=None if obj.get("min_value") is None else int(obj["min_value"]),
            max_value=None if obj.get("max_value") is None else int(obj["max_value"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: {exc!r} (weight and bounds must be numbers)") from exc


def parse_lexicon(text: str, *, origin: str = "<lexicon>") -> Lexicon:
    """Parse and compile a lexicon TOML document. Raises InvalidInput naming ``origin``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{origin}: not valid TOML: {exc}") from exc
    version = data.get("version")
    if not isinstance(version, str):
        raise InvalidInput(f"{origin}: 'version' must be a string")
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidInput(f"{origin}: 'entry' must be an array of tables")
    try:
        intercept = float(data.get("intercept", 0.0))
    except (TypeError, ValueError):
        raise InvalidInput(f"{origin}: 'intercept' must be a number") from None
    entries = [_entry_from(o, version) for o in raw_entries]
    return build_lexicon(version, intercept, entries, str(data.get("description", "")))


_CACHE: dict[str, Lexicon] = {}


def load_lexicon(path: Path | str | None = None) -> Lexicon:
    """Load a lexicon: ``None`` for the shipped default (``lexicon/v1.toml``), else a path.

    The shipped lexicon is parsed once per process. Raises InvalidInput for a file that
    cannot be read, is over :data:`MAX_LEXICON_BYTES`, or is not a valid lexicon.
    """
    if path is None:
        if DEFAULT_VERSION not in _CACHE:
            res = resources.files("bastion.trafficking").joinpath(
                f"lexicon/{DEFAULT_VERSION}.toml"
            )
            _CACHE[DEFAULT_VERSION] = parse_lexicon(
                res.read_text(encoding="utf-8"), origin=f"lexicon/{DEFAULT_VERSION}.toml"
            )
        return _CACHE[DEFAULT_VERSION]
    p = Path(path)
    try:
        if p.stat().st_size > MAX_LEXICON_BYTES:
            raise InvalidInput(f"{p}: lexicon larger than {MAX_LEXICON_BYTES} bytes")
        return parse_lexicon(p.read_text(encoding="utf-8"), origin=str(p))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read lexicon {p}: {exc}") from exc
