"""The stores one service process reads, shared by every request: the resources, the cached
catalogue names, the pages already read while their data cannot have changed and, for
embedded ClickHouse, the keeper that holds the engine open while requests keep coming (a
long-lived reader's hold, as `resources.clickhouse.engine` defines it)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from kline_assets.api.inline import may_block
from kline_assets.api.names import CatalogNames
from kline_assets.api.responses import EncodedPages
from kline_assets.api.slices import MonthSlices
from kline_assets.prices import read as prices_read
from kline_assets.prices.tables import PRICE_TABLES, parse_partition
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse.engine import EngineKeeper
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource

P = TypeVar("P")
MISSING = object()
"""`ReadCache.kept`'s answer when no page is kept (a reader's page may be falsy)."""


@dataclass(frozen=True)
class PartsVersion:
    """The active parts of the price tables: equal versions, equal data. `months` splits
    features_wide's by run × month, so what memory keeps of one month stays valid while the
    live refresh writes another."""

    parts: frozenset[tuple[str, str]]  # (table, part name)
    months: dict[tuple[str, int], frozenset[str]] = field(compare=False, hash=False)

    def month(self, run_id: str, month: int) -> frozenset[str]:
        """The parts of run × month (none: it has no rows, which is a state too)."""
        return self.months.get((run_id, month), frozenset())


class ReadCache:
    """Pages already read, served again while their data cannot have changed.

    The version of the data is the set of active parts of the price tables: every write
    (insert, partition replace, mutation) makes new parts, a merge only renames them (kept
    pages then go, needlessly but safely). Embedded ClickHouse held by the keeper: nobody
    else can write while it is held, so the parts are looked up once per hold, exactly, and a
    hold that finds the same parts as the last one keeps what that one kept (a frontend idle
    for a while does not start cold). Otherwise (a server, or the engine opened per request)
    pages are kept only with `version_ttl_s` > 0: the parts are then looked up at most once
    per `version_ttl_s`, so a re-materialization shows within that time. Least recently used
    pages go first beyond `max_pages`.
    """

    def __init__(self, clickhouse: ClickHouseResource, keeper: EngineKeeper,
                 max_pages: int = 512, version_ttl_s: float = 0.0) -> None:
        self.clickhouse, self.keeper = clickhouse, keeper
        self.max_pages, self.version_ttl_s = max_pages, version_ttl_s
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, object] = OrderedDict()
        self._parts: tuple[float, Hashable] | None = None
        self._held: tuple[int, Hashable] | None = None  # (hold generation, its parts)
        self.hits = self.misses = 0

    def kept(self, key: Hashable) -> object:
        """The page kept for `key` under the data's version, or `MISSING`; never reads it."""
        version = self.version()
        if version is None or self.max_pages <= 0:
            return MISSING
        return self._kept(version, key)

    def _kept(self, version: Hashable, key: Hashable) -> object:
        with self._lock:
            if (version, key) in self._pages:
                self._pages.move_to_end((version, key))
                self.hits += 1
                return self._pages[(version, key)]
        return MISSING

    def get(self, key: Hashable, read: Callable[[], P]) -> P:
        version = self.version()
        if version is None or self.max_pages <= 0:
            return read()
        found = self._kept(version, key)
        if found is not MISSING:
            return found  # type: ignore[return-value]
        value = read()
        with self._lock:
            self.misses += 1
        if self.version() == version:  # no writer got in while it was read
            with self._lock:
                self._pages[(version, key)] = value
                while len(self._pages) > self.max_pages:
                    self._pages.popitem(last=False)
        return value

    def stats(self) -> dict[str, int]:
        return {"pages": len(self._pages), "hits": self.hits, "misses": self.misses}

    def version(self) -> Hashable | None:
        """What the data is now, as far as kept pages go: equal versions, equal data; None
        when nothing proves it (then nothing may be kept). Never a round trip per call."""
        if self.keeper.holding:
            generation = self.keeper.generation
            held = self._held
            if held is None or held[0] != generation:
                may_block()
                held = self._held = (generation, self._active_parts())
            return held[1]
        if self.version_ttl_s <= 0:
            return None
        now = time.monotonic()
        if self._parts is None or now - self._parts[0] > self.version_ttl_s:
            may_block()
            self._parts = (now, self._active_parts())
        return self._parts[1]

    def known_version(self, generation: int | None = None) -> Hashable | None:
        """`version()` where it is known without a store: the parts of the hold of
        `generation` once looked up, or a server's parts looked up less than `version_ttl_s`
        ago; None otherwise."""
        if generation is not None:
            held = self._held
            return held[1] if held is not None and held[0] == generation else None
        parts = self._parts
        if self.version_ttl_s <= 0 or parts is None or \
                time.monotonic() - parts[0] > self.version_ttl_s:
            return None
        return parts[1]

    def _active_parts(self) -> PartsVersion:
        with self.clickhouse.client() as client:
            rows = client.query(
                "SELECT table, any(partition), groupArray(name) FROM system.parts "
                "WHERE database = {db:String} AND active AND has({tables:Array(String)}, table) "
                "GROUP BY table, partition_id",
                parameters={"db": self.clickhouse.db, "tables": list(PRICE_TABLES)}
            ).result_rows
        months: dict[tuple[str, int], set[str]] = {}
        for table, partition, names in rows:
            if table == "features_wide":
                run_id, month = parse_partition(partition)[:2]
                months.setdefault((run_id, int(month)), set()).update(names)
        return PartsVersion(frozenset((t, n) for t, _, names in rows for n in names),
                            {k: frozenset(v) for k, v in months.items()})


