"""Validation of everything that becomes a bank entry, on every way in (CLI, import, API).

:func:`check_entry` turns loosely typed fields (a CSV row, a JSON object, CLI flags) into a
:class:`~bastion.store.bank_repository.NewEntry` with canonical values, or raises
:class:`~bastion.errors.InvalidInput` with a reason fit for an import report. Warnings
(for example a PDQ hash whose set-bit count is far from 128) are returned, not raised.

Rules (issue 3):

* ``value`` goes through the signal type's ``parse``: PDQ is exactly 64 hex characters,
  stripped and lowercased on the way in; wrong lengths and non-hex are rejected;
* PDQ all-zero and all-one hashes are rejected; a PDQ hash setting fewer than 96 or more
  than 160 of its 256 bits is flagged (:meth:`bastion.signals.pdq.PdqSignal.check_entry`);
* the MD5/SHA-1/SHA-256 of the empty file are rejected
  (:data:`bastion.signals.exact.EMPTY_DIGESTS`);
* ``vpdq`` values are a video's frame hashes (see :func:`parse_vpdq`);
* ``url`` and ``keyword`` entries (issue 7) carry how they match in option fields
  (:data:`OPTION_FIELDS`), validated by :func:`bastion.signals.url.parse_url_entry` and
  :func:`bastion.signals.keyword.parse_keyword_entry` and stored whole in the entry's
  ``options`` (:func:`check_options`); other signal types refuse them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from bastion.errors import InvalidInput
from bastion.signals.base import REGISTRY, Variant, VideoFrame, get_signal_type
from bastion.signals.exact import EMPTY_DIGESTS
from bastion.signals.keyword import parse_keyword_entry
from bastion.signals.pdq import PdqSignal
from bastion.signals.url import parse_url_entry
from bastion.store.bank_repository import NewEntry

#: Industry classification of CSAM (A = prepubescent, B = pubescent; 1 = sex act,
#: 2 = lascivious exhibition), as used by NCMEC's CyberTipline ``industryClassification``.
CLASSIFICATIONS: Final = ("A1", "A2", "B1", "B2")

#: The video signal type; not a :class:`~bastion.signals.base.SignalType` (a value is many
#: frames), so bank entries of it are validated here.
VPDQ: Final = "vpdq"

#: Largest number of frames in one vPDQ entry (about 28 hours at one frame per second).
MAX_VPDQ_FRAMES: Final = 100_000
#: Longest value of any other signal type, characters.
MAX_VALUE_CHARS: Final = 8_192
#: Longest free-text fields, characters.
MAX_NOTE_CHARS: Final = 4_000
MAX_SHORT_CHARS: Final = 200
MAX_ITEM_KEY_CHARS: Final = 100

_BANK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})


def check_bank_name(name: str) -> str:
    """A bank name: 1-100 of letters, digits, ``_``, ``.``, ``-``, starting with a letter or
    digit. Returns it stripped. Raises :class:`InvalidInput`."""
    n = name.strip() if isinstance(name, str) else ""
    if not _BANK_NAME_RE.match(n):
        raise InvalidInput(
            f"invalid bank name {name!r}: 1-100 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return n


def check_label(label: str) -> str:
    """A bank label such as ``csam``, ``ncii``, ``terrorism``, ``trafficking`` (lowercased;
    empty allowed). Raises :class:`InvalidInput`."""
    v = label.strip().lower()
    if v and not _LABEL_RE.match(v):
        raise InvalidInput(f"invalid label {label!r}: 1-50 of a-z, 0-9, '_', '-'")
    return v


def known_signal_types() -> list[str]:
    """Signal types a bank entry may have: the registered ones plus ``vpdq``."""
    get_signal_type("pdq")  # importing bastion.signals registers the built-ins
    return sorted({*REGISTRY, VPDQ})


def check_thresholds(thresholds: Mapping[str, Any]) -> dict[str, int]:
    """Per-bank thresholds ``{signal_type: max distance}`` (inclusive, integers). Exact
    hashes allow only 0; PDQ and vPDQ 0-128 Hamming bits (Meta's recommended match
    threshold is 31; unrelated photos are 110-140 bits apart). Raises :class:`InvalidInput`.
    """
    out: dict[str, int] = {}
    for raw_name, raw in thresholds.items():
        name = raw_name.strip().lower()
        if name == VPDQ:
            top = 128
        else:
            st = get_signal_type(name)
            top = 128 if st.default_threshold > 0 else 0
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise InvalidInput(f"threshold for {name} must be an integer, got {raw!r}") from None
        if not 0 <= value <= top:
            raise InvalidInput(f"threshold for {name} must be between 0 and {top}, got {value}")
        out[name] = value
    return out


def parse_threshold_option(text: str) -> tuple[str, int]:
    """Parse ``pdq=20`` (the CLI's ``--threshold``). Raises :class:`InvalidInput`."""
    name, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"threshold must look like pdq=20, got {text!r}")
    ((k, v),) = check_thresholds({name: value}).items()
    return k, v


