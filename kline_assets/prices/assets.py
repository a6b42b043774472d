"""Price assets: raw_price_records (PostgreSQL source) → price_aligned (ClickHouse)."""


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

from kline_assets.prices.aligned import align_month
from kline_assets.prices.keys import context_window
from kline_assets.prices.partitions import PARTITION_EXPR, price_partitions
from kline_assets.prices.runs import require_registered
from kline_assets.prices.schemas import PRICE_ALIGNED_SCHEMA
from kline_assets.resources import PostgresResource

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
) -> pd.DataFrame:
    run_id, month, start, end = context_window(context)
    require_registered(context.instance, run_id)
    aligned = align_month(postgres, run_id, start, end, config.iphone_ids, config.shop_ids)
    # Alignment is one NumPy lexsort: it runs on the CPU whatever KLINE_DEVICE says.
    metadata = {"run_id": run_id, "month": month, **aligned.metadata, "device": "cpu (numpy)"}
    screened = aligned.screened
    if screened.rejected:
        metadata["rejections"] = MetadataValue.json(screened.rejected)
        metadata["rejected_sample"] = MetadataValue.md(screened.sample.to_markdown(index=False))
        context.log.warning(f"{screened.rejected_total} source rows rejected: {screened.rejected}")
    if aligned.metadata["rows_read"] == 0:
        context.log.warning(f"no source records for {run_id} {month}: the partition is now empty")
    context.add_output_metadata(metadata)
    return aligned.frame
