"""The engine keeper: the service holds embedded ClickHouse while requests come and lets go
when they stop, so a Dagster run waiting for the engine gets its turn."""

from __future__ import annotations

import time

import pytest

from kline_assets.api.stores import EngineKeeper
from kline_assets.resources.clickhouse.resource import is_embedded
from kline_assets_tests.resources.test_clickhouse_schema import lock_is_free


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
