"""One month of price_aligned: read (COPY) → screen → align, timed per stage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from kline_assets.kernels.align import bucket_start_us, latest_per_bucket
from kline_assets.prices.source import (
    IPHONE_TABLE,
    SHOP_TABLE,
    Screened,
    known_ids,
    read_records,
    screen_records,
)
from kline_assets.resources.postgres import PostgresResource
from kline_assets.settings import PRICE_TZ


@dataclass
class AlignedMonth:
    frame: pd.DataFrame
    screened: Screened
    metadata: dict[str, float | int]


def _nullable_uint32(values: np.ndarray) -> pd.arrays.IntegerArray:
    """-1 marks NULL (see screen_records)."""
    return pd.arrays.IntegerArray(np.where(values < 0, 0, values).astype(np.uint32), values < 0)


def build_price_aligned(columns: dict[str, np.ndarray], run_id: str) -> pd.DataFrame:
    """The price_aligned rows of screened records: one per (shop, iphone, bucket)."""
    winners = latest_per_bucket(
        columns["shop_id"], columns["iphone_id"], columns["recorded_us"], columns["id"]
    )
    recorded = columns["recorded_us"][winners]
    bucket = bucket_start_us(recorded)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "bucket": pd.to_datetime(bucket, unit="us", utc=True).tz_convert(PRICE_TZ),
            "shop_id": columns["shop_id"][winners].astype(np.uint32),
            "iphone_id": columns["iphone_id"][winners].astype(np.uint32),
            "price_new": columns["price_new"][winners].astype(np.uint32),
            "price_a": _nullable_uint32(columns["price_grade_a"][winners]),
            "price_b": _nullable_uint32(columns["price_grade_b"][winners]),
            "alignment_diff_sec": ((recorded - bucket) // 1_000_000).astype(np.int32),
            "record_time": pd.to_datetime(
                recorded // 1_000_000 * 1_000_000, unit="us", utc=True
            ).tz_convert(PRICE_TZ),
        }
    )


def align_month(
    postgres: PostgresResource,
    run_id: str,
    start: datetime,
    end: datetime,
    iphone_ids: list[int] | None = None,
    shop_ids: list[int] | None = None,
) -> AlignedMonth:
    t0 = time.perf_counter()
    table = read_records(postgres, start, end, iphone_ids, shop_ids)
    shops = known_ids(postgres, SHOP_TABLE)
    iphones = known_ids(postgres, IPHONE_TABLE)
    read_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    screened = screen_records(table, shops, iphones)
    frame = build_price_aligned(screened.columns, run_id)
    align_s = time.perf_counter() - t0
    kept = len(screened.columns["id"])
    return AlignedMonth(
        frame=frame,
        screened=screened,
        metadata={
            "rows_read": table.num_rows,
            "rows_rejected": screened.rejected_total,
            "rows_aligned": len(frame),
            "duplicates_collapsed": kept - len(frame),
            "grade_prices_set_null": screened.grade_nulled,
            "read_seconds": round(read_s, 3),
            "align_seconds": round(align_s, 3),
        },
    )