# -- values -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedValue:
    """A canonical value and any warnings about it (for the import report)."""

    signal_type: str
    value: str
    warnings: tuple[str, ...] = ()


def encode_vpdq(frames: Sequence[VideoFrame]) -> str:
    """The canonical vPDQ entry value: DESIGN.md's ``frames`` list as compact JSON,
    ``[{"frame": 0, "timestamp_s": 0.0, "value": "<64 hex>", "quality": 100}, ...]`` in
    presentation order (timestamps rounded to microseconds)."""
    return json.dumps([f.to_json() for f in frames], separators=(",", ":"))


def parse_vpdq(value: str) -> tuple[VideoFrame, ...]:
    """Parse a vPDQ entry value: a JSON list of DESIGN.md frame objects (the canonical
    form), or python-threatexchange's form, a JSON list of ``"<pdq hex>,<quality>,
    <timestamp seconds>"`` strings (frame numbers are then their positions). At most
    :data:`MAX_VPDQ_FRAMES` frames; each PDQ is 64 hex, quality 0-100, timestamp a
    finite number >= 0. Raises :class:`InvalidInput`."""
    if not isinstance(value, str):
        raise InvalidInput("vpdq value must be a JSON list of frames")
    try:
        raw = json.loads(value)
    except (ValueError, RecursionError):
        raise InvalidInput("vpdq value is not valid JSON") from None
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("vpdq value must be a non-empty JSON list of frames")
    if len(raw) > MAX_VPDQ_FRAMES:
        raise InvalidInput(f"vpdq value has {len(raw)} frames, more than {MAX_VPDQ_FRAMES}")
    frames: list[VideoFrame] = []
    hexv: Any
    q: Any
    ts: Any
    for i, item in enumerate(raw):
        if isinstance(item, str):
            parts = item.split(",")
            if len(parts) != 3:
                raise InvalidInput(f"vpdq frame {i}: expected 'hex,quality,timestamp'")
            hexv, q, ts = parts
            frame_no: Any = i
        elif isinstance(item, Mapping):
            hexv, q, ts = item.get("value"), item.get("quality"), item.get("timestamp_s")
            frame_no = item.get("frame", i)
        else:
            raise InvalidInput(f"vpdq frame {i} must be an object or a string")
        try:
            pdq = PdqSignal.parse(str(hexv))
            quality = int(str(q))
            t = float(str(ts))
            fno = int(str(frame_no))
        except (InvalidInput, ValueError) as exc:
            raise InvalidInput(f"vpdq frame {i}: {exc}") from None
        if not 0 <= quality <= 100:
            raise InvalidInput(f"vpdq frame {i}: quality must be 0-100")
        if not math.isfinite(t) or t < 0 or fno < 0:
            raise InvalidInput(f"vpdq frame {i}: timestamp and frame number must be >= 0")
        frames.append(VideoFrame(fno, t, pdq, quality))
    return tuple(frames)


def check_value(signal_type: str, value: Any) -> CheckedValue:
    """Validate one entry value of ``signal_type`` and return it canonical, with warnings.
    Raises :class:`InvalidInput` naming the problem (unknown type, length, characters,
    all-zero/all-one PDQ, the empty file's digest, malformed vPDQ)."""
    if not isinstance(signal_type, str) or not signal_type.strip():
        raise InvalidInput("signal_type is missing")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput("value is missing")
    if not isinstance(value, str):
        raise InvalidInput("value must be a string")
    name = signal_type.strip().lower()
    if name == VPDQ:
        frames = parse_vpdq(value)
        warnings: list[str] = []
        if not any(f.quality >= 50 for f in frames):
            warnings.append("no frame has quality >= 50; this entry cannot match")
        return CheckedValue(VPDQ, encode_vpdq(frames), tuple(warnings))
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(f"value is longer than {MAX_VALUE_CHARS} characters")
    st = get_signal_type(name)
    canonical = st.parse(value)
    if canonical in EMPTY_DIGESTS and st.default_threshold == 0:
        raise InvalidInput(f"{st.name} of the empty file is not a valid entry")
    checker = getattr(st, "check_entry", None)
    found: list[str] = []
    if callable(checker):
        result = checker(canonical)
        if isinstance(result, list):
            found.extend(str(w) for w in result)
    return CheckedValue(st.name, canonical, tuple(found))


