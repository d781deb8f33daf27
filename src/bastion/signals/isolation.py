"""Decoding and hashing in worker processes, so that a decoder crash or hang costs one file.

Image and video decoders are large C libraries fed with hostile bytes. :class:`DecodePool`
runs :func:`bastion.signals.compute.run_task` in long-lived worker processes, each with:

- an address-space limit (``RLIMIT_AS`` = :attr:`Limits.decode_memory_bytes`): an allocation
  past it fails (``MemoryError`` -> ``not_scanned``, or the decoder dies -> ``not_scanned``);
- a CPU-time limit per file (``RLIMIT_CPU``, re-armed before each file at the worker's CPU
  time so far plus :attr:`Limits.decode_cpu_seconds`; the kernel kills the worker with
  ``SIGXCPU`` past it);
- core dumps disabled (``RLIMIT_CORE`` = 0): no file of decoded content is ever written;
- a wall-clock timeout per file (:attr:`Limits.decode_timeout_s`), after which the parent
  kills the worker (``SIGKILL``).

A worker that crashes, is killed or times out is replaced by a fresh one on the next file;
the file it was working on is ``not_scanned`` with the reason (``decoder crashed (SIGSEGV)``,
``decoder timed out after 120 s`` ...). Workers send the exact hashes (MD5, SHA-1, SHA-256)
before decoding starts, so such a file still carries them; if the worker died even before
that, the parent streams the bytes through the exact hashers itself (hashlib only, no decoder).

Workers are fresh interpreters (``python -m bastion.signals.isolation``, talking over a socket
pair): never a fork of a multi-threaded caller, and never a re-import of the caller's
``__main__``. Starting one costs an interpreter start plus the imports (about half a second);
that happens once per worker, and again only after a crash, kill or timeout.

``bastion hash`` and ``bastion scan`` share this pool:
:meth:`DecodePool.map` spreads files over the workers (one per core by default) and returns
results in input order. Per-file overhead (pickling the task and result over a pipe):
``benchmarks/bench_hash.py`` measures it.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing.connection as mpc
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from bastion.config import Limits
from bastion.errors import ConfigurationError
from bastion.signals.compute import (
    ExactPart,
    HashTask,
    OnExact,
    not_scanned_result,
    run_task,
)
from bastion.signals.exact import ExactHasher
from bastion.signals.media import SNIFF_BYTES, sniff
from bastion.signals.result import HashResult

#: What a worker runs for each task: a module-level (picklable) function.
Runner = Callable[[HashTask, OnExact], HashResult]

#: Seconds a worker gets to exit cleanly on :meth:`DecodePool.close` before it is killed.
_CLOSE_GRACE_S = 2.0
#: Seconds a new worker gets to import its libraries and report ready.
_START_TIMEOUT_S = 60.0


class _WorkerStartError(Exception):
    """A decode worker process did not start (internal: :meth:`DecodePool.run` turns it
    into a ``not_scanned`` result)."""


def _set_limits(memory_bytes: int) -> None:
    """Disable core dumps and cap the address space of the current process."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _arm_cpu_limit(seconds: int) -> None:
    """Allow this process ``seconds`` more CPU seconds from now (``RLIMIT_CPU`` soft limit)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + seconds
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _worker_main(conn: mpc.Connection, memory_bytes: int, runner: Runner) -> None:
    """Worker loop: receive ``(task_id, HashTask)``, send ``("exact", id, ExactPart)`` when
    the bytes are read, then ``("done", id, HashResult)`` or ``("error", id, reason)``.
    ``None`` ends the loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_limits(memory_bytes)
    conn.send(("ready", 0, os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, task = msg
        _arm_cpu_limit(task.limits.decode_cpu_seconds)

        def on_exact(part: ExactPart, _id: int = task_id) -> None:
            conn.send(("exact", _id, part))

        try:
            result = runner(task, on_exact)
        except MemoryError:
            conn.send(("error", task_id, "memory limit exceeded while decoding"))
        except Exception as exc:  # report, keep serving: one bad file must not stop the pool
            conn.send(("error", task_id, f"worker error ({type(exc).__name__}: {exc})"[:200]))
        else:
            conn.send(("done", task_id, result))


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if name == "SIGXCPU":
            return "decoder CPU time limit exceeded (SIGXCPU)"
        return f"decoder crashed ({name})"
    return f"decoder process exited unexpectedly (status {exitcode})"


def exact_fallback(task: HashTask) -> ExactPart | None:
    """Exact hashes computed in the calling process (hashlib only, no decoder), used when a
    worker died before sending them. ``None`` when the file cannot be read."""
    hasher = ExactHasher()
    if task.data is not None:
        hasher.update(task.data)
        return ExactPart(hasher.hexdigests(), hasher.size, sniff(task.data[:SNIFF_BYTES]))
    assert task.path is not None
    try:
        with open(Path(task.path), "rb") as fh:
            head = fh.read(SNIFF_BYTES)
            chunk = head
            while chunk:
                hasher.update(chunk)
                chunk = fh.read(1 << 20)
    except OSError:
        return None
    return ExactPart(hasher.hexdigests(), hasher.size, sniff(head))


class _Worker:
    """One worker process (``python -m bastion.signals.isolation``) and the parent's end of
    its socket. The worker never imports the caller's ``__main__``."""

    def __init__(self, memory_bytes: int, runner: Runner) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        spec = f"{runner.__module__}:{runner.__qualname__}"
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bastion.signals.isolation", str(child.fileno()),
                 str(memory_bytes), spec],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env,
                close_fds=True,
            )
        finally:
            child.close()
        parent.setblocking(True)
        self.conn = mpc.Connection(parent.detach())
        # Wait for the worker's imports and limits before any file's clock starts.
        ready = None
        try:
            if self.conn.poll(_START_TIMEOUT_S):
                ready = self.conn.recv()
        except (EOFError, OSError):
            ready = None
        if not (isinstance(ready, tuple) and ready[0] == "ready"):
            self.kill()
            raise _WorkerStartError("decode worker failed to start")

    def exitcode(self) -> int | None:
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_CLOSE_GRACE_S)
        self.kill()


