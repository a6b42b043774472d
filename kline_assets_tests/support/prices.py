"""Price-domain test helpers: a small catalogue, hand-built raw records, the resources the
assets run with, materializing a month and reading a table back."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
from dagster import materialize

from kline_assets.prices.assets import ALL, COMPUTED
from kline_assets.prices.source import PRICE_TABLE
from kline_assets.resources import (
    ClickHouseIOManager,
    ClickHouseResource,
    PostgresResource,
    TorchDeviceResource,
)
from kline_assets.resources.clickhouse.sql import read_frame
from kline_assets.resources.pgcopy import copy_table

SHOPS = [1, 2, 3, 4]
IPHONES = [10, 11, 12]
RECORD_COLUMNS = ["id", "shop_id", "iphone_id", "price_new", "price_grade_a", "price_grade_b",
                  "recorded_at"]


def insert_catalog(postgres: PostgresResource) -> PostgresResource:
    with postgres.connect() as conn:
        conn.cursor().executemany("INSERT INTO shop VALUES (%s, %s)",
                                  [(s, f"shop {s}") for s in SHOPS])
        conn.cursor().executemany("INSERT INTO iphone VALUES (%s, %s)",
                                  [(i, f"iPhone {i}") for i in IPHONES])
    return postgres


def insert_records(postgres: PostgresResource, rows: Iterable[tuple]) -> pd.DataFrame:
    """rows: (id, shop_id, iphone_id, price_new, price_a, price_b, recorded_at Tokyo string)."""
    df = pd.DataFrame(list(rows), columns=RECORD_COLUMNS)
    df["recorded_at"] = pd.to_datetime(df["recorded_at"]).dt.tz_localize("Asia/Tokyo")
    for col in ("id", "shop_id", "iphone_id", "price_new", "price_grade_a", "price_grade_b"):
        df[col] = df[col].astype("Int64")
    with postgres.connect() as conn:
        copy_table(conn, PRICE_TABLE, pa.Table.from_pandas(df, preserve_index=False))
    return df


def resources_on(postgres: PostgresResource, clickhouse: ClickHouseResource) -> dict:
    """The resources the price assets run with, on these stores (CPU kernels)."""
    return {
        "postgres": postgres,
        "clickhouse": clickhouse,
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
        "torch_device": TorchDeviceResource(device="cpu"),
    }


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


def run(resources, instance, key: str, selection=COMPUTED, config=None):
    result = materialize(ALL, selection=selection, partition_key=key, resources=resources,
                         instance=instance, run_config=config)
    assert result.success
    return result


def table(clickhouse: ClickHouseResource, name: str, where: str = "1") -> pd.DataFrame:
    with clickhouse.client() as client:
        return read_frame(client, clickhouse.table(name), where)


def numbered_records(rows):
    """(shop, iphone, price, 'YYYY-MM-DD HH:MM') → insertable record tuples with ids."""
    return [(i + 1, s, ip, p, None, None, f"{ts}:00") for i, (s, ip, p, ts) in enumerate(rows)]


HAND = numbered_records([
    # iPhone 10: four shops at 00:00 (even count), a ×10 typo among four at 00:15
    (1, 10, 100_000, "2025-10-01 00:00"), (2, 10, 101_000, "2025-10-01 00:03"),
    (3, 10, 103_000, "2025-10-01 00:05"), (4, 10, 104_000, "2025-10-01 00:07"),
    (1, 10, 100_000, "2025-10-01 00:15"), (2, 10, 1_010_000, "2025-10-01 00:16"),
    (3, 10, 102_000, "2025-10-01 00:17"), (4, 10, 101_000, "2025-10-01 00:18"),
    # iPhone 10: a single shop, then a gap of five buckets, then two shops
    (1, 10, 99_000, "2025-10-01 00:30"),
    (1, 10, 98_000, "2025-10-01 02:00"), (2, 10, 97_000, "2025-10-01 02:01"),
    # iPhone 11 appears mid-month; its last bucket is the month's last source bucket
    (1, 11, 150_000, "2025-10-01 01:00"), (2, 11, 151_000, "2025-10-01 01:05"),
    (1, 11, 152_000, "2025-10-01 03:00"),
])
"""Records the cross-shop and feature tests know by heart: an even count, a ×10 typo, a gap,
an iPhone appearing mid-month."""

RECORDS = [
    # id, shop, iphone, new, grade a, grade b, recorded_at (Asia/Tokyo)
    (1, 1, 10, 100_000, 93_000, 85_000, "2025-10-01 00:00:00"),   # on the month's first edge
    (2, 1, 10, 101_000, None, 85_500, "2025-10-01 00:10:00"),     # later in bucket: wins
    (3, 2, 10, 99_000, 92_000, None, "2025-10-01 00:05:00"),
    (4, 2, 10, 99_500, 92_500, None, "2025-10-01 00:05:00"),      # tie: higher id wins
    (5, 3, 10, 98_000, None, None, "2025-10-01 00:15:00"),        # edge: bucket 00:15
    (6, 1, 11, 150_000, 140_000, 130_000, "2025-10-31 23:59:59"), # last bucket of October
    (7, 1, 11, 151_000, 140_500, 130_500, "2025-11-01 00:00:00"), # November, not October
    (8, 4, 12, 60_000, 55_000, 50_000, "2025-09-30 23:59:59"),    # September, not October
    (9, 2, 11, 149_000, 0, 130_000, "2025-10-15 12:14:00"),       # grade A 0 → NULL, counted
]
"""Records at the edges of buckets and months, a tie, and a grade price of 0."""


def stored(clickhouse: ClickHouseResource, run_id: str, start: str, end: str) -> pd.DataFrame:
    with clickhouse.client() as client:
        df = read_frame(client, clickhouse.table("price_aligned"),
                        f"run_id = '{run_id}' AND bucket >= toDateTime('{start}', 'Asia/Tokyo') "
                        f"AND bucket < toDateTime('{end}', 'Asia/Tokyo')")
    df = df.drop(columns=["run_id"]).sort_values(["shop_id", "iphone_id", "bucket"])
    df = df.reset_index(drop=True)
    for col in ("shop_id", "iphone_id", "price_new", "alignment_diff_sec"):
        df[col] = df[col].astype("int64")
    return df
