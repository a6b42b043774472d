"""The embedded engine's lifecycle and lock policy, in one place: how a process opens chdb,
how long it holds it, and when it lets others in.

chdb lets one process hold a data path at a time (and one path per process). Every process
that wants the engine takes a file lock next to the data (`lock_path`), opens the engine for
as long as it needs it, and closes it to let the next one in. A process that waits leaves a
marker (`waiting_pids`) so a long-lived holder knows to yield; the lock's owner writes who it
is, so a waiter can say whom it waits for.

Callers do not choose hold times; they say what they need:

* **one operation** (`ClickHouseResource.client()`): open, do it, close — nested calls in one
  process reuse the open engine;
* **a short look** (`short_look`): one that would rather skip than queue behind a run — a
  sensor tick waits `SHORT_LOOK_WAIT_S` at most, then says it skipped;
* **a run's write** (`ClickHouseResource.writing()`): the engine stays open for every read and
  write of it (reopening costs ~40 ms each), then is released at once;
* **a long-lived reader** (`EngineKeeper`, the HTTP service): holds the engine while requests
  keep coming, lets go after an idle spell, and at once when another process waits.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from filelock import FileLock, Timeout

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.lib.processes import pid_alive

if TYPE_CHECKING:
    from kline_assets.resources.clickhouse.resource import ClickHouseResource

log = logging.getLogger(__name__)

SCHEME = "chdb://"
WRITE_WAIT_S = 900.0
"""How long a run waits for the engine: the run before it may be a long backfill month."""
SHORT_LOOK_WAIT_S = 20.0
"""How long a short look (a sensor tick) waits for the engine before it skips."""


def is_embedded(dsn: str) -> bool:
    return dsn.startswith(SCHEME)


def embedded_path(dsn: str) -> Path:
    return Path(dsn[len(SCHEME):])


def lock_path(path: Path) -> Path:
    """The cross-process lock of the data at `path`."""
    return Path(str(path) + ".lock")


def _owner_file(path: Path) -> Path:
    return Path(str(lock_path(path)) + ".owner")


def _waiting_dir(path: Path) -> Path:
    return Path(str(lock_path(path)) + ".waiting")


def store_files(path: Path) -> list[Path]:
    """Everything the embedded store at `path` keeps on disk: the data and its lock files."""
    return [path, lock_path(path), _owner_file(path), _waiting_dir(path)]


class _EmbeddedEngine:
    """One per process: the open chdb client, the cross-process lock and a nesting depth."""

    def __init__(self) -> None:
        self.guard = threading.RLock()
        self.client: Client | None = None
        self.lock: FileLock | None = None
        self.path: str | None = None
        self.depth = 0
        self.opens = 0  # engine opens in this process's life: each leaves ~5 threads behind


_ENGINE = _EmbeddedEngine()


def engine_opens() -> int:
    """How often this process has opened the embedded engine (chdb leaves ~5 threads and
    ~2 MiB behind each time): what a long-lived process watches to know when to retire."""
    return _ENGINE.opens


def holds_engine() -> bool:
    """Whether this process has the embedded engine open (an operation or a hold under way)."""
    return _ENGINE.depth > 0


def lock_owner(path: Path) -> str:
    """Who holds the embedded engine's lock, as the holder wrote it (pid and command)."""
    try:
        return _owner_file(path).read_text().strip() or "an unknown process"
    except OSError:
        return "an unknown process"


def waiting_pids(path: Path) -> list[int]:
    """Other live processes waiting for the engine's lock: a long-lived holder (the HTTP
    service) lets go when this is not empty, so a Dagster run never waits out a busy reader."""
    pids = []
    with suppress(OSError):
        for marker in _waiting_dir(path).iterdir():
            with suppress(ValueError):
                pid = int(marker.name)
                if pid != os.getpid() and pid_alive(pid):
                    pids.append(pid)
    return pids


def _acquire(path: Path, timeout_s: float) -> FileLock:
    """Take the cross-process lock; a wait is announced to the holder (a marker file it
    watches) and to the user (the holder's pid and command), never silent."""
    lock = FileLock(str(lock_path(path)))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            marker = _waiting_dir(path) / str(os.getpid())
            with suppress(OSError):
                marker.parent.mkdir(exist_ok=True)
                marker.touch()
            try:
                _acquire_waiting(lock, path, timeout_s)
            finally:
                with suppress(OSError):
                    marker.unlink()
        with suppress(OSError):
            _owner_file(path).write_text(f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})")
    except BaseException:
        # A Ctrl-C landing after the lock was taken but before it was handed back would
        # leave this process waiting for its own lock at the next open.
        if lock.is_locked:
            lock.release()
        raise
    return lock


def _acquire_waiting(lock: FileLock, path: Path, timeout_s: float) -> None:
    try:
        lock.acquire(timeout=min(2.0, timeout_s))
    except Timeout:
        # A warning reaches stderr even where logging is not configured (the CLI).
        log.warning("waiting for embedded ClickHouse at %s, held by %s (up to %.0f s)",
                    path, lock_owner(path), timeout_s)
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout as exc:
            raise ServiceUnavailableError(
                f"embedded ClickHouse at {path} stayed locked by {lock_owner(path)} for "
                f"{timeout_s:.0f}s", store="ClickHouse", address=f"embedded chdb at {path}",
            ) from exc


def _shut_engine() -> None:
    """Close this process's embedded engine and free the file lock (caller holds the guard)."""
    try:
        if _ENGINE.client is not None:
            _ENGINE.client.close()
    finally:
        _ENGINE.client = None
        lock, _ENGINE.lock = _ENGINE.lock, None
        if lock is not None:
            lock.release()


