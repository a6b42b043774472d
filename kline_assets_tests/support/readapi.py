"""The read side's test store: the demo's catalogue and one month of prices, materialized by the
price assets into ClickHouse (run `live`), with `backfill_v3` a promoted copy of it. Built once
per session: the read API only reads it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from dagster import DagsterInstance, materialize

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.load import load_demo
from kline_assets.prices.assets import (
    cohorts,
    cross_shop_agg,
    features_wide,
    price_aligned,
    raw_price_records,
)
from kline_assets.prices.partitions import create_run
from kline_assets.prices.runs import promote_run
from kline_assets.resources import (
    ClickHouseIOManager,
    ClickHouseResource,
    PostgresResource,
    TorchDeviceResource,
)

# Small but real: every shop × iPhone pattern of the demo, three cohorts, one month.
READ_DEMO = DemoConfig(months=1, n_shops=5, n_iphones=4, n_cohorts=3, stock_codes=0,
                       stock_months=0)
MONTH = "2025-10-01"
RUN_IDS = ("live", "backfill_v3")
COLD = {"ops": {name: {"config": {"cold_start": True}}
                for name in ("cross_shop_agg", "features_wide", "cohorts")}}


@dataclass(frozen=True)
class ReadStore:
    postgres: PostgresResource
    clickhouse: ClickHouseResource
    config: DemoConfig


@contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    """A new PostgreSQL database for the session, dropped afterwards."""
    name = f"kline_read_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_read_store(pg_dsn: str, clickhouse_dsn: str) -> ReadStore:
    """Load the demo catalogue and prices, materialize the month for `live`, copy to
    `backfill_v3`."""
    postgres = PostgresResource(dsn=pg_dsn)
    load_demo(postgres, READ_DEMO)
    clickhouse = ClickHouseResource(dsn=clickhouse_dsn, database=f"r_{uuid.uuid4().hex[:10]}")
    clickhouse.ensure_schema()
    instance = DagsterInstance.ephemeral()
    for run_id in RUN_IDS:
        create_run(instance, run_id)
    resources = {"postgres": postgres, "clickhouse": clickhouse,
                 "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
                 "torch_device": TorchDeviceResource(device="cpu")}
    assets = [raw_price_records, price_aligned, cross_shop_agg, features_wide, cohorts]
    result = materialize(assets, selection=assets[1:], partition_key=f"{MONTH}|live",
                         resources=resources, instance=instance, run_config=COLD)
    assert result.success
    promote_run(clickhouse, "live", "backfill_v3")
    return ReadStore(postgres, clickhouse, READ_DEMO)
