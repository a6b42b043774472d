"""A real partition write into ClickHouse, run as its own process so a test can kill -9 it.

`python -m kline_assets_tests.support.clickhouse_writer DSN DATABASE ROWS` replaces
live/2025-10 of price_aligned with ROWS synthetic rows through the IO manager's own
`replace_partitions` (staging table → REPLACE PARTITION).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from kline_assets.resources import ClickHouseResource
from kline_assets.resources.clickhouse.sql import replace_partitions

PARTITION = ("live", 202510)


def aligned_rows(n: int, price: int = 100_000) -> pd.DataFrame:
    """`n` price_aligned rows of run `live`, all inside October 2025 (Asia/Tokyo)."""
    start = pd.Timestamp("2025-10-01", tz="Asia/Tokyo")
    buckets = start + pd.to_timedelta((np.arange(n) % 2976) * 15, unit="min")
    return pd.DataFrame({
        "run_id": "live",
        "bucket": buckets,
        "shop_id": (np.arange(n) // 2976 % 20 + 1).astype("uint32"),
        "iphone_id": (np.arange(n) // (2976 * 20) + 1).astype("uint32"),
        "price_new": np.full(n, price, dtype="uint32"),
        "price_a": pd.array([None] * n, dtype="UInt32"),
        "price_b": pd.array([None] * n, dtype="UInt32"),
        "alignment_diff_sec": np.zeros(n, dtype="int32"),
        "record_time": buckets,
    })


def write(dsn: str, database: str, n: int, price: int = 100_000) -> None:
    clickhouse = ClickHouseResource(dsn=dsn, database=database)
    with clickhouse.client() as client:
        replace_partitions(client, clickhouse.table("price_aligned"), aligned_rows(n, price),
                           [PARTITION])


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], int(sys.argv[3]), price=int(sys.argv[4]))
