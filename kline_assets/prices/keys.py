"""Turning a price partition key into a run id and a Tokyo month window."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from dagster import MultiPartitionKey

from kline_assets.errors import InvalidRunIdError
from kline_assets.prices.partitions import MONTH_DIMENSION, RUN_ID_DIMENSION, month_partitions
from kline_assets.prices.runs import validate_run_id


def split_price_key(key: str) -> tuple[str, str]:
    """(run_id, month key YYYY-MM-01) of "2025-10-01|live" or a MultiPartitionKey."""
    if isinstance(key, MultiPartitionKey):
        parts = key.keys_by_dimension
        run_id, month = parts[RUN_ID_DIMENSION], parts[MONTH_DIMENSION]
    else:
        pieces = str(key).split("|")
        if len(pieces) != 2:
            raise InvalidRunIdError(
                f"malformed price partition key {key!r}: expected 'YYYY-MM-01|run_id'"
            )
        month, run_id = pieces  # dimensions in alphabetical order: month, run_id
    return validate_run_id(run_id), month


def month_window(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a month partition, tz-aware in Asia/Tokyo."""
    window = month_partitions.time_window_for_partition_key(month)
    return window.start, window.end


def previous_month_start(start: datetime) -> datetime:
    """Start of the warm-up month before `start` (a month start in Asia/Tokyo)."""
    ts = pd.Timestamp(start)
    return (ts - pd.offsets.MonthBegin(1)).to_pydatetime()


def context_window(context) -> tuple[str, str, datetime, datetime]:
    """(run_id, first month key, start, end) of a run over one partition or a range of months.

    A range (a single-run backfill, or one long computation) must stay within one run id.
    """
    key_range = context.partition_key_range
    run_a, month_a = split_price_key(key_range.start)
    run_b, month_b = split_price_key(key_range.end)
    if run_a != run_b:
        raise InvalidRunIdError(
            f"a partition range must stay within one run id, got {run_a!r} … {run_b!r}"
        )
    return run_a, month_a, month_window(month_a)[0], month_window(month_b)[1]
