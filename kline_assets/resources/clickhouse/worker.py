"""Embedded-engine work of long-lived processes, done in a child process that is retired.

chdb 4.4 leaves ~5 threads and ~2 MiB behind every time this process opens and closes the
embedded engine, and a process must close it to let others (Dagster runs) take the file lock.
A process that lives for weeks and opens the engine now and then — the code server evaluating
the live sensor every 15 minutes — would grow without bound. Such work is handed to a spawned
child instead: the child opens and closes the engine, and is replaced after
`TASKS_PER_WORKER` tasks, so what it leaked dies with it. The caller's threads stay flat and
the child's stay under a fixed ceiling.

A server DSN has no such leak: the work runs inline. So does work asked for while this process
already holds the engine (a child could not take the lock this process holds).
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources.clickhouse.engine import holds_engine, is_embedded
from kline_assets.resources.clickhouse.resource import ClickHouseResource

T = TypeVar("T")

# Each task opens the engine once: a child leaks at most ~5 threads per task before it goes.
TASKS_PER_WORKER = 8

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: the parent may run gRPC or uvicorn threads, and chdb's own
            # threads start at import, so a forked child could inherit a held lock.
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=TASKS_PER_WORKER)
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def shutdown() -> None:
    """Stop the worker (at exit, and for tests that count a process's children)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _call(fn: Callable[..., T], store: dict[str, object], args: tuple, kwargs: dict) -> T:
    """In the worker: rebuild the resource (Dagster resources do not pickle) and call."""
    return fn(ClickHouseResource(**store), *args, **kwargs)


def in_engine_worker(fn: Callable[..., T], clickhouse: ClickHouseResource, /,
                     *args: object, **kwargs: object) -> T:
    """`fn(clickhouse, *args, **kwargs)`, in the engine worker when `clickhouse` is embedded.

    `fn` and its other arguments must pickle (a module-level function, plain data); its
    exceptions come back as raised. A worker that dies mid-task (killed, out of memory) is an
    error naming the store, and the next call starts a new worker."""
    if not is_embedded(clickhouse.dsn) or holds_engine():
        return fn(clickhouse, *args, **kwargs)
    store = {"dsn": clickhouse.dsn, "database": clickhouse.database,
             "lock_timeout_s": clickhouse.lock_timeout_s}
    pool = _executor()
    try:
        return pool.submit(_call, fn, store, args, kwargs).result()
    except BrokenProcessPool as exc:
        _discard(pool)
        raise ServiceUnavailableError(
            f"the worker process reading {clickhouse.address} died: {exc}",
            store="ClickHouse", address=clickhouse.address) from exc
