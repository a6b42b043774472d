"""Features pages served from month slices in memory are never stale: a write between two
reads is seen by the second, with the engine held (embedded: the hold's generation) and
without a hold (a server's active parts, checked at most every `version_ttl_s` — exercised
here on chdb, the same mechanism a ClickHouse server gets)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from kline_assets.api.inline import inline_or_pooled
from kline_assets.api.slices import MonthSlices
from kline_assets.api.stores import EngineKeeper, ReadCache, Stores
from kline_assets.prices import read
from kline_assets.resources.clickhouse.engine import is_embedded
from kline_assets_tests.api.test_stores import wait_for

INSERT = ("INSERT INTO {table} (run_id, bucket, scope, mean, shop_count, inserted_at) "
          "VALUES ('live', '2025-10-01 09:00:00', 'iphone:1', {mean}, 3, {ins})")
WRITER = """
import sys
from kline_assets.resources.clickhouse import ClickHouseResource
ch = ClickHouseResource(dsn=sys.argv[1], database=sys.argv[2], lock_timeout_s=60)
with ch.client() as client:
    client.command(sys.argv[3])
"""
PAGE = dict(scope=["iphone:1"], bucket_gte="2025-10-01T00:00", bucket_lte="2025-11-01T00:00",
            columns=["bucket", "scope", "mean", "shop_count", "inserted_at"], order=["-bucket"])


def _stores(clickhouse, keeper: EngineKeeper, ttl_s: float, max_bytes: int = 64 << 20
            ) -> Stores:
    pages = ReadCache(clickhouse, keeper, version_ttl_s=ttl_s)
    return Stores(clickhouse, None, None, keeper, None, pages,  # type: ignore[arg-type]
                  MonthSlices(clickhouse, pages.version, max_bytes))


def _mean(stores: Stores) -> float:
    return stores.read(read.features_page, **PAGE).rows[0]["mean"]


def _from_memory(stores: Stores) -> float:
    """The page once its month is in memory (the first read loads it in the background)."""
    assert stores.months is not None
    _mean(stores)
    assert wait_for(lambda: stores.months.stats()["loads"] > 0 and not stores.months._pending)
    served = stores.months.served
    stores.pages._pages.clear()  # past the page cache, to the slices
    value = _mean(stores)
    assert stores.months.served == served + 1
    return value


def _insert(clickhouse, mean: float, ins: str) -> str:
    return INSERT.format(table=clickhouse.table("features_wide"), mean=mean, ins=ins)


def test_a_write_while_the_engine_is_held_is_seen_by_the_next_read(clickhouse):
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "'2025-12-01 00:00:00'"))
    keeper = EngineKeeper(clickhouse, idle_s=30)
    stores = _stores(clickhouse, keeper, 0.0)
    try:
        keeper.touch()
        assert _from_memory(stores) == 100.0
        writer = subprocess.Popen([sys.executable, "-c", WRITER, clickhouse.dsn,
                                   clickhouse.database,
                                   _insert(clickhouse, 200.0, "'2025-12-02 00:00:00'")])
        while writer.poll() is None:  # requests keep coming while the run waits
            keeper.touch()
            _mean(stores)
            time.sleep(0.05)
        assert writer.returncode == 0
        keeper.touch()
        assert _mean(stores) == 200.0  # the next read, not the month kept from before
        assert _from_memory(stores) == 200.0  # and the month read again
    finally:
        stores.months.close()
        keeper.close()


def test_a_kept_page_of_a_month_memory_does_not_hold_is_answered_on_the_loop(clickhouse):
    """A month too large for the budget stays out of memory; a page of it read once from
    ClickHouse is answered again from the page cache without a store or the thread pool."""
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "'2025-12-01 00:00:00'"))
    keeper = EngineKeeper(clickhouse, idle_s=30)
    stores = _stores(clickhouse, keeper, 0.0, max_bytes=1)  # no month fits
    pooled: list[int] = []
    try:
        keeper.touch()
        first = stores.read(read.features_page, **PAGE)
        assert wait_for(lambda: not stores.months._pending)  # the month was tried
        assert stores.months.stats()["months"] == 0
        again = asyncio.run(inline_or_pooled(
            True, lambda: stores.read(read.features_page, **PAGE),
            lambda: pooled.append(1)))
        assert again is first and not pooled
    finally:
        stores.months.close()
        keeper.close()


def test_without_a_hold_a_write_is_seen_within_the_version_ttl(clickhouse):
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "'2025-12-01 00:00:00'"))
    keeper = EngineKeeper(clickhouse, idle_s=0)
    stores = _stores(clickhouse, keeper, 0.2)
    try:
        assert _from_memory(stores) == 100.0
        with clickhouse.client() as client:
            client.command(_insert(clickhouse, 200.0, "'2025-12-02 00:00:00'"))
        time.sleep(0.3)
        assert _mean(stores) == 200.0
        assert _from_memory(stores) == 200.0
    finally:
        stores.months.close()


def test_the_parts_version_costs_one_lookup_per_ttl_not_one_per_request(clickhouse,
                                                                         monkeypatch):
    keeper = EngineKeeper(clickhouse, idle_s=0)
    pages = ReadCache(clickhouse, keeper, version_ttl_s=60)
    lookups = []
    monkeypatch.setattr(pages, "_active_parts", lambda: lookups.append(1) or 7)
    for _ in range(50):
        pages.version()
    assert len(lookups) == 1


def test_a_write_to_one_month_leaves_the_other_months_in_memory(clickhouse):
    """The live refresh writes the current month every 15 minutes; the months before it
    stay in memory, the written one is read again."""
    october = dict(PAGE, bucket_lte="2025-10-31T23:45")
    november = dict(PAGE, bucket_gte="2025-11-01T00:00", bucket_lte="2025-11-30T23:45")

    def mean(page: dict) -> float:
        stores.pages._pages.clear()  # past the page cache, to the slices
        return stores.read(read.features_page, **page).rows[0]["mean"]

    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "'2025-12-01 00:00:00'"))
        client.command(_insert(clickhouse, 300.0, "'2025-12-01 00:00:00'").replace(
            "2025-10-01 09:00:00", "2025-11-01 09:00:00"))
    stores = _stores(clickhouse, EngineKeeper(clickhouse, idle_s=0), 0.2)
    try:
        assert mean(october) == 100.0 and mean(november) == 300.0  # from ClickHouse
        assert wait_for(lambda: stores.months.stats()["loads"] == 2)
        assert mean(october) == 100.0 and mean(november) == 300.0
        assert stores.months.served == 2
        with clickhouse.client() as client:
            client.command(_insert(clickhouse, 400.0, "'2025-12-02 00:00:00'").replace(
                "2025-10-01 09:00:00", "2025-11-01 09:00:00"))
        time.sleep(0.3)
        assert mean(october) == 100.0 and stores.months.served == 3  # October was kept
        assert mean(november) == 400.0 and stores.months.served == 3  # from ClickHouse
        assert wait_for(lambda: stores.months.stats()["loads"] == 3)  # November read again
        assert mean(november) == 400.0 and stores.months.served == 4
    finally:
        stores.months.close()
