"""The warm-up of a month: the previous month of the same run, read before computing.

Features need history (EMA state, the last w−1 inputs, forward-fill carries), so a month is
computed on the previous month plus itself. A month whose warm-up month holds source records
that the run never materialized would silently differ from one long computation: that is
refused with the partition to materialize first, unless the run asks for a cold start.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from kline_assets.lib.errors import KlineError
from kline_assets.lib.months import month_key
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.partitions import FIRST_MONTH_START
from kline_assets.prices.source import has_records
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import read_frame, time_range_where, values_where


def last_means_before(
    clickhouse: ClickHouseResource, run_id: str, before: datetime
) -> pd.DataFrame:
    """Per iPhone, its last non-NULL cross-shop mean before `before`: (iphone_id, bucket, mean).

    Seeds the forward fill at the warm-up edge, so a month computed alone carries a price set
    long before its warm-up month exactly as one long computation would.
    """
    with clickhouse.client() as client:
        df = client.query_df(
            "SELECT iphone_id, toUnixTimestamp(max(bucket)) AS ts, "
            "argMax(mean, bucket) AS last_mean "
            f"FROM {clickhouse.table('cross_shop_agg')} FINAL "
            f"WHERE run_id = {{run:String}} AND bucket < toDateTime({int(before.timestamp())}) "
            f"AND mean IS NOT NULL GROUP BY iphone_id",
            parameters={"run": run_id}, settings=cl.reads(),
        )
    return pd.DataFrame({
        "iphone_id": df["iphone_id"].astype(np.int64) if len(df) else pd.Series(dtype=np.int64),
        "ts": df["ts"].astype(np.int64) if len(df) else pd.Series(dtype=np.int64),
        "mean": df["last_mean"].astype(np.float64) if len(df) else pd.Series(dtype=np.float64),
    })


def cohort_seeds(last: pd.DataFrame, members: pd.DataFrame) -> pd.Series:
    """slug → weighted mean of the members whose data is at the cohort's last bucket."""
    joined = members.merge(last, on="iphone_id")
    if joined.empty:
        return pd.Series(dtype=np.float64)
    at_last = joined[joined["ts"] == joined.groupby("slug")["ts"].transform("max")]
    weighted = (at_last["mean"] * at_last["weight"]).groupby(at_last["slug"]).sum()
    return weighted / at_last.groupby("slug")["weight"].sum()


def _window_stats(clickhouse: ClickHouseResource, table: str, run_id: str,
                  start: datetime, end: datetime, where: str = "1") -> tuple[int, int | None]:
    """(rows, epoch of the last bucket) of the run's rows of `table` in [start, end)."""
    with clickhouse.client() as client:
        count, ts = client.query(
            f"SELECT count(), toUnixTimestamp(max(bucket)) FROM {clickhouse.table(table)} "
            f"WHERE run_id = {{run:String}} AND {time_range_where('bucket', start, end)} "
            f"AND ({where})",
            parameters={"run": run_id}, settings=cl.reads(),
        ).result_rows[0]
    return int(count), (int(ts) if count else None)


def stored_rows(clickhouse: ClickHouseResource, table: str, run_id: str,
                start: datetime, end: datetime, where: str = "1") -> int:
    """Rows the run holds in `table` over [start, end) (optionally narrowed by `where`)."""
    return _window_stats(clickhouse, table, run_id, start, end, where)[0]


def with_warm_up(clickhouse: ClickHouseResource, table: str, frame: pd.DataFrame,
                 run_id: str, warm_start: datetime, start: datetime) -> pd.DataFrame:
    """The run's rows of `table` in the warm-up month [warm_start, start), then `frame`.

    The asset's input covers its own months only (same-month partition mapping, so a one-month
    backfill stays one month); the warm-up month is read here, from the same table and with
    the same column types as the input.
    """
    with clickhouse.client() as client:
        warm = read_frame(client, clickhouse.table(table),
                          f"{values_where('run_id', [run_id])} AND "
                          f"{time_range_where('bucket', warm_start, start)}",
                          columns=list(frame.columns))
    if warm.empty:
        return frame
    if frame.empty:
        return warm.reset_index(drop=True)
    return pd.concat([warm, frame], ignore_index=True)


def last_bucket_with_source(
    clickhouse: ClickHouseResource, run_id: str, start: datetime, end: datetime
) -> pd.Timestamp | None:
    """The last bucket in [start, end) that holds any price_aligned record of the run."""
    _, ts = _window_stats(clickhouse, "price_aligned", run_id, start, end)
    return None if ts is None else pd.Timestamp(ts, unit="s", tz="UTC").tz_convert(PRICE_TZ)


class MissingWarmupError(KlineError):
    """The warm-up month has source data the run has not materialized."""


def check_warmup(
    clickhouse: ClickHouseResource, postgres: PostgresResource, *, asset: str, input_table: str,
    run_id: str, warm_start: datetime, start: datetime, cold_start: bool,
) -> str:
    """A line for metadata saying which warm-up was used; raises MissingWarmupError when the
    warm-up month has source records but the run's `input_table` has none there."""
    label = month_key(warm_start)[:7]
    if warm_start < FIRST_MONTH_START:
        return f"none: {label} is before the first price partition"
    rows, _ = _window_stats(clickhouse, input_table, run_id, warm_start, start)
    if rows:
        return f"{label} of run {run_id} ({rows} {input_table} rows)"
    if not has_records(postgres, warm_start, start):
        return f"none: no source records in {label}"
    if cold_start:
        return f"cold start: {label} has source records but {input_table} of {run_id} is empty"
    raise MissingWarmupError(
        f"{asset} needs its warm-up month: {input_table} of run {run_id!r} has no rows in "
        f"{label} while the source does. Materialize partition '{month_key(warm_start)}|"
        f"{run_id}' first (or set cold_start: true in the run config to compute without it)."
    )
