"""The engine keeper: the service holds embedded ClickHouse while requests come and lets go
when they stop or another process waits, so a Dagster run gets its turn; and the pages it
keeps while their data cannot have changed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kline_assets.api.stores import EngineKeeper, ReadCache
from kline_assets.resources.clickhouse.engine import is_embedded
from kline_assets_tests.support.engine import lock_is_free


def wait_for(condition, limit_s: float = 10.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_keeper_holds_while_busy_and_releases_when_idle(clickhouse):
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    keeper = EngineKeeper(clickhouse, idle_s=0.3)
    try:
        keeper.touch()
        with clickhouse.client() as client:
            assert client.query("SELECT 1").result_rows == [(1,)]
        assert keeper.holding and not lock_is_free(clickhouse)
        assert wait_for(lambda: not keeper.holding)
        assert lock_is_free(clickhouse)
        keeper.touch()  # the next request opens it again
        assert keeper.holding
    finally:
        keeper.close()
    assert lock_is_free(clickhouse)


def test_keeper_with_zero_hold_opens_per_request(clickhouse):
    keeper = EngineKeeper(clickhouse, idle_s=0)
    keeper.touch()
    assert not keeper.holding
    keeper.close()


WRITER = """
import sys, time
from kline_assets.resources.clickhouse import ClickHouseResource
ch = ClickHouseResource(dsn=sys.argv[1], database=sys.argv[2], lock_timeout_s=60)
t0 = time.monotonic()
with ch.client() as client:
    waited = time.monotonic() - t0
    client.command(f"INSERT INTO {ch.table('features_wide')} (run_id, bucket, scope, shop_count) "
                   "VALUES ('live', '2025-10-01 09:00:00', 'iphone:1', 3)")
print(waited)
"""


def _rows(clickhouse) -> int:
    with clickhouse.client() as client:
        return client.query(
            f"SELECT count() FROM {clickhouse.table('features_wide')}").result_rows[0][0]


def test_a_waiting_run_gets_in_while_requests_keep_coming_and_kept_pages_are_dropped(
        clickhouse):
    """A busy service must not starve the live refresh: it lets go as soon as another
    process waits, and a page it kept from before that write is read again afterwards."""
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    keeper = EngineKeeper(clickhouse, idle_s=30)  # idleness alone would hold it for 30 s
    pages = ReadCache(clickhouse, keeper)
    reads = []

    def read() -> int:
        reads.append(1)
        return _rows(clickhouse)

    try:
        keeper.touch()
        assert pages.get("rows", read) == 0 and pages.get("rows", read) == 0
        assert len(reads) == 1 and pages.stats()["hits"] == 1  # the second came from the cache
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, clickhouse.dsn, clickhouse.database],
            stdout=subprocess.PIPE, text=True)
        while writer.poll() is None:  # a request every 50 ms, as a polling frontend sends
            keeper.touch()
            pages.get("rows", read)
            time.sleep(0.05)
        assert writer.returncode == 0
        assert float(writer.stdout.read()) < 5.0  # waited for a release, not for idleness
        keeper.touch()
        assert pages.get("rows", read) == 1  # read again after the write, not the kept 0
    finally:
        keeper.close()
    assert lock_is_free(clickhouse)


def test_a_hold_that_finds_the_parts_unchanged_keeps_what_the_last_one_kept(clickhouse):
    """An idle frontend lets the engine go; its next request must not start cold when
    nothing was written meanwhile, and must read again when something was."""
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    keeper = EngineKeeper(clickhouse, idle_s=0.2)
    pages = ReadCache(clickhouse, keeper)
    try:
        keeper.touch()
        assert pages.get("rows", lambda: _rows(clickhouse)) == 0
        assert wait_for(lambda: not keeper.holding)
        keeper.touch()
        assert pages.get("rows", lambda: -1) == 0  # kept across the release
        assert wait_for(lambda: not keeper.holding)
        with clickhouse.client() as client:  # a run's write while nobody holds it
            client.command(f"INSERT INTO {clickhouse.table('features_wide')} (run_id, bucket, "
                           "scope, shop_count) VALUES ('live', '2025-10-01 09:00:00', "
                           "'iphone:1', 3)")
        keeper.touch()
        assert pages.get("rows", lambda: _rows(clickhouse)) == 1
    finally:
        keeper.close()


def test_without_a_hold_pages_are_kept_only_until_the_parts_change(clickhouse):
    """A server (or the engine opened per request): the active parts are the version,
    looked up at most once per `version_ttl_s`; with no ttl nothing is kept."""
    keeper = EngineKeeper(clickhouse, idle_s=0)
    uncached = ReadCache(clickhouse, keeper)
    assert uncached.get("rows", lambda: _rows(clickhouse)) == 0
    assert uncached.stats() == {"pages": 0, "hits": 0, "misses": 0}

    pages = ReadCache(clickhouse, keeper, version_ttl_s=0.2)
    assert pages.get("rows", lambda: _rows(clickhouse)) == 0
    assert pages.get("rows", lambda: -1) == 0  # kept
    with clickhouse.client() as client:
        client.command(f"INSERT INTO {clickhouse.table('features_wide')} (run_id, bucket, scope, "
                       "shop_count) VALUES ('live', '2025-10-01 09:00:00', 'iphone:1', 3)")
    time.sleep(0.3)
    assert pages.get("rows", lambda: _rows(clickhouse)) == 1
