"""A simple file-backed store of analysed ads, until ads move into :mod:`bastion.store`.

Layout under the data directory (``$BASTION_HOME/ads/``):

- ``ads.jsonl`` — one line per kept ad, append-only: ``{"ad": <input shape>, "result":
  <scan result without network_id>}``;
- ``lexicon.toml`` — the active lexicon written by ``bastion ads fit`` (absent: the shipped
  ``v1``);
- ``lock`` — an exclusive ``flock`` held while a command reads and appends, so two commands
  never interleave writes.

Networks are not stored: opening the store replays ``ads.jsonl`` in order into a fresh
:class:`~bastion.trafficking.networks.AdNetworks`, which gives the same networks and ids as
when the ads were first added (ids derive from arrival order). This costs one incremental add
per stored ad at start-up; the planned ``bastion.store`` tables (ads, contacts, links,
networks) will replace this file and that replay.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bastion.errors import InvalidInput
from bastion.trafficking.lexicon import Lexicon, load_lexicon
from bastion.trafficking.networks import AdNetworks
from bastion.trafficking.schemas import Ad, AdResult, Contact, Indicator
from bastion.trafficking.service import network_ad

#: Characters of one stored line (a longer line is refused when read).
MAX_LINE_CHARS = 1 << 21


def ads_dir(home: Path) -> Path:
    """The directory of this store under the data directory ``home``."""
    return home / "ads"


@dataclass
class AdStore:
    """An open store: the stored ads' ids, their networks, and the file to append to.

    Use :func:`open_store` as a context manager. Raises InvalidInput when a stored line is
    corrupt (naming the line).
    """

    directory: Path
    networks: AdNetworks
    results: dict[str, AdResult] = field(default_factory=dict)
    _file: IO[str] | None = None
    _lock: IO[str] | None = None

    def __contains__(self, ad_id: object) -> bool:
        return ad_id in self.results

    def keep(self, ad: Ad, result: AdResult) -> AdResult:
        """Append the ad, link it into the networks and return the result with its
        ``network_id``. Raises Conflict if the ad_id is stored already."""
        net = self.networks.add(network_ad(ad, result))
        line = json.dumps({"ad": ad.to_json(), "result": _result_json(result)},
                          ensure_ascii=False, sort_keys=True)
        if self._file is None:
            raise InvalidInput("store is not open for writing")
        self._file.write(line + "\n")
        self._file.flush()
        kept = AdResult(result.ad_id, result.score, result.indicators, result.contacts,
                        result.lexicon_version, net, result.notes)
        self.results[ad.ad_id] = kept
        return kept

    def network_of(self, ad_id: str) -> str:
        """The current network id of a stored ad."""
        return self.networks.network_of(ad_id)

    def active_lexicon(self) -> Lexicon:
        """``lexicon.toml`` in the store if ``bastion ads fit`` wrote one, else ``v1``."""
        path = self.directory / "lexicon.toml"
        return load_lexicon(path if path.is_file() else None)

    def close(self) -> None:
        """Flush and release the file and the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> AdStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _result_json(result: AdResult) -> dict[str, Any]:
    out = result.to_json()
    out.pop("network_id", None)
    return out


def _result_from(obj: dict[str, Any]) -> AdResult:
    inds = tuple(
        Indicator(i["id"], (int(i["span"][0]), int(i["span"][1])), float(i["weight"]),
                  i["source"], i["evidence"], i["category"], i.get("matched", ""),
                  i.get("field", "text"))
        for i in obj.get("indicators", [])
    )
    contacts = tuple(Contact.from_json(c) for c in obj.get("contacts", []))
    return AdResult(str(obj["ad_id"]), float(obj["score"]), inds, contacts,
                    str(obj.get("lexicon_version", "")), None,
                    tuple(obj.get("notes", [])))


def _read_lines(path: Path) -> Iterator[tuple[int, Ad, AdResult]]:
    with path.open("r", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                raise InvalidInput(f"{path}: line {n} longer than {MAX_LINE_CHARS} characters")
            try:
                obj = json.loads(line)
                ad = Ad.from_json(obj["ad"])
                result = _result_from(obj["result"])
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise InvalidInput(f"{path}: line {n} is corrupt: {exc}") from exc
            yield n, ad, result


def open_store(home: Path, *, write: bool = True, keep_text: bool = True) -> AdStore:
    """Open (creating) the store under ``home``, lock it, and replay its ads into networks.

    Raises InvalidInput for a corrupt stored line or an unusable directory.
    """
    directory = ads_dir(home)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory / "lock").open("a+", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot use {directory}: {exc}") from exc
    fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
    store = AdStore(directory, AdNetworks(keep_text=keep_text), _lock=lock)
    path = directory / "ads.jsonl"
    try:
        if path.is_file():
            for _, ad, result in _read_lines(path):
                if ad.ad_id in store.results:
                    continue
                store.networks.add(network_ad(ad, result))
                store.results[ad.ad_id] = result
        if write:
            store._file = path.open("a", encoding="utf-8")
            os.chmod(path, 0o600)
    except BaseException:
        store.close()
        raise
    return store

