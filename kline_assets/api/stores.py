"""The stores one service process reads, shared by every request: the resources, the cached
catalogue names, the pages already read while their data cannot have changed and, for
embedded ClickHouse, the keeper that holds the engine open while requests keep coming."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from kline_assets.api.names import CatalogNames
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse.resource import embedded_path, is_embedded, waiting_pids
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource


class EngineKeeper:
    """Holds the embedded ClickHouse engine open across requests, and lets go after `idle_s`
    without one or as soon as another process (a Dagster run) waits for the engine's lock.

    Reopening the embedded engine costs ~40 ms per request; holding it makes a request cost
    the query alone. While it is held no other process can write, which is what lets
    `ReadCache` keep pages for the whole hold (`generation` changes with every release).
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


P = TypeVar("P")


class ReadCache:
    """Pages already read, served again while their data cannot have changed.

    Embedded ClickHouse held by the keeper: nobody else can write while it is held, so a page
    is kept for the whole hold, exactly. Otherwise (a server, or the engine opened per
    request) pages are kept only with `version_ttl_s` > 0: then the set of active parts of the
    price tables is the version, looked up at most once per `version_ttl_s`, so a
    re-materialization shows within that time. Least recently used pages go first beyond
    `max_pages`.
    """

    def __init__(self, clickhouse: ClickHouseResource, keeper: EngineKeeper,
                 max_pages: int = 512, version_ttl_s: float = 0.0) -> None:
        self.clickhouse, self.keeper = clickhouse, keeper
        self.max_pages, self.version_ttl_s = max_pages, version_ttl_s
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, object] = OrderedDict()
        self._parts: tuple[float, Hashable] | None = None
        self.hits = self.misses = 0

    def get(self, key: Hashable, read: Callable[[], P]) -> P:
        version = self._version()
        if version is None or self.max_pages <= 0:
            return read()
        with self._lock:
            if (version, key) in self._pages:
                self._pages.move_to_end((version, key))
                self.hits += 1
                return self._pages[(version, key)]  # type: ignore[return-value]
            self.misses += 1
        value = read()
        if self._version() == version:  # no writer got in while it was read
            with self._lock:
                self._pages[(version, key)] = value
                while len(self._pages) > self.max_pages:
                    self._pages.popitem(last=False)
        return value

    def stats(self) -> dict[str, int]:
        return {"pages": len(self._pages), "hits": self.hits, "misses": self.misses}

    def _version(self) -> Hashable | None:
        if self.keeper.holding:
            return ("hold", self.keeper.generation)
        if self.version_ttl_s <= 0:
            return None
        now = time.monotonic()
        if self._parts is None or now - self._parts[0] > self.version_ttl_s:
            self._parts = (now, ("parts", self._active_parts()))
        return self._parts[1]

    def _active_parts(self) -> int:
        with self.clickhouse.client() as client:
            return int(client.query(
                "SELECT sipHash64(arraySort(groupArray(concat(table, '/', name)))) "
                "FROM system.parts WHERE database = {db:String} AND active "
                "AND table IN ('features_wide', 'price_aligned')",
                parameters={"db": self.clickhouse.db}).result_rows[0][0])


@dataclass
class Stores:
    clickhouse: ClickHouseResource
    postgres: PostgresResource
    names: CatalogNames
    keeper: EngineKeeper = field(repr=False)
    redis: RedisResource
    pages: ReadCache = field(repr=False)

    def read(self, reader: Callable[..., P], **kwargs: object) -> P:
        """`reader(clickhouse, **kwargs)` (a `kline_assets.prices.read` function), from the pages
        already read when it may be. Callers copy what they change: pages are shared."""
        key = (reader.__module__, reader.__qualname__, repr(sorted(kwargs.items())))
        return self.pages.get(key, lambda: reader(self.clickhouse, **kwargs))


def get_stores(request: Request) -> Stores:
    """Dependency of every data endpoint: the app's stores, the engine held for this request."""
    stores: Stores = request.app.state.stores
    stores.keeper.touch()
    return stores
