"""File formats for bank import and export, and the names they use.

``csv`` / ``tsv``
    A header row, then one entry per row. Columns (DESIGN.md's names, any order, case
    ignored): ``signal_type``, ``value`` (``signal`` is accepted for it), and optionally
    ``variant`` (a JSON object), ``item`` (``item_key`` accepted), ``source``,
    ``external_id``, ``source_date`` (ISO 8601), ``classification`` (A1/A2/B1/B2),
    ``note``, ``enabled`` (true/false), ``disabled_until`` (ISO 8601). UTF-8, optional BOM.
    ``url`` and ``keyword`` entries add how they match: ``match`` (``exact``, ``prefix`` or
    ``host`` for URLs; ``word``, ``prefix`` or ``substring`` for keywords), ``scheme``
    (``any``, ``http``, ``https``) and ``query_order`` (``keep``, ``any``) for URLs,
    ``language`` (BCP 47) and ``collapse_repeats`` (true/false) for keywords; empty for
    the defaults (:func:`bastion.banks.values.check_options`).
``jsonl``
    One JSON object per line with the same keys; a ``vpdq`` value may be the frames list
    itself instead of its JSON text; the options may also come as one ``options`` object.
``pytx``
    python-threatexchange's signal file, as its ``LocalFileSignalExchangeAPI`` (the
    "file" exchange that HMA can fetch from) reads it: one ``<signal type> <signal>`` per
    line, split at the first space, with pytx's type names (``pdq``, ``video_md5``,
    ``video_sha256``, ``vpdq``, ``url``). A pytx vPDQ signal is a JSON list of
    ``"<pdq hex>,<quality>,<timestamp>"`` strings. The format carries no provenance.
    Bastion's own names (``md5``, ``sha1``, ``sha256``) are accepted on import; on export
    SHA-1 entries are skipped and reported (pytx has no SHA-1 type).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from bastion.banks.values import ENTRY_FIELDS
from bastion.errors import InvalidInput

FORMATS: Final = ("csv", "tsv", "jsonl", "pytx")

#: Columns of CSV/TSV exports, in order (imports accept them in any order): every entry
#: field but ``options``, whose parts are columns of their own.
EXPORT_COLUMNS: Final = tuple(f for f in ENTRY_FIELDS if f != "options")

#: python-threatexchange signal type name -> Bastion signal type.
PYTX_TO_BASTION: Final = {
    "pdq": "pdq",
    "video_md5": "md5",
    "video_sha256": "sha256",
    "vpdq": "vpdq",
    "url": "url",
    # Bastion's names, accepted too:
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
}

#: Bastion signal type -> python-threatexchange name (types absent here are not exported).
BASTION_TO_PYTX: Final = {
    "pdq": "pdq",
    "md5": "video_md5",
    "sha256": "video_sha256",
    "vpdq": "vpdq",
    "url": "url",
}

_EXTENSIONS: Final = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".te": "pytx",
    ".txt": "pytx",
}


def check_format(fmt: str) -> str:
    """One of :data:`FORMATS` (case ignored). Raises :class:`InvalidInput`."""
    f = fmt.strip().lower()
    if f not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return f


def guess_format(path: str | Path) -> str:
    """The format implied by a file name's extension. Raises :class:`InvalidInput` when
    it implies none (then pass the format explicitly)."""
    suffix = Path(path).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        raise InvalidInput(
            f"cannot tell the format of {Path(path).name!r} from its name; "
            f"give one of {', '.join(FORMATS)}"
        ) from None