@dataclass
class Stores:
    clickhouse: ClickHouseResource
    postgres: PostgresResource
    names: CatalogNames
    keeper: EngineKeeper = field(repr=False)
    redis: RedisResource
    pages: ReadCache = field(repr=False)
    months: MonthSlices | None = field(default=None, repr=False)
    encoded: EncodedPages = field(default_factory=lambda: EncodedPages(0), repr=False)

    def cache_stats(self) -> dict[str, int]:
        """Kept pages and bodies; `hits` counts the requests either answered, `body_hits`
        those a kept body answered before routing."""
        pages, bodies = self.pages.stats(), self.encoded.stats()
        return {**pages, "hits": pages["hits"] + bodies["hits"], "bodies": bodies["bodies"],
                "body_hits": bodies["hits"]}

    def known_version(self) -> Hashable | None:
        """The version of what a response body is made of — the data as kept pages know it
        and the catalogue names — without waiting on a store or a lock (None: only the
        thread pool may find out); a held engine's idle clock restarts."""
        generation = self.keeper.touch_if_held()
        parts = (self.pages.known_version(generation) if generation is not None
                 else self.pages.known_version())
        names = self.names.known_generation()
        return None if parts is None or names is None else (parts, names)

    def read(self, reader: Callable[..., P], **kwargs: object) -> P:
        """`reader(clickhouse, **kwargs)` (a `kline_assets.prices.read` function): from the
        pages already read when it may be, else — for a features page — from the month
        slices in memory when they hold it, else from ClickHouse. A page memory answers is
        not kept as a page too: it costs less to answer again than the ClickHouse pages it
        would push out of the keep. Callers copy what they change: pages are shared."""
        key = (reader.__module__, reader.__qualname__, repr(sorted(kwargs.items())))
        if reader is prices_read.features_page and self.months is not None:
            found = self.pages.kept(key)  # before memory, which leaves a miss to the pool
            if found is not MISSING:
                return found  # type: ignore[return-value]
            page = self.months.features_page(**kwargs)
            if page is not None:
                return page  # type: ignore[return-value]

        def fresh() -> P:
            may_block()
            return reader(self.clickhouse, **kwargs)

        return self.pages.get(key, fresh)


def get_stores(request: Request) -> Stores:
    """Dependency of the data endpoints answered in the thread pool: the app's stores, the
    engine held for this request."""
    stores: Stores = request.app.state.stores
    stores.keeper.touch()
    return stores


def request_stores(request: Request) -> Stores:
    """The app's stores for the endpoints that answer through `responses.respond` (which
    holds the engine only if it must read). Not a dependency: FastAPI's solving of one cost
    those endpoints a tenth of a page."""
    return request.app.state.stores