def check_classification(value: Any) -> str | None:
    """``A1``/``A2``/``B1``/``B2`` (any case) or empty/None. Raises :class:`InvalidInput`."""
    if value is None:
        return None
    v = str(value).strip().upper()
    if not v:
        return None
    if v not in CLASSIFICATIONS:
        raise InvalidInput(f"classification must be one of {', '.join(CLASSIFICATIONS)}")
    return v


def check_time(value: Any, what: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC) as an aware UTC datetime, or None.
    Raises :class:`InvalidInput`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what} must be an ISO 8601 date, got {text[:40]!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def check_bool(value: Any, what: str, default: bool) -> bool:
    """``true``/``false`` (also 1/0, yes/no) or empty for ``default``. Raises InvalidInput."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidInput(f"{what} must be true or false, got {str(value)[:20]!r}")


def _text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    v = str(value).strip()
    if not v:
        return None
    if len(v) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in v):
        raise InvalidInput(f"{what} contains control characters")
    return v


def check_variant(value: Any) -> dict[str, Any] | None:
    """A DESIGN.md variant object (a mapping, or its JSON text), or None for the stored
    picture / a hash received as is. Raises :class:`InvalidInput`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    obj = value
    if isinstance(value, str):
        try:
            obj = json.loads(value)
        except ValueError:
            raise InvalidInput("variant must be a JSON object like {\"kind\": \"crop\"}") from None
    if not isinstance(obj, Mapping):
        raise InvalidInput("variant must be an object")
    return Variant.from_json(obj).to_json()


#: Field names an entry may carry (CSV columns, JSON keys); ``signal`` is an alias of
#: ``value`` and ``item_key`` of ``item``.
ENTRY_FIELDS: Final = (
    "signal_type",
    "value",
    "variant",
    "item",
    "source",
    "external_id",
    "source_date",
    "classification",
    "note",
    "enabled",
    "disabled_until",
    "match",
    "scheme",
    "query_order",
    "language",
    "collapse_repeats",
    "options",
)
FIELD_ALIASES: Final = {"signal": "value", "item_key": "item"}

#: Options of ``url`` entries (import columns, JSON keys), defaults in
#: :class:`bastion.signals.url.UrlEntry`.
URL_OPTIONS: Final = ("match", "scheme", "query_order")
#: Options of ``keyword`` entries, defaults in :class:`bastion.signals.keyword.KeywordEntry`.
KEYWORD_OPTIONS: Final = ("match", "language", "collapse_repeats")
#: Every option field, in export column order.
OPTION_FIELDS: Final = ("match", "scheme", "query_order", "language", "collapse_repeats")


def _option_fields(given: Mapping[str, Any]) -> dict[str, Any]:
    """The option fields of one entry: the ``options`` object (a mapping or its JSON text)
    overlaid by the separate columns. Raises :class:`InvalidInput`."""
    out: dict[str, Any] = {}
    raw = given.get("options")
    if raw is not None and not (isinstance(raw, str) and not raw.strip()):
        obj = raw
        if isinstance(raw, str):
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                raise InvalidInput(
                    'options must be a JSON object like {"match": "prefix"}'
                ) from None
        if not isinstance(obj, Mapping):
            raise InvalidInput("options must be an object")
        unknown = sorted(str(k) for k in obj if k not in OPTION_FIELDS)
        if unknown:
            raise InvalidInput(
                f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTION_FIELDS)})"
            )
        out.update({k: v for k, v in obj.items() if v is not None and v != ""})
    for name in OPTION_FIELDS:
        v = given.get(name)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            out[name] = v
    return out