class DecodePool:
    """A pool of isolated decode workers (see the module docstring).

    ``workers``: processes, default one per core; they start lazily, on first use.
    ``limits``: the worker's memory limit comes from here; each task's CPU-time limit and
    wall-clock timeout come from that task's own limits. ``runner`` is what workers run per
    task (a module-level function; tests use it to simulate crashing or hanging decoders).

    Thread-safe: :meth:`run` may be called from many threads; each call holds one worker.
    Use as a context manager, or call :meth:`close`. Raises :class:`ConfigurationError` when
    ``workers`` < 1.
    """

    def __init__(self, workers: int | None = None, *, limits: Limits | None = None,
                 runner: Runner = run_task) -> None:
        self.size = workers if workers is not None else (os.cpu_count() or 1)
        if self.size < 1:
            raise ConfigurationError("decode_workers must be at least 1 for a DecodePool")
        self.limits = limits or Limits()
        self._runner = runner
        self._idle: list[_Worker] = []
        self._live = 0
        self._cond = threading.Condition()
        self._closed = False
        self._next_id = 0
        #: Workers replaced after a crash, kill or timeout (for tests and monitoring).
        self.replaced = 0

    def prestart(self) -> None:
        """Start every worker now, in background threads, so that their interpreter start
        (about half a second each) overlaps with the caller's own start-up work."""

        def start_one() -> None:
            with self._cond:
                if self._closed or self._live >= self.size:
                    return
                self._live += 1
            try:
                worker = _Worker(self.limits.decode_memory_bytes, self._runner)
            except BaseException:
                with self._cond:
                    self._live -= 1
                    self._cond.notify()
                return
            with self._cond:
                if self._closed:
                    worker.stop()
                    return
                self._idle.append(worker)
                self._cond.notify()

        for _ in range(self.size):
            threading.Thread(target=start_one, name="bastion-decode-start", daemon=True).start()

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise ConfigurationError("the decode pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._live < self.size:
                    self._live += 1
                    break
                self._cond.wait()
        try:
            return _Worker(self.limits.decode_memory_bytes, self._runner)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._live -= 1
                if not healthy:
                    self.replaced += 1
            self._cond.notify()
        if healthy and self._closed:
            worker.stop()

    def run(self, task: HashTask) -> HashResult:
        """Hash one task in a worker; never raises for bad content, a crash or a hang (the
        result is then ``not_scanned`` with the reason and, when the bytes could be read,
        the exact hashes). Blocks while all workers are busy."""
        try:
            worker = self._acquire()
        except _WorkerStartError as exc:
            return not_scanned_result(task.shown_path, exact_fallback(task), str(exc))
        healthy = False
        try:
            with self._cond:
                self._next_id += 1
                task_id = self._next_id
            try:
                worker.conn.send((task_id, task))
            except OSError:
                # The idle worker had died; start a fresh one and try once more.
                worker.kill()
                try:
                    worker = _Worker(self.limits.decode_memory_bytes, self._runner)
                except _WorkerStartError as exc:
                    return not_scanned_result(task.shown_path, exact_fallback(task),
                                              str(exc))
                worker.conn.send((task_id, task))
            result, healthy = self._await(worker, task, task_id)
            return result
        finally:
            self._release(worker, healthy)

    def _await(self, worker: _Worker, task: HashTask, task_id: int) -> tuple[HashResult, bool]:
        timeout = task.limits.decode_timeout_s
        deadline = time.monotonic() + timeout
        part: ExactPart | None = None
        shown = task.shown_path
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = f"decoder timed out after {timeout:g} s"
                return not_scanned_result(shown, part or exact_fallback(task), reason), False
            if not worker.conn.poll(remaining):
                continue
            try:
                kind, rid, payload = worker.conn.recv()
            except (EOFError, OSError):
                reason = _death_reason(worker.exitcode())
                return not_scanned_result(shown, part or exact_fallback(task), reason), False
            if rid != task_id:
                continue
            if kind == "exact":
                part = payload
                continue
            if kind == "done":
                return payload, True
            return not_scanned_result(shown, part or exact_fallback(task), payload), True

    def map(self, tasks: Iterable[HashTask]) -> Iterator[HashResult]:
        """Hash ``tasks`` on all workers in parallel; results in input order. At most
        ``2 * size`` tasks are in flight, so an iterable of millions is fine."""
        window = 2 * self.size
        with ThreadPoolExecutor(self.size, thread_name_prefix="bastion-decode") as ex:
            pending: deque[Future[HashResult]] = deque()
            for task in tasks:
                pending.append(ex.submit(self.run, task))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def close(self) -> None:
        """Stop idle workers (busy ones stop when their file is done). Idempotent."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.stop()


def _load_runner(spec: str) -> Runner:
    module, _, name = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return cast(Runner, obj)


def _main(argv: list[str]) -> None:
    """Worker entry point: ``python -m bastion.signals.isolation FD MEMORY_BYTES MODULE:FUNC``."""
    fd, memory_bytes, spec = int(argv[0]), int(argv[1]), argv[2]
    conn = mpc.Connection(fd)
    _worker_main(conn, memory_bytes, _load_runner(spec))


if __name__ == "__main__":
    _main(sys.argv[1:])
