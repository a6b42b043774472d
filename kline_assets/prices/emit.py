"""Whether a computed price partition is materialized, and with which metadata.

Dagster shows a partition as materialized as soon as its asset emits an output, so an empty
month would look green beside the months that hold data. A price asset therefore yields its
output only when it has rows, or when the store still holds rows of the partition that the
empty result must clear (that is a real change, recorded with `cleared_rows`). Otherwise the
run logs why and emits nothing: the partition stays missing and, in the same run, the
downstream assets are skipped (there is nothing for them to compute either).

A run over a range of months (a single-run backfill) computes and writes the range in one
pass, but Dagster would record its one output as a materialization of every month of the
range, each carrying the whole range's metadata, the months without data included. Such a run
reports its months itself: the output carries Dagster's marker for an asset that logs its own
events (the one Dagster's source-asset observations use), so Dagster records no event for it,
and once the write has succeeded the asset yields one AssetMaterialization per month that holds
rows (or whose stale rows it cleared), with that month's row count and partition. A month
without data gets none, and says so in the log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import pairwise

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetMaterialization, Output
from dagster._core.definitions.partitions.utils.multi import get_tags_from_multi_partition_key
from dagster._core.definitions.source_asset import SYSTEM_METADATA_KEY_SOURCE_ASSET_OBSERVATION
from dagster._core.storage.tags import BACKFILL_ID_TAG

from kline_assets.lib.months import MonthWindow, add_months, month_key, yyyymm
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.partitions import price_partition_key
from kline_assets.prices.warmup import stored_rows
from kline_assets.resources import ClickHouseResource
from kline_assets.resources.clickhouse import FrameStream

# Dagster records no asset event for an output carrying this key: the asset logs its own.
EVENTS_LOGGED_BY_THE_ASSET = {SYSTEM_METADATA_KEY_SOURCE_ASSET_OBSERVATION: True}


def emit_unless_empty(
    context: AssetExecutionContext, clickhouse: ClickHouseResource,
    value: pd.DataFrame | FrameStream, *, table: str, run_id: str, start: datetime,
    end: datetime, where: str = "1",
) -> Iterator[Output | AssetMaterialization]:
    """Yield `value` as the asset's output unless it is empty and there is nothing to clear;
    over a range of months, one materialization per month that holds data."""
    if not context.has_partition_key:
        yield from _emit_by_month(context, clickhouse, value, table=table, run_id=run_id,
                                  start=start, end=end, where=where)
        return
    if isinstance(value, FrameStream) or not value.empty:
        yield Output(value)
        return
    stale = stored_rows(clickhouse, table, run_id, start, end, where)
    if stale:
        context.log.warning(
            f"{context.asset_key.to_user_string()} of run {run_id}, {_label(start, end)}: "
            f"no rows computed; clearing the {stale} rows stored by an earlier materialization")
        yield Output(value, metadata={"cleared_rows": stale})
        return
    say_nothing_materialized(context, run_id, start, end)


def say_nothing_materialized(context: AssetExecutionContext, run_id: str, start: datetime,
                             end: datetime) -> None:
    """Log why the run emits nothing for the asset (the partition bars stay as they were)."""
    context.log.info(
        f"{context.asset_key.to_user_string()} of run {run_id}, {_label(start, end)}: no data, "
        "so nothing is materialized (the partition stays missing; downstream assets are "
        "skipped)")


def _label(start: datetime, end: datetime) -> str:
    return MonthWindow(start.replace(tzinfo=None), end.replace(tzinfo=None)).label


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The month starts of [start, end), and `end` last: the edges of the range's months."""
    edges = [start]
    while edges[-1] < end:
        edges.append(add_months(edges[-1], 1))
    return edges


def rows_per_month(buckets: pd.Series, edges: list[datetime]) -> np.ndarray:
    """How many of `buckets` fall in each month between consecutive `edges`."""
    index = pd.DatetimeIndex(buckets)
    if index.tz is None:
        index = index.tz_localize(PRICE_TZ)
    ns = index.as_unit("ns").asi8
    bounds = np.array([pd.Timestamp(e).as_unit("ns").value for e in edges], dtype=np.int64)
    month = np.searchsorted(bounds, ns, side="right") - 1
    return np.bincount(month[(month >= 0) & (month < len(edges) - 1)],
                       minlength=len(edges) - 1)


def _emit_by_month(
    context: AssetExecutionContext, clickhouse: ClickHouseResource,
    value: pd.DataFrame | FrameStream, *, table: str, run_id: str, start: datetime,
    end: datetime, where: str,
) -> Iterator[Output | AssetMaterialization]:
    edges = month_starts(start, end)
    months = list(pairwise(edges))
    stale = [stored_rows(clickhouse, table, run_id, a, b, where) for a, b in months]
    if isinstance(value, pd.DataFrame) and value.empty and not any(stale):
        say_nothing_materialized(context, run_id, start, end)
        return
    counts: Counter[int] = Counter()

    def counted(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            for i, n in enumerate(rows_per_month(frame["bucket"], edges)):
                counts[i] += int(n)
            yield frame

    source = value if isinstance(value, FrameStream) else FrameStream([value])
    stream = FrameStream(counted(source.frames), source.summary)
    shared = dict(context.get_output_metadata("result") or {})
    yield Output(stream, metadata=EVENTS_LOGGED_BY_THE_ASSET)
    # Reached once the IO manager has written the whole range.
    written = stream.written
    replaced = str(written.get("partitions_replaced", "")).split(", ")
    backfill = context.run.tags.get(BACKFILL_ID_TAG)
    for i, (month_start, month_end) in enumerate(months):
        rows = counts[i]
        if not rows and not stale[i]:
            say_nothing_materialized(context, run_id, month_start, month_end)
            continue
        month = month_key(month_start.replace(tzinfo=None))
        partition = price_partition_key(run_id, month)
        metadata = {
            **shared, **written, "month": month[:7], "rows": rows, "dagster/row_count": rows,
            "partitions_replaced": ", ".join(
                p for p in replaced if str(yyyymm(month_start)) in p.split("/")),
            "computed_with": (f"{_label(start, end)} in one run: timings and rejections are "
                              "the whole range's"),
        }
        if not rows:
            metadata["cleared_rows"] = stale[i]
            context.log.warning(
                f"{context.asset_key.to_user_string()} of run {run_id}, {month[:7]}: no rows "
                f"computed; cleared the {stale[i]} rows stored by an earlier materialization")
        tags = dict(get_tags_from_multi_partition_key(partition))
        if backfill:
            tags[BACKFILL_ID_TAG] = backfill
        yield AssetMaterialization(asset_key=context.asset_key, partition=partition,
                                   metadata=metadata, tags=tags)
