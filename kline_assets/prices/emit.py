"""Whether a computed price partition is materialized: a month without data emits nothing.

Dagster shows a partition as materialized as soon as its asset emits an output, so an empty
month would look green beside the months that hold data. A price asset therefore yields its
output only when it has rows, or when the store still holds rows of the partition that the
empty result must clear (that is a real change, recorded with `cleared_rows`). Otherwise the
run logs why and emits nothing: the partition stays missing and, in the same run, the
downstream assets are skipped (there is nothing for them to compute either).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pandas as pd
from dagster import AssetExecutionContext, Output

from kline_assets.months import MonthWindow
from kline_assets.prices.warmup import stored_rows
from kline_assets.resources import ClickHouseResource


def emit_unless_empty(
    context: AssetExecutionContext, clickhouse: ClickHouseResource, frame: pd.DataFrame, *,
    table: str, run_id: str, start: datetime, end: datetime, where: str = "1",
) -> Iterator[Output[pd.DataFrame]]:
    """Yield `frame` as the asset's output unless it is empty and there is nothing to clear."""
    if not frame.empty:
        yield Output(frame)
        return
    stale = stored_rows(clickhouse, table, run_id, start, end, where)
    if stale:
        context.log.warning(
            f"{context.asset_key.to_user_string()} of run {run_id}, "
            f"{MonthWindow(start.replace(tzinfo=None), end.replace(tzinfo=None)).label}: "
            "no rows computed; "
            f"clearing the {stale} rows stored by an earlier materialization")
        yield Output(frame, metadata={"cleared_rows": stale})
        return
    say_nothing_materialized(context, run_id, start, end)


def say_nothing_materialized(context: AssetExecutionContext, run_id: str, start: datetime,
                             end: datetime) -> None:
    """Log why the run emits nothing for the asset (the partition bars stay as they were)."""
    window = MonthWindow(start.replace(tzinfo=None), end.replace(tzinfo=None)).label
    context.log.info(
        f"{context.asset_key.to_user_string()} of run {run_id}, {window}: no data, so nothing "
        "is materialized (the partition stays missing; downstream assets are skipped)")
