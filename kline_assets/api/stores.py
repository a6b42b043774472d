"""The stores one service process reads, shared by every request: the resources, the cached
catalogue names and, for embedded ClickHouse, the keeper that holds the engine open while
requests keep coming."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from fastapi import Request

from kline_assets.query import CatalogNames
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource


class EngineKeeper:
    """Holds the embedded ClickHouse engine open across requests and lets go after `idle_s`
    without one, so a Dagster run waiting for the engine's file lock gets its turn.

    Reopening the embedded engine costs ~40 ms per request; holding it makes a request cost
    the query alone. `idle_s = 0` opens per request. A server DSN is unaffected.
    """

    def __init__(self, clickhouse: ClickHouseResource, idle_s: float) -> None:
        self.clickhouse, self.idle_s = clickhouse, idle_s
        self._lock = threading.Lock()
        self._stack: ExitStack | None = None
        self._last = 0.0
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def holding(self) -> bool:
        return self._stack is not None

    def touch(self) -> None:
        """Before a request's reads: open (once) and note the time."""
        if self.idle_s <= 0:
            return
        with self._lock:
            self._last = time.monotonic()
            if self._stack is None:
                stack = ExitStack()
                stack.enter_context(self.clickhouse.held())
                self._stack = stack
                if self._watch is None:
                    self._watch = threading.Thread(target=self._release_when_idle,
                                                   name="clickhouse-keeper", daemon=True)
                    self._watch.start()

    def _release_when_idle(self) -> None:
        while not self._stop.wait(min(0.5, self.idle_s)):
            with self._lock:
                if self._stack is not None and time.monotonic() - self._last > self.idle_s:
                    self._release_locked()

    def _release_locked(self) -> None:
        if self._stack is not None:
            try:
                self._stack.close()
            finally:
                self._stack = None

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._release_locked()


@dataclass
class Stores:
    clickhouse: ClickHouseResource
    postgres: PostgresResource
    names: CatalogNames
    keeper: EngineKeeper = field(repr=False)
    redis: RedisResource = field(default_factory=RedisResource)


def get_stores(request: Request) -> Stores:
    """Dependency of every data endpoint: the app's stores, the engine held for this request."""
    stores: Stores = request.app.state.stores
    stores.keeper.touch()
    return stores