def _option_text(options: Mapping[str, Any], name: str) -> str | None:
    v = options.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise InvalidInput(f"{name} must be a string, got {str(v)[:20]!r}")
    if len(v) > MAX_SHORT_CHARS:
        raise InvalidInput(f"{name} is longer than {MAX_SHORT_CHARS} characters")
    return v


def check_options(
    signal_type: str, value: str, given: Mapping[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """Validate the matching options of one entry of ``signal_type`` whose value is
    ``value``; ``given`` holds the option fields (:data:`OPTION_FIELDS`, each may be absent
    or empty for its default, and/or an ``options`` object with the same keys).

    Returns ``(canonical value, options)``: for ``url``, options ``{"match": "exact" |
    "prefix" | "host", "scheme": "any" | "http" | "https", "query_order": "keep" | "any"}``;
    for ``keyword``, ``{"match": "word" | "prefix" | "substring", "language": BCP 47 tag
    or None, "collapse_repeats": bool}``; for every other signal type ``None`` (and any
    option given is an error). Raises :class:`InvalidInput` naming the field at fault.
    """
    options = _option_fields(given)
    if signal_type == "url":
        extra = sorted(set(options) - set(URL_OPTIONS))
        if extra:
            raise InvalidInput(f"{', '.join(extra)} applies to keyword entries, not url")
        u = parse_url_entry(
            value,
            match=_option_text(options, "match"),
            scheme=_option_text(options, "scheme"),
            query_order=_option_text(options, "query_order"),
        )
        return u.value, {"match": u.match, "scheme": u.scheme, "query_order": u.query_order}
    if signal_type == "keyword":
        extra = sorted(set(options) - set(KEYWORD_OPTIONS))
        if extra:
            raise InvalidInput(f"{', '.join(extra)} applies to url entries, not keyword")
        collapse = options.get("collapse_repeats")
        if collapse is not None and not isinstance(collapse, (str, bool)):
            raise InvalidInput(f"collapse_repeats must be true or false, got {collapse!r}")
        k = parse_keyword_entry(
            value,
            match=_option_text(options, "match"),
            language=_option_text(options, "language"),
            collapse_repeats=collapse,
        )
        return k.term, {
            "match": k.match,
            "language": k.language,
            "collapse_repeats": k.collapse_repeats,
        }
    if options:
        raise InvalidInput(
            f"{', '.join(sorted(options))}: options apply to url and keyword entries only"
        )
    return value, None


def check_entry(
    fields: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
) -> tuple[NewEntry, tuple[str, ...]]:
    """Validate one entry given as loosely typed fields (:data:`ENTRY_FIELDS`; aliases in
    :data:`FIELD_ALIASES`); ``defaults`` fill fields that are absent or empty (e.g. a
    ``source`` for a whole import). Returns the entry and its warnings. Raises
    :class:`InvalidInput` for the first problem found."""
    merged: dict[str, Any] = dict(defaults or {})
    given: set[str] = set()
    # Canonical names first, so that ``value`` wins over its alias ``signal``.
    for key in sorted(fields, key=lambda k: k in FIELD_ALIASES):
        val = fields[key]
        k = FIELD_ALIASES.get(key, key)
        if val is None or (isinstance(val, str) and not val.strip()) or k in given:
            continue
        merged[k] = val
        given.add(k)
    checked = check_value(merged.get("signal_type", ""), merged.get("value"))
    value, options = check_options(checked.signal_type, checked.value, merged)
    enabled = check_bool(merged.get("enabled"), "enabled", True)
    until = check_time(merged.get("disabled_until"), "disabled_until")
    if until is not None and enabled:
        raise InvalidInput("disabled_until is set but enabled is true")
    entry = NewEntry(
        signal_type=checked.signal_type,
        value=value,
        variant=check_variant(merged.get("variant")),
        item_key=_text(merged.get("item"), "item", MAX_ITEM_KEY_CHARS),
        source=_text(merged.get("source"), "source", MAX_SHORT_CHARS),
        external_id=_text(merged.get("external_id"), "external_id", MAX_SHORT_CHARS),
        source_date=check_time(merged.get("source_date"), "source_date"),
        classification=check_classification(merged.get("classification")),
        note=_text(merged.get("note"), "note", MAX_NOTE_CHARS),
        enabled=enabled,
        disabled_until=until,
        options=options,
    )
    return entry, checked.warnings
