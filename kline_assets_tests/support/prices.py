"""Price-domain test helpers: a small catalogue and hand-built raw records."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa

from kline_assets.prices.source import PRICE_TABLE
from kline_assets.resources import PostgresResource
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
