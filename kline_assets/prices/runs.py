"""Run ids: `live` is production, `backfill_YYYYMMDD_vN` are experiments beside it.

A run id is a dynamic partition of the Dagster instance. The contract allows
`[a-z0-9_]{1,64}`, which also keeps Dagster's key separators (`|`, `,`, `[`, `]`) out.
"""

from __future__ import annotations

import re

from dagster import DagsterInstance

from kline_assets.errors import InvalidRunIdError
from kline_assets.prices.partitions import RUN_ID_DIMENSION

RUN_ID_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
LIVE = "live"


def validate_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id or ""):
        raise InvalidRunIdError(
            f"malformed run id {run_id!r}: use 1–64 characters of [a-z0-9_] "
            "(e.g. live, backfill_20251101_v3)"
        )
    return run_id


def registered_run_ids(instance: DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(RUN_ID_DIMENSION))


def require_registered(instance: DagsterInstance, run_id: str) -> str:
    validate_run_id(run_id)
    if not instance.has_dynamic_partition(RUN_ID_DIMENSION, run_id):
        known = ", ".join(registered_run_ids(instance)) or "none"
        raise InvalidRunIdError(
            f"run id {run_id!r} is not registered (known: {known}); "
            f"register it with `kline runs create {run_id}`"
        )
    return run_id


def create_run(instance: DagsterInstance, run_id: str) -> bool:
    """Register a run id; returns False if it already existed (idempotent)."""
    validate_run_id(run_id)
    if instance.has_dynamic_partition(RUN_ID_DIMENSION, run_id):
        return False
    instance.add_dynamic_partitions(RUN_ID_DIMENSION, [run_id])
    return True
