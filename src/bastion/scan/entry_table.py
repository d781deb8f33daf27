"""What the matcher keeps per bank entry, in a few bytes: a compact table keyed by entry id.

A bank of 10 million PDQ hashes must fit in about 128 bytes per hash with every structure
included (issue 3), so per-entry metadata cannot be Python objects (a dict entry with a
tuple costs 150-250 bytes). Entry ids are the store's autoincrement integers, dense from 1,
so the table is a set of numpy arrays indexed by id:

=============  =======  ==================================================================
array          dtype    meaning
=============  =======  ==================================================================
``bank``       int32    the entry's bank id; 0 = no live entry with this id
``signal``     int8     code of the signal type (:data:`SIGNAL_CODES`)
``group``      int16    code of the index group (``whole``, ``crop``, ``band:top-80`` ...)
``klass``      int8     industry classification code (0 none, 1 A1, 2 A2, 3 B1, 4 B2)
=============  =======  ==================================================================

That is 8 bytes per id. Variants other than the plain stored picture (bank-side crops and
bands, trimmed pictures) are kept in a dict, since only files hashed into a bank have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: Signal type codes (0 = unused). Append only: codes are written into snapshots.
SIGNAL_CODES: dict[str, int] = {"pdq": 1, "md5": 2, "sha1": 3, "sha256": 4, "vpdq": 5}
SIGNAL_NAMES: dict[int, str] = {v: k for k, v in SIGNAL_CODES.items()}
#: Classification codes.
CLASS_CODES: dict[str | None, int] = {None: 0, "A1": 1, "A2": 2, "B1": 3, "B2": 4}
CLASS_NAMES: dict[int, str | None] = {v: k for k, v in CLASS_CODES.items()}


class EntryTable:
    """Entry id -> (bank id, signal type, index group, classification, variant).

    Not thread-safe by itself; the matcher serialises writers. Raises ``ValueError`` for a
    negative id or an unknown signal type.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.bank = np.zeros(capacity, dtype=np.int32)
        self.signal = np.zeros(capacity, dtype=np.int8)
        self.group = np.zeros(capacity, dtype=np.int16)
        self.klass = np.zeros(capacity, dtype=np.int8)
        self.variants: dict[int, dict[str, Any]] = {}
        self.group_names: list[str] = [""]
        self._group_codes: dict[str, int] = {}
        self.live = 0

    def group_code(self, name: str) -> int:
        """The code of index group ``name`` (assigned on first use)."""
        code = self._group_codes.get(name)
        if code is None:
            code = len(self.group_names)
            self.group_names.append(name)
            self._group_codes[name] = code
        return code

    def _grow(self, need: int) -> None:
        cap = self.bank.shape[0]
        if need < cap:
            return
        new = max(need + 1, cap * 2)
        for name in ("bank", "signal", "group", "klass"):
            old = getattr(self, name)
            arr = np.zeros(new, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def set(self, entry_id: int, bank_id: int, signal_type: str, group: str,
            classification: str | None, variant: dict[str, Any] | None) -> None:
        """Record one live entry (replacing what the id held)."""
        if entry_id < 0:
            raise ValueError("entry ids are non-negative")
        if signal_type not in SIGNAL_CODES:
            raise ValueError(f"signal type {signal_type!r} has no code")
        self._grow(entry_id)
        if self.bank[entry_id] == 0:
            self.live += 1
        self.bank[entry_id] = bank_id
        self.signal[entry_id] = SIGNAL_CODES[signal_type]
        self.group[entry_id] = self.group_code(group)
        self.klass[entry_id] = CLASS_CODES.get(classification, 0)
        if variant and variant.get("kind", "stored") != "stored":
            self.variants[entry_id] = dict(variant)
        else:
            self.variants.pop(entry_id, None)

    def set_many(self, ids: npt.NDArray[np.int64], bank_ids: npt.NDArray[np.int32],
                 signal_type: str, group: str, klass: npt.NDArray[np.int8]) -> None:
        """Record many live entries of one signal type and group at once (bulk loads)."""
        if ids.size == 0:
            return
        self._grow(int(ids.max()))
        self.live += int(np.count_nonzero(self.bank[ids] == 0))
        self.bank[ids] = bank_ids
        self.signal[ids] = SIGNAL_CODES[signal_type]
        self.group[ids] = self.group_code(group)
        self.klass[ids] = klass

    def clear(self, entry_id: int) -> tuple[str, str] | None:
        """Forget an entry; returns its ``(signal type, group)`` or None if absent."""
        if entry_id < 0 or entry_id >= self.bank.shape[0] or self.bank[entry_id] == 0:
            return None
        out = (SIGNAL_NAMES[int(self.signal[entry_id])], self.group_names[self.group[entry_id]])
        self.bank[entry_id] = 0
        self.variants.pop(entry_id, None)
        self.live -= 1
        return out

    def get(self, entry_id: int) -> tuple[int, str, str, str | None, dict[str, Any] | None] | None:
        """``(bank id, signal type, group, classification, variant)`` or None if absent."""
        if entry_id < 0 or entry_id >= self.bank.shape[0] or self.bank[entry_id] == 0:
            return None
        return (
            int(self.bank[entry_id]),
            SIGNAL_NAMES[int(self.signal[entry_id])],
            self.group_names[self.group[entry_id]],
            CLASS_NAMES.get(int(self.klass[entry_id])),
            self.variants.get(entry_id),
        )

    def ids_of_bank(self, bank_id: int) -> list[int]:
        """Live entry ids of one bank."""
        return [int(i) for i in np.flatnonzero(self.bank == bank_id)]

    def nbytes(self) -> int:
        """Bytes held by the arrays (the variants dict not counted)."""
        return int(self.bank.nbytes + self.signal.nbytes + self.group.nbytes + self.klass.nbytes)

    def save(self, path: Path) -> None:
        """Write the table to ``path`` (``.npz``; variants and group names as JSON)."""
        import json

        n = int(np.flatnonzero(self.bank).max()) + 1 if self.live else 0
        np.savez(
            path,
            bank=self.bank[:n], signal=self.signal[:n], group=self.group[:n],
            klass=self.klass[:n],
            meta=np.frombuffer(
                json.dumps(
                    {"groups": self.group_names,
                     "variants": {str(k): v for k, v in self.variants.items()}}
                ).encode(),
                dtype=np.uint8,
            ),
        )

    @classmethod
    def load(cls, path: Path) -> EntryTable:
        """Inverse of :meth:`save`. Raises ``ValueError`` for a malformed file."""
        import json

        with np.load(path, allow_pickle=False) as z:
            t = cls(capacity=max(1024, int(z["bank"].shape[0]) + 1))
            n = int(z["bank"].shape[0])
            t.bank[:n] = z["bank"]
            t.signal[:n] = z["signal"]
            t.group[:n] = z["group"]
            t.klass[:n] = z["klass"]
            meta = json.loads(bytes(z["meta"]).decode())
        t.group_names = list(meta["groups"])
        t._group_codes = {g: i for i, g in enumerate(t.group_names) if i}
        t.variants = {int(k): v for k, v in meta["variants"].items()}
        t.live = int(np.count_nonzero(t.bank))
        return t
