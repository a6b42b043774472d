"""Asset checks of the price tables, run on the materialized partition in ClickHouse."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from kline_assets.prices.assets import price_aligned
from kline_assets.prices.partitions import price_month_window, price_partitions, split_price_key
from kline_assets.resources import ClickHouseResource
from kline_assets.resources.clickhouse.sql import time_range_where, values_where


def partition_filter(partition_key: str) -> str:
    """WHERE clause of one (run_id, month) partition of a price table."""
    run_id, month = split_price_key(partition_key)
    return (f"{values_where('run_id', [run_id])} AND "
            f"{time_range_where('bucket', *price_month_window(month))}")


@asset_check(
    asset=price_aligned,
    partitions_def=price_partitions,
    blocking=True,
    description="Exactly one row per (shop, iPhone, bucket) in the partition.",
)
def price_aligned_unique(
    context: AssetCheckExecutionContext, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    with clickhouse.client() as client:
        rows, distinct = client.query(
            f"SELECT count(), uniqExact(shop_id, iphone_id, bucket) "
            f"FROM {clickhouse.table('price_aligned')} FINAL "
            f"WHERE {partition_filter(context.partition_key)}"
        ).result_rows[0]
    return AssetCheckResult(
        passed=rows == distinct,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": rows, "distinct_keys": distinct, "duplicates": rows - distinct},
    )


@asset_check(
    asset=price_aligned,
    partitions_def=price_partitions,
    description="Every record lies in its bucket: 0 ≤ alignment_diff_sec < 900.",
)
def price_aligned_in_bucket(
    context: AssetCheckExecutionContext, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    with clickhouse.client() as client:
        bad = client.query(
            f"SELECT count() FROM {clickhouse.table('price_aligned')} FINAL "
            f"WHERE {partition_filter(context.partition_key)} AND (alignment_diff_sec < 0 "
            f"OR alignment_diff_sec >= 900 OR toStartOfFifteenMinutes(record_time) != bucket)"
        ).result_rows[0][0]
    return AssetCheckResult(passed=bad == 0, metadata={"rows_outside_bucket": bad})


price_aligned_checks = [price_aligned_unique, price_aligned_in_bucket]
