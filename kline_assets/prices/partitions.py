"""run_id × month partitions of every price asset: definitions, keys and run-id rules.

`live` is production; `backfill_YYYYMMDD_vN` are experiments beside it. A run id is a dynamic
partition of the Dagster instance. Key strings list dimension values in alphabetical order of
dimension name: "2025-10-01|live" is month 2025-10 of run `live`.
"""

from __future__ import annotations

import re
from datetime import datetime

from dagster import (
    DagsterInstance,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
)

from kline_assets.lib.errors import InvalidRunIdError
from kline_assets.lib.months import add_months, month_key, month_window, parse_month
from kline_assets.lib.settings import PRICE_TZ

RUN_ID_DIMENSION = "run_id"
MONTH_DIMENSION = "month"
PRICE_START = "2025-01-01"
LIVE = "live"
# [a-z0-9_] also keeps Dagster's key separators (`|`, `,`, `[`, `]`) out of run ids.
RUN_ID_PATTERN = re.compile(r"[a-z0-9_]{1,64}")
BACKUP_PATTERN = re.compile(r"backup_(\d{8})(?:_(\d+))?")
"""What a promote names the backups it takes: backup_YYYYMMDD[_N]."""

FIRST_MONTH_START = month_window(PRICE_START, PRICE_TZ)[0]

run_id_partitions = DynamicPartitionsDefinition(name=RUN_ID_DIMENSION)
# end_offset=1: the month in progress is a partition too, so `live` can stay current.
month_partitions = MonthlyPartitionsDefinition(
    start_date=PRICE_START, timezone=PRICE_TZ, end_offset=1
)
price_partitions = MultiPartitionsDefinition(
    {RUN_ID_DIMENSION: run_id_partitions, MONTH_DIMENSION: month_partitions}
)

# The partition expression of every price table: which column holds each dimension.
PARTITION_EXPR = {RUN_ID_DIMENSION: "run_id", MONTH_DIMENSION: "bucket"}

# Same run, same month. The warm-up month (the month before) is read by the asset body from
# the store, not through this mapping: a `month − 1` mapping would make every month a parent of
# the next one, so an asset backfill of one month would also target the months after it
# (Dagster follows mappings downstream) and mark them materialized. The warm-up guard
# (warmup.check_warmup) refuses a month whose warm-up is missing instead.
same_month = MultiPartitionMapping(
    {
        RUN_ID_DIMENSION: DimensionPartitionMapping(RUN_ID_DIMENSION, IdentityPartitionMapping()),
        MONTH_DIMENSION: DimensionPartitionMapping(MONTH_DIMENSION, IdentityPartitionMapping()),
    }
)


def validate_run_id(run_id: str) -> str:
    """The run id itself, or InvalidRunIdError: the whole string must match (no newline)."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidRunIdError(
            f"malformed run id {run_id!r}: use 1–64 characters of [a-z0-9_] "
            "(e.g. live, backfill_20251101_v3)"
        )
    return run_id


def run_kind(run_id: str) -> str:
    """`live`, `backup`, `invalid` (a malformed id that got in, e.g. typed into the UI) or
    `run` (an experiment)."""
    if run_id == LIVE:
        return "live"
    if not RUN_ID_PATTERN.fullmatch(run_id):
        return "invalid"
    return "backup" if BACKUP_PATTERN.fullmatch(run_id) else "run"


def price_partition_key(run_id: str, month: str) -> MultiPartitionKey:
    """The key of `month` (YYYY-MM or YYYY-MM-01) of `run_id`."""
    return MultiPartitionKey({RUN_ID_DIMENSION: validate_run_id(run_id),
                              MONTH_DIMENSION: month_key(parse_month(month))})


def split_price_key(key: str | MultiPartitionKey) -> tuple[str, str]:
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
    try:
        month = month_key(parse_month(month))
    except ValueError as exc:
        raise InvalidRunIdError(f"malformed price partition key {key!r}: {exc}") from exc
    return validate_run_id(run_id), month


def price_month_window(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a price month, tz-aware in Asia/Tokyo."""
    return month_window(month, PRICE_TZ)


def previous_month_start(start: datetime) -> datetime:
    """Start of the warm-up month before `start` (a month start in Asia/Tokyo)."""
    return add_months(start, -1)


def registered_run_ids(instance: DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(RUN_ID_DIMENSION))


def require_registered(instance: DagsterInstance, run_id: str) -> str:
    if not instance.has_dynamic_partition(RUN_ID_DIMENSION, validate_run_id(run_id)):
        known = ", ".join(registered_run_ids(instance)) or "none"
        raise InvalidRunIdError(
            f"run id {run_id!r} is not registered (known: {known}); "
            f"register it with `kline runs create {run_id}`"
        )
    return run_id


def create_run(instance: DagsterInstance, run_id: str) -> bool:
    """Register a run id; returns False if it already existed (idempotent)."""
    if instance.has_dynamic_partition(RUN_ID_DIMENSION, validate_run_id(run_id)):
        return False
    instance.add_dynamic_partitions(RUN_ID_DIMENSION, [run_id])
    return True


def context_window(context) -> tuple[str, str, datetime, datetime]:
    """(run_id, first month key, start, end) of a run over one partition or a range of months.

    The run id is validated and must be registered. A range (a single-run backfill, or one
    long computation) must stay within one run id.
    """
    key_range = context.partition_key_range
    run_a, month_a = split_price_key(key_range.start)
    run_b, month_b = split_price_key(key_range.end)
    if run_a != run_b:
        raise InvalidRunIdError(
            f"a partition range must stay within one run id, got {run_a!r} … {run_b!r}: "
            "Dagster puts several run ids into one backfill run when they share the same "
            "months; launch one backfill per run id"
        )
    require_registered(context.instance, run_a)
    return run_a, month_a, price_month_window(month_a)[0], price_month_window(month_b)[1]
