"""Fixtures of the price domain: a seeded catalog, resources, run ids."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from kline_assets.prices.partitions import create_run
from kline_assets.resources import (
    ClickHouseIOManager,
    ClickHouseResource,
    PostgresResource,
    TorchDeviceResource,
)
from kline_assets_tests.support.prices import insert_catalog


@pytest.fixture
def catalog(postgres: PostgresResource) -> PostgresResource:
    return insert_catalog(postgres)


def resources_on(postgres: PostgresResource, clickhouse: ClickHouseResource) -> dict:
    """The resources the price assets run with, on these stores (CPU kernels)."""
    return {
        "postgres": postgres,
        "clickhouse": clickhouse,
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
        "torch_device": TorchDeviceResource(device="cpu"),
    }


@pytest.fixture
def price_resources(catalog: PostgresResource, clickhouse: ClickHouseResource) -> dict:
    return resources_on(catalog, clickhouse)


@pytest.fixture
def runs(instance: DagsterInstance) -> DagsterInstance:
    for run_id in ("live", "backfill_v3"):
        create_run(instance, run_id)
    return instance


def load_small_demo(postgres: PostgresResource) -> None:
    """A small demo (October and November 2025: 5 shops, 4 iPhones, 3 cohorts) as the source."""
    from kline_assets.demo.catalog import DemoConfig
    from kline_assets.demo.load import load_demo

    with postgres.connect() as conn:  # the demo loads into a database of its own
        conn.execute("TRUNCATE shop, iphone")
    load_demo(postgres, DemoConfig(months=2, n_shops=5, n_iphones=4, n_cohorts=3,
                                   stock_codes=0, stock_months=0))


def demo_month_keys(postgres: PostgresResource) -> list[str]:
    """The source's first and last price months as partition month keys."""
    with postgres.connect() as conn:
        first, last = conn.execute(
            "SELECT date_trunc('month', min(recorded_at AT TIME ZONE 'Asia/Tokyo')), "
            "date_trunc('month', max(recorded_at AT TIME ZONE 'Asia/Tokyo')) "
            "FROM purchasing_shop_price_record").fetchone()
    return [f"{first:%Y-%m-01}", f"{last:%Y-%m-01}"]


@pytest.fixture
def demo_prices(price_resources) -> PostgresResource:
    """The small demo as the source (see load_small_demo)."""
    load_small_demo(price_resources["postgres"])
    return price_resources["postgres"]


@pytest.fixture
def demo_months(demo_prices: PostgresResource) -> list[str]:
    """The demo's two price months as partition month keys."""
    return demo_month_keys(demo_prices)
