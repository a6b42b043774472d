"""Fixtures of the price domain: a seeded catalog, resources, run ids."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from kline_assets.prices.partitions import create_run
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets_tests.support.prices import (
    demo_month_keys,
    insert_catalog,
    load_small_demo,
    resources_on,
)


@pytest.fixture
def catalog(postgres: PostgresResource) -> PostgresResource:
    return insert_catalog(postgres)


@pytest.fixture
def price_resources(catalog: PostgresResource, clickhouse: ClickHouseResource) -> dict:
    return resources_on(catalog, clickhouse)


@pytest.fixture
def runs(instance: DagsterInstance) -> DagsterInstance:
    for run_id in ("live", "backfill_v3"):
        create_run(instance, run_id)
    return instance


@pytest.fixture
def demo_prices(price_resources) -> PostgresResource:
    """The small demo as the source (see load_small_demo)."""
    load_small_demo(price_resources["postgres"])
    return price_resources["postgres"]


@pytest.fixture
def demo_months(demo_prices: PostgresResource) -> list[str]:
    """The demo's two price months as partition month keys."""
    return demo_month_keys(demo_prices)


@pytest.fixture
def demo_source(price_resources) -> dict:
    """Two demo months (5 shops, 4 iPhones, 3 cohorts, one stock) as the source; the price
    resources on it."""
    from kline_assets.demo.catalog import DemoConfig
    from kline_assets.demo.load import load_demo

    cfg = DemoConfig(months=2, n_shops=5, n_iphones=4, n_cohorts=3, stock_codes=1,
                     stock_months=1)
    postgres = price_resources["postgres"]
    with postgres.connect() as conn:  # the demo loads into a database of its own
        conn.execute("TRUNCATE shop, iphone")
    load_demo(postgres, cfg)
    return price_resources
