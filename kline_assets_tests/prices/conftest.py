"""Fixtures of the price domain: a seeded catalog, record insertion, resources, run ids."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pytest
from dagster import DagsterInstance

from kline_assets.prices.runs import create_run
from kline_assets.resources import (
    ClickHouseIOManager,
    ClickHouseResource,
    PostgresResource,
    TorchDeviceResource,
)

SHOPS = [1, 2, 3, 4]
IPHONES = [10, 11, 12]


@pytest.fixture
def catalog(postgres: PostgresResource) -> PostgresResource:
    with postgres.connect() as conn:
        conn.cursor().executemany("INSERT INTO shop VALUES (%s, %s)",
                                  [(s, f"shop {s}") for s in SHOPS])
        conn.cursor().executemany("INSERT INTO iphone VALUES (%s, %s)",
                                  [(i, f"iPhone {i}") for i in IPHONES])
    return postgres


def insert_records(postgres: PostgresResource, rows: Iterable[tuple]) -> pd.DataFrame:
    """rows: (id, shop_id, iphone_id, price_new, price_a, price_b, recorded_at Tokyo string)."""
    df = pd.DataFrame(list(rows), columns=["id", "shop_id", "iphone_id", "price_new",
                                           "price_grade_a", "price_grade_b", "recorded_at"])
    df["recorded_at"] = pd.to_datetime(df["recorded_at"]).dt.tz_localize("Asia/Tokyo")
    for col in ("price_new", "price_grade_a", "price_grade_b"):
        df[col] = df[col].astype("Int64")
    with postgres.connect() as conn:
        postgres.copy_in(conn, postgres.price_table, df)
    return df


@pytest.fixture
def price_resources(catalog: PostgresResource, clickhouse: ClickHouseResource) -> dict:
    return {
        "postgres": catalog,
        "clickhouse": clickhouse,
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
        "torch_device": TorchDeviceResource(device="cpu"),
    }


@pytest.fixture
def runs(instance: DagsterInstance) -> DagsterInstance:
    for run_id in ("live", "backfill_v3"):
        create_run(instance, run_id)
    return instance
