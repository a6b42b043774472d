"""Price assets: raw_price_records (PostgreSQL source) → price_aligned (ClickHouse)."""


import time

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    Config,
    DataVersion,
    MetadataValue,
    ObserveResult,
    asset,
    observable_source_asset,
)
from psycopg import sql
from pydantic import Field

from kline_assets.kernels.align import bucket_start_us, latest_per_bucket
from kline_assets.prices.keys import month_window, split_price_key
from kline_assets.prices.partitions import PARTITION_EXPR, price_partitions
from kline_assets.prices.runs import require_registered
from kline_assets.prices.schemas import PRICE_ALIGNED_SCHEMA
from kline_assets.prices.source import known_ids, read_records, screen_records
from kline_assets.resources import PostgresResource, TorchDeviceResource
from kline_assets.resources.device import describe_device
from kline_assets.settings import PRICE_TZ

OWNERS = ["team:pricing"]


@observable_source_asset(
    name="raw_price_records",
    group_name="prices",
    owners=OWNERS,
    description=(
        "Second-hand iPhone purchase prices scraped from 20+ shops about every 15 minutes. "
        "PostgreSQL table purchasing_shop_price_record, the source of truth, written by the "
        "scrapers outside this project. Observed: newest recorded_at and row count."
    ),
    metadata={"table": "purchasing_shop_price_record", "database": "postgresql"},
)
def raw_price_records(postgres: PostgresResource) -> ObserveResult:
    postgres.require_tables([postgres.price_table])
    with postgres.connect() as conn:
        newest, count = conn.execute(
            sql.SQL("SELECT max(recorded_at), count(*) FROM {}").format(
                sql.Identifier(*postgres.price_table.split("."))
            )
        ).fetchone()
    return ObserveResult(
        data_version=DataVersion(f"{newest}|{count}"),
        metadata={
            "row_count": MetadataValue.int(count),
            "newest_recorded_at": MetadataValue.text(str(newest)),
        },
    )


class PriceSubsetConfig(Config):
    """Restrict a run to some iPhones or shops (experiments); empty means all."""

    iphone_ids: list[int] = Field(default=[], description="only these iPhone ids")
    shop_ids: list[int] = Field(default=[], description="only these shop ids")


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


@asset(
    partitions_def=price_partitions,
    deps=[raw_price_records],
    io_manager_key="clickhouse_io_manager",
    group_name="prices",
    owners=OWNERS,
    kinds={"python", "postgres", "clickhouse"},
    description=(
        "Raw records aligned to 15-minute buckets (Asia/Tokyo, labelled by start): per shop, "
        "iPhone and bucket the latest record wins (ties: higher id). Rows with NULL or "
        "non-positive prices or unknown shop/iPhone ids are rejected and counted in metadata. "
        "Each (run_id, month) partition is replaced atomically in ClickHouse."
    ),
    metadata={"partition_expr": PARTITION_EXPR, "dagster/column_schema": PRICE_ALIGNED_SCHEMA},
)
def price_aligned(
    context: AssetExecutionContext,
    config: PriceSubsetConfig,
    postgres: PostgresResource,
    torch_device: TorchDeviceResource,
) -> pd.DataFrame:
    run_id, month = split_price_key(context.partition_key)
    require_registered(context.instance, run_id)
    start, end = month_window(month)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    table = read_records(postgres, start, end, config.iphone_ids, config.shop_ids)
    shops = known_ids(postgres, postgres.shop_table)
    iphones = known_ids(postgres, postgres.iphone_table)
    timings["read_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    screened = screen_records(table, shops, iphones)
    frame = build_price_aligned(screened.columns, run_id)
    timings["align_seconds"] = time.perf_counter() - t0

    kept = len(screened.columns["id"])
    metadata = {
        "run_id": run_id,
        "month": month,
        "rows_read": table.num_rows,
        "rows_rejected": screened.rejected_total,
        "rows_aligned": len(frame),
        "duplicates_collapsed": kept - len(frame),
        "grade_prices_set_null": screened.grade_nulled,
        "device": describe_device(torch_device.get()),
        **{k: round(v, 3) for k, v in timings.items()},
    }
    if screened.rejected:
        metadata["rejections"] = MetadataValue.json(screened.rejected)
        metadata["rejected_sample"] = MetadataValue.md(screened.sample.to_markdown(index=False))
        context.log.warning(f"{screened.rejected_total} source rows rejected: {screened.rejected}")
    if table.num_rows == 0:
        context.log.warning(f"no source records for {run_id} {month}: the partition is now empty")
    context.add_output_metadata(metadata)
    return frame
