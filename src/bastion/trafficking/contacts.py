"""Contact extraction from ad text: phone numbers (disguised ones too), e-mail, handles, URLs.

Phones. The text is cut into tokens once (one regular expression): runs of decimal digits of
any script (``\\d`` in Python is Unicode ``Nd``: ASCII, fullwidth ``０-９``, Arabic-Indic,
mathematical ``𝟎-𝟗`` ...), other digit characters (circled ``①``, superscript ``²``, dingbat
``❶``: those with ``unicodedata.digit``), emoji keycaps (``2️⃣`` = digit, U+FE0F, U+20E3),
letter runs, separator runs and everything else. Letter runs are folded (NFKC, case fold,
Cyrillic/Greek look-alikes to Latin) and, if they split wholly into number words
(``zero`` ... ``nine``, ``oh``) and the look-alike letters ``O``/``o`` (0) and ``l``/``I`` (1),
become digits: ``two1three`` is ``213``, ``fiveO`` is ``50``. Separators are spaces (one line
break at most, so numbers split across a line are found), dots, dashes of every kind, stars,
slashes, brackets, commas, colons, ``+``, zero-width and other format characters. A run of
digit groups joined by separators is a *candidate*; every window of whole groups with 7 to
17 digits is checked by the ``phonenumbers`` library (Google's libphonenumber metadata),
longest first from the left, and kept if :func:`phonenumbers.is_valid_number` holds for the
ad's region, then the default region (with a leading ``+``: as international). This is the
"lenient for recall, then validated" design of issue 8: the candidate step accepts far more
than ``phonenumbers.Leniency.POSSIBLE`` would, and only valid numbers survive.

Groups made only of look-alike letters (``O``, ``I``, ``oh``) count only between digit groups
of the same run ("two oh two"), never at its ends ("... 0143 I am").

Not phones: before tokenising, spans that read as a price (``$200``, ``150/hr``, ``80 roses``),
time (``10:30``, ``9pm``, ``24/7``), date (``12/05/2024``, ``2024-05-12``, ``May 12``), age
(``age 21``, ``21 yrs``), height (``5'6"``, ``170 cm``), weight, body measurements
(``34-24-36``), ZIP code (``zip 90210``, ``TX 77002``) or room number (``room 1204``,
``#12``) are masked: their characters break candidates.

``disguised`` is True for a phone with any non-ASCII digit, spelled-out or look-alike digit,
keycap, separator outside ``space - . ( ) / +``, line break, separator longer than 3
characters, or more than two single-digit groups besides a ``+`` country code.

E-mail: plain ``local@domain.tld``; disguised ``name at domain dot com``, ``name (at) domain
(dot) com``, ``name[at]domain[.]com``, ``name @ domain . com`` (disguised forms require a
common top-level domain). Handles: ``snap: name``, ``kik - name``, ``telegram @name``,
``IG: name`` ... (see :data:`PLATFORMS`) and bare ``@name``. URLs: through the ``url`` signal
type's extraction (:func:`bastion.signals.url.extract_urls`), canonical form as value.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from bastion.errors import InvalidInput
from bastion.signals import url as url_signal
from bastion.trafficking.schemas import Contact, Field

# --------------------------------------------------------------------------------------------
# Regions

#: Default region when an ad's location names none (ISO 3166-1 alpha-2).
DEFAULT_REGION = "US"

_US_STATES = {
    "AL": "alabama", "AK": "alaska", "AZ": "arizona", "AR": "arkansas", "CA": "california",
    "CO": "colorado", "CT": "connecticut", "DE": "delaware", "FL": "florida", "GA": "georgia",
    "HI": "hawaii", "ID": "idaho", "IL": "illinois", "IN": "indiana", "IA": "iowa",
    "KS": "kansas", "KY": "kentucky", "LA": "louisiana", "ME": "maine", "MD": "maryland",
    "MA": "massachusetts", "MI": "michigan", "MN": "minnesota", "MS": "mississippi",
    "MO": "missouri", "MT": "montana", "NE": "nebraska", "NV": "nevada", "NH": "new hampshire",
    "NJ": "new jersey", "NM": "new mexico", "NY": "new york", "NC": "north carolina",
    "ND": "north dakota", "OH": "ohio", "OK": "oklahoma", "OR": "oregon", "PA": "pennsylvania",
    "RI": "rhode island", "SC": "south carolina", "SD": "south dakota", "TN": "tennessee",
    "TX": "texas", "UT": "utah", "VT": "vermont", "VA": "virginia", "WA": "washington",
    "WV": "west virginia", "WI": "wisconsin", "WY": "wyoming", "DC": "district of columbia",
}

#: Location words -> region. Canada shares +1 with the US, so provinces resolve alike.
_LOCATION_WORDS: dict[str, str] = {
    **{name: "US" for name in _US_STATES.values()},
    "usa": "US", "united states": "US", "us": "US",
    "canada": "CA", "ontario": "CA", "quebec": "CA", "british columbia": "CA",
    "alberta": "CA", "toronto": "CA", "montreal": "CA", "vancouver": "CA",
    "uk": "GB", "united kingdom": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "great britain": "GB", "gb": "GB", "london": "GB",
    "manchester": "GB", "birmingham uk": "GB", "glasgow": "GB", "edinburgh": "GB",
    "leeds": "GB", "liverpool": "GB", "bristol": "GB", "cardiff": "GB", "belfast": "GB",
    "ireland": "IE", "dublin": "IE", "australia": "AU", "sydney": "AU", "melbourne": "AU",
    "new zealand": "NZ", "germany": "DE", "berlin": "DE", "france": "FR", "paris": "FR",
    "spain": "ES", "madrid": "ES", "italy": "IT", "mexico": "MX", "netherlands": "NL",
    "amsterdam": "NL", "india": "IN", "philippines": "PH", "brazil": "BR",
}


def region_for_location(location: str | None, default: str = DEFAULT_REGION) -> str:
    """Region (ISO alpha-2, as ``phonenumbers`` wants it) for an ad's free-text location.

    ``"Houston, TX"`` -> ``US``; ``"London, UK"`` -> ``GB``; ``"Toronto"`` -> ``CA``; a trailing
    two-letter US state code counts as US; anything unrecognised gives ``default``.
    """
    if not location:
        return default
    low = " ".join(re.findall(r"[^\W\d_]+", location.casefold()))
    parts = [p.strip() for p in re.split(r"[,;/|()]", location) if p.strip()]
    for part in reversed(parts):
        if part.upper() in _US_STATES and len(part) == 2 and part.isupper():
            return "US"
        key = " ".join(re.findall(r"[^\W\d_]+", part.casefold()))
        if key in _LOCATION_WORDS:
            return _LOCATION_WORDS[key]
    for word, region in _LOCATION_WORDS.items():
        if len(word) > 2 and re.search(rf"\b{re.escape(word)}\b", low):
            return region
    return default


# --------------------------------------------------------------------------------------------
# Masks: spans that are prices, times, dates, ages, heights, measurements, ZIPs, rooms

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NO_DIGIT_AFTER = r"(?![\d])(?!\s?[-./]\s?\d)"
_NO_DIGIT_BEFORE = r"(?<![\d])(?<![\d][-./])"
_MASK_PATTERNS = [
    # prices
    r"[$€£¥]\s?\d[\d,.]*(?:\s?[kK]\b)?",
    r"\b\d[\d,.]*\s?(?:\$|€|£|usd\b|dollars?\b|bucks\b|roses?\b|eur\b|gbp\b|donations?\b)",
    r"\b\d+\s?(?:/|per\s)\s?(?:hr|hour|h|hh|half|session|visit|night|day)\b",
    r"\b\d+\s?(?:hh|hr|hrs|hours?|mins?|minutes?|qv|nights?|days?|weeks?)\b",
    r"\b\d{1,3}\s?%",
    # times
    r"\b24\s?/\s?7\b",
    r"\b\d{1,2}(?::\d{2})?\s?(?:a\.?m\b\.?|p\.?m\b\.?)",
    r"\b\d{1,2}\s?(?:-|–|to)\s?\d{1,2}\s?(?:a\.?m\b\.?|p\.?m\b\.?)",
    r"\b\d{1,2}[:h]\d{2}\b",
    # dates
    _NO_DIGIT_BEFORE + r"\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})" + _NO_DIGIT_AFTER,
    _NO_DIGIT_BEFORE + r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?" + _NO_DIGIT_AFTER,
    r"\b" + _MONTHS + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?\b",
    r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r"\b\.?(?:,?\s+\d{4})?",
    r"\b\d{1,2}(?:st|nd|rd|th)\b",
    # ages
    r"\b(?:age|aged|edad|ages)\s*[:=]?\s*\d{1,2}\b",
    r"\b\d{1,2}\s?(?:yo|y/o|y\.o\.?|yrs?|years?(?:\s+old)?)(?![a-z])",
    r"\bi'?m\s+\d{1,2}\b(?!\s?[-.]?\s?\d)",
    # heights, weights, measurements
    r"\b\d\s?(?:'|’|ft\b|feet\b|foot\b)\s?\d{0,2}\s?(?:\"|”|''|in\b|inch(?:es)?\b)?",
    r"\b\d{2,3}\s?cm\b",
    r"\b\d[.,]\d{1,2}\s?m\b",
    r"\b\d{2,3}\s?(?:lbs?|kgs?|pounds)\b",
    r"\b\d{2}[a-z]{0,3}\s?[-/]\s?\d{2}\s?[-/]\s?\d{2}" + _NO_DIGIT_AFTER,
    # ZIP codes
    r"\b(?:zip|zipcode|zip\s+code|postal\s+code|postcode)\s*[:#]?\s*\d{5}(?:-\d{4})?\b",
    # rooms
    r"\b(?:room|rm|suite|ste|apt|apartment|unit|flat|door|floor|bldg|building)\s*"
    r"(?:no\.?|number|nr\.?|#)?\s*\d{1,5}[a-z]?\b",
    r"#\s?\d{1,5}\b",
]
_MASK_RE = re.compile("|".join(f"(?:{p})" for p in _MASK_PATTERNS), re.IGNORECASE)
#: The same patterns for ASCII text lowered first (same offsets; ~3x faster than IGNORECASE);
#: their only upper-case literal, the ISO date's ``T``, lowered.
_MASK_LOWER_RE = re.compile("|".join(f"(?:{p})" for p in _MASK_PATTERNS).replace("[T ]", "[t ]"))
_STATE_ZIP_RE = re.compile(
    r"\b(?:" + "|".join(_US_STATES) + r")\s+\d{5}(?:-\d{4})?" + _NO_DIGIT_AFTER
)


def non_phone_spans(
    text: str, lo: int = 0, hi: int | None = None
) -> list[tuple[int, int]]:
    """Spans of ``text[lo:hi]`` that read as prices, times, dates, ages, heights,
    measurements, ZIP codes or room numbers (``[start, end)`` code points of ``text``,
    sorted, possibly overlapping)."""
    end = len(text) if hi is None else hi
    if text.isascii():
        spans = [m.span() for m in _MASK_LOWER_RE.finditer(text.lower(), lo, end)]
    else:
        spans = [m.span() for m in _MASK_RE.finditer(text, lo, end)]
    spans.extend(m.span() for m in _STATE_ZIP_RE.finditer(text, lo, end))
    spans.sort()
    return spans


# --------------------------------------------------------------------------------------------
# Tokens


def _other_digit_chars() -> str:
    chars = []
    for lo, hi in ((0x00B2, 0x00B9), (0x2070, 0x2089), (0x2460, 0x24FF), (0x2776, 0x2793),
                   (0x1F100, 0x1F10A)):
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if unicodedata.digit(ch, None) is not None and not ch.isdecimal():
                chars.append(ch)
    return "".join(chars)


_OTHER_DIGITS = _other_digit_chars()
_SEP_CHARS = (
    " \t\u00a0\u1680\u2000-\u200d\u202f\u205f\u3000\u2060\ufeff\ufe0f\u00ad"
    ".\u2024\u3002\uff0e\\-\u2010-\u2015\u2212\ufe63\uff0d*\u2217\u00b7\u2022\u30fb"
    "_~|/\\\\()\\[\\]{}<>,:;+=\"'\u2018\u2019\u201c\u201d"
)
_TOKEN_RE = re.compile(
    r"(?P<keycap>[0-9]\ufe0f?\u20e3)"
    r"|(?P<digits>\d+)"
    rf"|(?P<odigit>[{_OTHER_DIGITS}])"
    r"|(?P<word>[^\W\d_]+)"
    rf"|(?P<sep>(?:[{_SEP_CHARS}]|\r?\n)+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_PLAIN_SEP = set(" -.()/+\u00a0")

#: Cyrillic and Greek letters that look like Latin ones (a small part of Unicode's
#: confusables.txt, for the letters number words and look-alike digits use).
_CONFUSABLES = str.maketrans({
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0445": "x",
    "\u0456": "i", "\u0458": "j", "\u04cf": "l", "\u0455": "s", "\u0443": "y", "\u0432": "b",
    "\u043d": "h", "\u0442": "t", "\u03bf": "o", "\u03b9": "i", "\u03bd": "v", "\u03c4": "t",
    "\u0406": "i", "\u041e": "o", "\u039f": "o", "\u0399": "i",
    "\u0415": "e", "\u0395": "e", "\u0422": "t", "\u03a4": "t", "\u041d": "h", "\u0397": "h",
    "\u0425": "x", "\u03a7": "x", "\u0412": "b", "\u0392": "b", "\u041c": "m", "\u039c": "m",
    "\u0417": "3",
})

_NUMBER_WORDS: dict[str, tuple[str, bool]] = {
    "zero": ("0", False), "one": ("1", False), "two": ("2", False), "three": ("3", False),
    "four": ("4", False), "five": ("5", False), "six": ("6", False), "seven": ("7", False),
    "eight": ("8", False), "nine": ("9", False),
    # weak: look-alike letters and "oh"; count only next to or between real digits
    "oh": ("0", True), "o": ("0", True), "l": ("1", True), "i": ("1", True),
}
_WORD_LETTERS = frozenset("".join(_NUMBER_WORDS))
_MAX_WORD = max(len(w) for w in _NUMBER_WORDS)


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold().translate(_CONFUSABLES)


@lru_cache(maxsize=65_536)
def _word_digits(word: str) -> tuple[str, tuple[tuple[str, int, int, bool], ...] | None]:
    """(folded word, its number-word segmentation or None), memoised per word."""
    folded = _fold(word)
    return folded, _segment(folded)


@lru_cache(maxsize=65_536)
def _segment(folded: str) -> tuple[tuple[str, int, int, bool], ...] | None:
    """Split a folded letter run wholly into number words: ``(digit, start, end, weak)``
    per piece (offsets in ``folded``), or None. Longest words first, memoised."""
    if not folded or len(folded) > 64 or not set(folded) <= _WORD_LETTERS:
        return None
    n = len(folded)
    best: list[tuple[tuple[str, int, int, bool], ...] | None] = [None] * (n + 1)
    best[n] = ()
    for i in range(n - 1, -1, -1):
        for ln in range(min(_MAX_WORD, n - i), 0, -1):
            piece = folded[i : i + ln]
            hit = _NUMBER_WORDS.get(piece)
            rest = best[i + ln]
            if hit is not None and rest is not None:
                best[i] = ((hit[0], i, i + ln, hit[1]), *rest)
                break
    return best[0]


@dataclass(slots=True)
class _Unit:
    digit: str
    start: int
    end: int
    weak: bool
    odd: bool  # not a plain ASCII digit
    word: int = 0  # 0: a digit character; 1: a number word ("five"); 2: the word "oh"


@dataclass(slots=True)
class _Group:
    units: list[_Unit]
    sep_before: str  # separator text before this group ("" for the first)

    @property
    def strong(self) -> bool:
        return any(not u.weak for u in self.units)


def _runs(
    text: str, masks: Sequence[tuple[int, int]], lo: int, hi: int
) -> list[list[_Group]]:
    """Cut ``text[lo:hi]`` into candidate runs of digit groups (module docstring)."""
    mask_starts = [s for s, _ in masks]
    mask_ends: list[int] = []
    reach = -1
    for _, e in masks:
        reach = max(reach, e)
        mask_ends.append(reach)

    def masked(pos: int) -> bool:
        i = bisect.bisect_right(mask_starts, pos) - 1
        return i >= 0 and mask_ends[i] > pos

    runs: list[list[_Group]] = []
    run: list[_Group] = []
    group: list[_Unit] = []
    pending_sep = ""

    def close_group() -> None:
        nonlocal group, pending_sep
        if group:
            run.append(_Group(group, pending_sep))
            group = []
        pending_sep = ""

    def close_run() -> None:
        nonlocal run, pending_sep
        close_group()
        if run:
            runs.append(run)
        run = []
        pending_sep = ""

    for m in _TOKEN_RE.finditer(text, lo, hi):
        kind = m.lastgroup
        start, end = m.span()
        if kind in ("keycap", "digits", "odigit", "word") and masks and masked(start):
            close_run()
            continue
        if kind == "digits":
            tok = m.group()
            for k, ch in enumerate(tok):
                val = ch if ch.isascii() else str(unicodedata.digit(ch, 0))
                group.append(_Unit(val, start + k, start + k + 1, False, not ch.isascii()))
        elif kind == "keycap":
            group.append(_Unit(m.group()[0], start, end, False, True))
        elif kind == "odigit":
            group.append(_Unit(str(unicodedata.digit(m.group(), 0)), start, end, False, True))
        elif kind == "word":
            word = m.group()
            folded, seg = _word_digits(word)
            if seg is None:
                close_run()
                continue
            same_len = len(folded) == len(word)
            for digit, s, e, weak in seg:
                kind_word = 2 if weak and e - s == 2 else (0 if weak else 1)
                if same_len:
                    group.append(_Unit(digit, start + s, start + e, weak, True, kind_word))
                else:
                    group.append(_Unit(digit, start, end, weak, True, kind_word))
        elif kind == "sep":
            tok = m.group()
            if tok.count("\n") > 1 or len(tok) > 8:
                close_run()
            else:
                close_group()
            pending_sep = tok
        else:
            close_run()
    close_run()
    return [_trim_weak(r) for r in runs]


def _trim_weak(run: list[_Group]) -> list[_Group]:
    """Drop groups made only of look-alike letters at either end of a run, unless they are
    joined to the next group without whitespace (``84O-555-OIoI``) or are the word "oh" in a
    run of spelled-out digits (``... one three oh``)."""
    spelled = any(u.word == 1 for g in run for u in g.units)

    def keep(g: _Group, sep: str) -> bool:
        if g.strong or (spelled and all(u.word == 2 for u in g.units if u.weak)):
            return True
        return bool(sep) and not any(ch.isspace() for ch in sep)

    lo, hi = 0, len(run)
    while lo < hi and not keep(run[lo], run[lo + 1].sep_before if lo + 1 < hi else ""):
        lo += 1
    while hi > lo and not keep(run[hi - 1], run[hi - 1].sep_before if hi - 1 > lo else ""):
        hi -= 1
    return run[lo:hi]


# --------------------------------------------------------------------------------------------
# Validation with phonenumbers


@lru_cache(maxsize=512)
def _region_shape(region: str) -> tuple[frozenset[int], str, str, str]:
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if md is None:
        raise InvalidInput(f"unknown phone region {region!r}")
    general = md.general_desc
    known = general.possible_length if general is not None else None
    lengths = frozenset(known or (7, 8, 9, 10, 11, 12))
    intl = md.international_prefix or ""
    idd = intl if intl.isdigit() else ""
    return lengths, md.national_prefix or "", str(md.country_code), idd


def _plausible(digits: str, plus: bool, region: str) -> bool:
    """Cheap pre-filter before the (slow, ~80 us) phonenumbers parse."""
    n = len(digits)
    if plus:
        return 8 <= n <= 15
    lengths, nat, cc, idd = _region_shape(region)
    if n in lengths:
        return True
    if nat and digits.startswith(nat) and n - len(nat) in lengths:
        return True
    if digits.startswith(cc) and n - len(cc) in lengths:
        return True
    return bool(idd and digits.startswith(idd) and 8 <= n - len(idd) <= 15)


@lru_cache(maxsize=131_072)
def _validate(digits: str, plus: bool, region: str) -> str | None:
    try:
        num = phonenumbers.parse(("+" if plus else "") + digits, None if plus else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _plus_before(sep: str) -> bool:
    return "+" in sep and sep.rstrip(" \u00a0").endswith("+")


def _disguised(groups: Sequence[_Group]) -> bool:
    singles = 0
    for i, g in enumerate(groups):
        if any(u.odd or u.weak for u in g.units):
            return True
        if i > 0:
            sep = g.sep_before
            if len(sep) > 3 or "\n" in sep or not set(sep) <= _PLAIN_SEP:
                return True
        country_code = i == 0 and _plus_before(g.sep_before)
        trunk_zero = g.sep_before.endswith("(") and g.units[0].digit == "0"
        if len(g.units) == 1 and not country_code and not trunk_zero:
            singles += 1
    return singles > 2


def _phones_in_run(
    text: str, run: list[_Group], regions: Sequence[str], field: Field
) -> list[Contact]:
    out: list[Contact] = []
    counts = [len(g.units) for g in run]
    i = 0
    while i < len(run):
        found = None
        total = 0
        ends = []
        for j in range(i, len(run)):
            total += counts[j]
            if total > 17:
                break
            ends.append((j, total))
        for j, total in reversed(ends):
            if total < 7:
                break
            window = run[i : j + 1]
            digits = "".join(u.digit for g in window for u in g.units)
            plus = _plus_before(window[0].sep_before)
            for region in regions:
                if not _plausible(digits, plus, region):
                    continue
                e164 = _validate(digits, plus, region)
                if e164 is not None:
                    found = (j, e164, plus)
                    break
                if plus:
                    break
            if found:
                break
        if found is None:
            i += 1
            continue
        j, e164, plus = found
        window = run[i : j + 1]
        start = window[0].units[0].start
        if start > 0 and text[start - 1] in "([":
            start -= 1
        if plus:
            k = text.rfind("+", 0, start)
            if k >= 0 and not text[k + 1 : start].strip():
                start = k
        end = window[-1].units[-1].end
        out.append(Contact("phone", e164, text[start:end], (start, end), _disguised(window),
                           field))
        i = j + 1
    return out


def extract_phones(
    text: str,
    *,
    region: str | None = None,
    default_region: str = DEFAULT_REGION,
    exclude: Sequence[tuple[int, int]] = (),
    field: Field = "text",
) -> list[Contact]:
    """Phone numbers in ``text``, E.164 values, sorted by span.

    ``region`` is the ad's region (see :func:`region_for_location`), tried first;
    ``default_region`` next. ``exclude`` spans (e.g. e-mail addresses and URLs already found)
    are treated like masked non-phone spans. Raises InvalidInput for an unknown region.
    """
    regions = [r.upper() for r in dict.fromkeys(x for x in (region, default_region) if x)]
    for r in regions:
        _region_shape(r)
    out: list[Contact] = []
    for lo, hi in _windows(text):
        excl = [sp for sp in exclude if sp[0] < hi and lo < sp[1]]
        runs = _runs(text, sorted([*non_phone_spans(text, lo, hi), *excl]), lo, hi)
        for run in runs:
            if sum(len(g.units) for g in run) >= 7:
                out.extend(_phones_in_run(text, run, regions, field))
    return out


#: Characters around a digit or number word that phone candidates are looked for in.
_WINDOW_MARGIN = 32
_SEED_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SEED_RE = re.compile(
    rf"[\d{_OTHER_DIGITS}\uff21-\uff5a\u0400-\u04ff\u0370-\u03ff]|" + "|".join(_SEED_WORDS)
)
_SEED_SLOW_RE = re.compile(
    rf"[\d{_OTHER_DIGITS}\uff21-\uff5a\u0400-\u04ff\u0370-\u03ff]|" + "|".join(_SEED_WORDS),
    re.IGNORECASE,
)


#: Seeds (digits, number words) a window needs before its tokens are looked at: a phone
#: number has at least 7 digits, and at most a few of them can be look-alike letters.
_MIN_SEEDS = 3


def _windows(text: str) -> list[tuple[int, int]]:
    """Merged ``[lo, hi)`` windows of :data:`_WINDOW_MARGIN` characters around every digit
    or number word, widened to whole words (so a window never splits a word)."""
    n = len(text)
    out: list[tuple[int, int]] = []
    low = text.lower()
    found = (_SEED_RE.finditer(low) if len(low) == n else _SEED_SLOW_RE.finditer(text))
    counts: list[int] = []
    for m in found:
        lo = max(0, m.start() - _WINDOW_MARGIN)
        hi = min(n, m.end() + _WINDOW_MARGIN)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
            counts[-1] += 1
        else:
            out.append((lo, hi))
            counts.append(1)
    widened: list[tuple[int, int]] = []
    for (lo, hi), count in zip(out, counts, strict=True):
        if count < _MIN_SEEDS:
            continue
        k = 0
        while lo > 0 and text[lo - 1].isalnum() and k < 64:
            lo -= 1
            k += 1
        k = 0
        while hi < n and text[hi].isalnum() and k < 64:
            hi += 1
            k += 1
        if widened and lo <= widened[-1][1]:
            widened[-1] = (widened[-1][0], max(widened[-1][1], hi))
        else:
            widened.append((lo, hi))
    return widened


# --------------------------------------------------------------------------------------------
# E-mail

_TLDS = (
    "com|net|org|edu|gov|io|co|uk|us|ca|de|fr|me|info|biz|app|xyz|email|mail|online|site"
    "|live|ru|au|nl|es|it|mx|br|in|eu|ch|se|no|ie|nz|tv|cc|ws|pro|club|top"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_EMAIL_RE = re.compile(
    rf"(?<![\w.+%-])(?P<local>[A-Za-z0-9](?:[A-Za-z0-9._%+-]{{0,63}}))@"
    rf"(?P<domain>(?:{_LABEL}\.){{1,4}}[A-Za-z]{{2,24}})\b"
)
_AT = r"(?:\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*|\s+at\s+|\s*@\s+|\s+@\s*|\s*＠\s*)"
_DOT = r"(?:\s*[(\[{<]\s*(?:dot|\.)\s*[)\]}>]\s*|\s+dot\s+|\s+\.\s*|\s*\.\s+|\.)"
_DISGUISED_EMAIL_RE = re.compile(
    rf"(?<![\w.+%-])(?P<local>[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}}){_AT}"
    rf"(?P<labels>{_LABEL}(?:{_DOT}{_LABEL}){{0,3}}){_DOT}(?P<tld>{_TLDS})\b",
    re.IGNORECASE,
)
_DOT_SPLIT_RE = re.compile(_DOT, re.IGNORECASE)
#: Necessary for a disguised address: a dot (in any disguise) before a listed TLD.
_TLD_HINT_RE = re.compile(rf"(?:\.|dot|[)\]}}>])\s*(?:{_TLDS})\b", re.IGNORECASE)


def extract_emails(text: str, *, field: Field = "text") -> list[Contact]:
    """E-mail addresses in ``text``, plain and "at"/"dot"-disguised, values lower-cased."""
    out: list[Contact] = []
    taken: list[tuple[int, int]] = []
    if "@" not in text and "＠" not in text and _TLD_HINT_RE.search(text) is None:
        return out
    for m in _PLAIN_EMAIL_RE.finditer(text) if "@" in text else ():
        value = f"{m['local']}@{m['domain']}".lower()
        out.append(Contact("email", value, m.group(), m.span(), False, field))
        taken.append(m.span())
    for m in _DISGUISED_EMAIL_RE.finditer(text):
        if any(s < m.end() and m.start() < e for s, e in taken):
            continue
        labels = [p for p in _DOT_SPLIT_RE.split(m["labels"]) if p]
        value = f"{m['local']}@{'.'.join(labels)}.{m['tld']}".lower()
        out.append(Contact("email", value, m.group(), m.span(), True, field))
    return out


# --------------------------------------------------------------------------------------------
# Handles

#: Platform words -> canonical platform name. Short or ambiguous words (``ig``, ``sc``,
#: ``line`` ...) need ``:``, ``@`` or ``-`` before the name.
PLATFORMS: dict[str, str] = {
    "snapchat": "snapchat", "snap": "snapchat", "sc": "snapchat",
    "kik": "kik", "telegram": "telegram", "tg": "telegram", "t.me": "telegram",
    "instagram": "instagram", "insta": "instagram", "ig": "instagram",
    "whatsapp": "whatsapp", "wa": "whatsapp", "wickr": "wickr", "signal": "signal",
    "twitter": "twitter", "tiktok": "tiktok", "onlyfans": "onlyfans", "wechat": "wechat",
    "discord": "discord", "skype": "skype", "line": "line", "session": "session",
}
_WEAK_PLATFORMS = {"sc", "ig", "tg", "wa", "line", "signal", "session", "snap"}
_HANDLE_STOP = {
    "me", "only", "and", "or", "the", "for", "at", "to", "is", "available", "now", "please",
    "call", "text", "too", "also", "just", "my", "id", "name", "here", "app", "msg",
    "message", "dm", "chat", "with", "on", "via", "preferred", "ok", "first", "no",
}
_PLATFORM_RE = re.compile(
    r"(?<![\w.])(?P<platform>" + "|".join(re.escape(p) for p in sorted(PLATFORMS, key=len,
                                                                         reverse=True))
    + r")(?![\w])(?P<glue>\s*(?:(?:id|name|handle|user(?:name)?|is|me|at)\b\s*)?"
    r"[:=\-–/@]?\s*@?)(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]{1,31})",
    re.IGNORECASE,
)
_BARE_HANDLE_RE = re.compile(r"(?<![\w@.])@(?P<name>[A-Za-z_][A-Za-z0-9._]{2,30})")


def extract_handles(text: str, *, field: Field = "text") -> list[Contact]:
    """Messaging handles: ``platform:name`` values for named platforms, ``@name`` otherwise."""
    out: list[Contact] = []
    taken: list[tuple[int, int]] = []
    for m in _PLATFORM_RE.finditer(text):
        word = m["platform"].lower()
        name = m["name"].rstrip("._-")
        glue = m["glue"]
        if word in _WEAK_PLATFORMS and not re.search(r"[:=\-–/@]", glue):
            continue
        if len(name) < 3 or name.lower() in _HANDLE_STOP or name.isdigit():
            continue
        if re.fullmatch(r"[\d\s().+-]+", name):
            continue
        end = m.start("name") + len(name)
        value = f"{PLATFORMS[word]}:{name.lower()}"
        out.append(Contact("handle", value, text[m.start() : end], (m.start(), end), False,
                           field))
        taken.append((m.start(), end))
    for m in _BARE_HANDLE_RE.finditer(text) if "@" in text else ():
        if any(s <= m.start() < e for s, e in taken):
            continue
        name = m["name"].rstrip("._")
        end = m.start() + 1 + len(name)
        out.append(Contact("handle", f"@{name.lower()}", text[m.start() : end],
                           (m.start(), end), False, field))
    return out


# --------------------------------------------------------------------------------------------
# URLs

#: Necessary for any URL that :func:`bastion.signals.url.extract_urls` finds: a scheme
#: (possibly defanged) or a dot in any of its spellings followed by two letters.
_URL_HINT_RE = re.compile(
    r"h(?:tt|xx|\*\*)ps?|[\w\-](?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\))[^\W\d_]{2}",
    re.IGNORECASE,
)


def extract_urls(text: str, *, field: Field = "text") -> list[Contact]:
    """URLs in ``text`` through the ``url`` signal type (:func:`bastion.signals.url
    .extract_urls`): values are canonical URLs; defanged forms (``hxxp``, ``[.]``) count as
    disguised. Raises LimitExceeded for a text with more URLs than that function allows."""
    out: list[Contact] = []
    if _URL_HINT_RE.search(text) is None:
        return out
    for found in url_signal.extract_urls(text):
        s, e = found.span
        raw = text[s:e]
        low = raw.lower()
        disguised = low.startswith(("hxxp", "h**p")) or any(
            d in low for d in ("[.]", "(.)", "[dot]", "[:]")
        )
        out.append(Contact("url", str(found.url), raw, (s, e), disguised, field))
    return out


# --------------------------------------------------------------------------------------------
# All together


def _overlaps(span: tuple[int, int], spans: Iterable[tuple[int, int]]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def extract_contacts(
    text: str,
    *,
    region: str | None = None,
    default_region: str = DEFAULT_REGION,
    field: Field = "text",
) -> list[Contact]:
    """Every contact in ``text``: phones, e-mail addresses, handles and URLs, sorted by span.

    E-mail addresses win over handles and URLs that overlap them; phone numbers are not
    looked for inside e-mail addresses or URLs. Deterministic; never raises for any string
    (raises InvalidInput only for an unknown ``region``/``default_region``).
    """
    emails = extract_emails(text, field=field)
    email_spans = [c.span for c in emails]
    urls = [c for c in extract_urls(text, field=field) if not _overlaps(c.span, email_spans)]
    handles = [c for c in extract_handles(text, field=field)
               if not _overlaps(c.span, email_spans)]
    url_spans = [c.span for c in urls]
    handles = [c for c in handles if not (c.value.startswith("@") and
                                          _overlaps(c.span, url_spans))]
    taken = email_spans + url_spans
    phones = extract_phones(text, region=region, default_region=default_region,
                            exclude=taken, field=field)
    allc = emails + urls + handles + phones
    allc.sort(key=lambda c: (c.span[0], c.span[1], c.kind, c.value))
    return allc