def enter(dsn: str, wait_s: float, address: str) -> Client:
    """Open the engine (taking the file lock) unless this process has it open; count a user."""
    path = embedded_path(dsn)
    with _ENGINE.guard:
        if _ENGINE.depth == 0:
            if _ENGINE.lock is not None:
                # A close cut short (Ctrl-C between the count and the release) left the
                # engine open: finish it, or this process would wait on its own lock.
                _shut_engine()
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = _acquire(path, wait_s)
            try:
                _ENGINE.client = clickhouse_connect.get_client(dsn=dsn)
            except BaseException as exc:  # Ctrl-C too: never keep the lock unaccounted
                lock.release()
                if not isinstance(exc, Exception):
                    raise
                raise ServiceUnavailableError(
                    f"cannot open embedded ClickHouse at {path}: {exc}",
                    store="ClickHouse", address=address,
                ) from exc
            _ENGINE.lock, _ENGINE.path = lock, str(path)
            _ENGINE.opens += 1
        elif _ENGINE.path != str(path):
            raise ServiceUnavailableError(
                f"this process already holds embedded ClickHouse at {_ENGINE.path}; "
                f"chdb cannot open a second path ({path}) in the same process",
                store="ClickHouse", address=address,
            )
        _ENGINE.depth += 1
        assert _ENGINE.client is not None
        return _ENGINE.client


def leave() -> None:
    """One user fewer; the last one closes the engine and frees the lock."""
    with _ENGINE.guard:
        _ENGINE.depth -= 1
        if _ENGINE.depth <= 0:
            _ENGINE.depth = 0
            _shut_engine()


@contextmanager
def operation(dsn: str, wait_s: float, address: str) -> Iterator[Client]:
    """One operation at a time in this process, on the engine open for its duration."""
    with _ENGINE.guard:
        client = enter(dsn, wait_s, address)
        try:
            yield client
        finally:
            leave()


@contextmanager
def hold(dsn: str, wait_s: float, address: str) -> Iterator[None]:
    """The engine open until the block ends; operations inside still take turns in this
    process but skip the reopen. May be left from another thread than the one that entered."""
    enter(dsn, wait_s, address)
    try:
        yield
    finally:
        leave()


def short_look(clickhouse: ClickHouseResource) -> ClickHouseResource:
    """The same store for a short look: it waits `SHORT_LOOK_WAIT_S` at most for a run that
    holds the engine (a sensor tick skips then, and the next tick tries again)."""
    return type(clickhouse)(dsn=clickhouse.dsn, database=clickhouse.database,
                            lock_timeout_s=SHORT_LOOK_WAIT_S)


class EngineKeeper:
    """A long-lived reader's hold: the embedded engine open across requests, let go after
    `idle_s` without one or as soon as another process (a Dagster run) waits for the lock.

    Reopening the embedded engine costs ~40 ms per request; holding it makes a request cost
    the query alone. While it is held no other process can write, which is what lets a page
    cache keep pages for the whole hold (`generation` changes with every release).
    `idle_s = 0` opens per request. A server DSN is unaffected.
    """

    def __init__(self, clickhouse: ClickHouseResource, idle_s: float) -> None:
        self.clickhouse, self.idle_s = clickhouse, idle_s
        self._path = embedded_path(clickhouse.dsn) if is_embedded(clickhouse.dsn) else None
        self._lock = threading.Lock()
        self._stack: ExitStack | None = None
        self._last = 0.0
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()
        self.generation = 0
        self.retiring = False  # a replacement is on its way: let go only for a waiting run

    @property
    def holding(self) -> bool:
        return self._stack is not None

    def touch(self) -> None:
        """Before a request's reads: open (once) and note the time. A process waiting for the
        engine goes first: the request then waits its turn like any other reader."""
        if self.idle_s <= 0 or self._path is None:
            return
        with self._lock:
            self._last = time.monotonic()
            if self._stack is not None:
                return
            self._let_waiters_in()
            stack = ExitStack()
            stack.enter_context(self.clickhouse.held())
            self._stack = stack
            if self._watch is None:
                self._watch = threading.Thread(target=self._release_when_due,
                                               name="clickhouse-keeper", daemon=True)
                self._watch.start()

    def touch_if_held(self) -> int | None:
        """`touch` without waiting: the hold's generation when the engine is held now (its
        idle clock restarted), else None — also when another request is opening it."""
        if self.idle_s <= 0 or self._path is None or not self._lock.acquire(blocking=False):
            return None
        try:
            if self._stack is None:
                return None
            self._last = time.monotonic()
            return self.generation
        finally:
            self._lock.release()

    def _let_waiters_in(self, poll_s: float = 0.02) -> None:
        """Without this, the next request would retake the lock before the waiting run's
        next poll of it, again and again."""
        assert self._path is not None
        deadline = time.monotonic() + self.clickhouse.lock_timeout_s
        while waiting_pids(self._path) and time.monotonic() < deadline:
            time.sleep(poll_s)

    def _release_when_due(self) -> None:
        assert self._path is not None
        while not self._stop.wait(min(0.2, self.idle_s)):
            with self._lock:
                idle = time.monotonic() - self._last > self.idle_s and not self.retiring
                if self._stack is not None and (idle or waiting_pids(self._path)):
                    self._release_locked()

    def _release_locked(self) -> None:
        if self._stack is not None:
            self.generation += 1
            try:
                self._stack.close()
            finally:
                self._stack = None

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._release_locked()


def _clean(path: Path) -> None:
    """`make clean`: remove the embedded store and its lock files."""
    import shutil

    for item in store_files(path):
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


if __name__ == "__main__":
    from kline_assets.lib.settings import DEFAULT_CLICKHOUSE_DSN

    _clean(embedded_path(DEFAULT_CLICKHOUSE_DSN))
