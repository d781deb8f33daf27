"""Background merges of an index's delta buffer, shared by the PDQ and exact indexes."""

from __future__ import annotations

import threading
from typing import ClassVar


class BackgroundMerge:
    """Mixin: :meth:`merge_in_background` runs the index's ``merge`` in a daemon thread.

    The index provides ``_lock`` (a lock), ``_merge_thread`` (None when idle),
    ``merge_error``, ``merge()`` and ``_delta_full()``.
    """

    _merge_thread_name: ClassVar[str] = "index-merge"
    _lock: threading.RLock
    _merge_thread: threading.Thread | None
    merge_error: BaseException | None

    def merge(self) -> None:
        raise NotImplementedError

    def _delta_full(self) -> bool:
        """True while the delta buffer holds enough rows to merge again."""
        raise NotImplementedError

    def merge_in_background(self) -> threading.Thread:
        """Start :meth:`merge` in a daemon thread unless one is running; returns the thread
        (join it to wait). The thread merges again while the delta is still full when it
        finishes. An error is kept in :attr:`merge_error` and ends the thread."""
        with self._lock:
            t = self._merge_thread
            if t is not None:
                return t
            t = threading.Thread(
                target=self._merge_loop, name=self._merge_thread_name, daemon=True
            )
            self._merge_thread = t
            t.start()
            return t

    def _merge_loop(self) -> None:
        while True:
            try:
                self.merge()
                self.merge_error = None
            except BaseException as exc:  # kept for the caller; the next merge retries
                self.merge_error = exc
                with self._lock:
                    self._merge_thread = None
                return
            with self._lock:
                if not self._delta_full():
                    self._merge_thread = None
                    return
