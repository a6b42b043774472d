"""The run-id workflow in ClickHouse: list, drop and promote whole runs (compare: `compare`).

Every price table is partitioned by (run_id, month[, scope kind]), so a run is a set of
partitions and each operation works partition by partition:

* **drop** — `ALTER TABLE … DROP PARTITION ID` for each of the run's partitions: metadata
  only, milliseconds, no mutation.
* **promote** — copies a run onto another (normally `live`). Each source partition is first
  copied, deduplicated with FINAL and relabelled, into a staging table; only when every table
  is staged is each target partition swapped in with `REPLACE PARTITION … FROM staging`, which
  is atomic per partition: a reader sees the old month or the new one, never an empty or
  half-copied one. Partitions the target has and the source lacks (another month, or the
  other scope kind of features_wide in a month) are left as they are. Optionally the target
  is first copied, the same way, to a backup run id.
* **compare** — row counts, keys present in only one run, and max/mean absolute difference of
  every numeric column, per table and scope, computed in ClickHouse.

Partitions are read from `system.parts` (metadata only); its `partition` column holds the
partition tuple as a ClickHouse literal, e.g. `('live',202510,'iphone')`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from dagster import AssetMaterialization, DagsterInstance

from kline_assets.errors import InvalidRunIdError, KlineError
from kline_assets.months import key_of_yyyymm
from kline_assets.prices.partitions import LIVE, RUN_ID_DIMENSION, create_run, validate_run_id
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse.sql import (
    describe_columns,
    quote_literal,
    staging_table,
    swap_in,
)
from kline_assets.settings import PRICE_TZ

PRICE_TABLES = ("price_aligned", "cross_shop_agg", "features_wide")

# Per table: the scope expression and the key columns within a scope (FINAL makes keys unique).
SCOPE_EXPR = {
    "price_aligned": "concat('iphone:', toString(iphone_id))",
    "cross_shop_agg": "concat('iphone:', toString(iphone_id))",
    "features_wide": "scope",
}
KEYS = {
    "price_aligned": ("iphone_id", "shop_id", "bucket"),
    "cross_shop_agg": ("iphone_id", "bucket"),
    "features_wide": ("scope", "bucket"),
}


class RunOperationRefused(KlineError):
    """A run operation that would destroy data it was not told it may destroy."""


@dataclass(frozen=True)
class Partition:
    table: str
    id: str
    values: tuple
    rows: int

    @property
    def run_id(self) -> str:
        return str(self.values[0])


def _parse_partition(text: str) -> tuple:
    """`('live',202510,'iphone')` → ('live', 202510, 'iphone') (ClickHouse literal syntax)."""
    value = ast.literal_eval(text)
    return value if isinstance(value, tuple) else (value,)


def all_partitions(client: Client, db: str, tables: Iterable[str] = PRICE_TABLES
                    ) -> list[Partition]:
    names = ", ".join(quote_literal(t) for t in tables)
    rows = client.query(
        "SELECT table, partition_id, any(partition), sum(rows) FROM system.parts "
        f"WHERE database = {quote_literal(db)} AND table IN ({names}) AND active "
        "GROUP BY table, partition_id ORDER BY table, any(partition)"
    ).result_rows
    return [Partition(t, pid, _parse_partition(text), int(n)) for t, pid, text, n in rows]


def _partitions_of(client: Client, ch: ClickHouseResource, run_id: str,
                   tables: Iterable[str] = PRICE_TABLES) -> list[Partition]:
    return [p for p in all_partitions(client, ch.db, tables) if p.run_id == run_id]


def _runs_present(client: Client, ch: ClickHouseResource) -> list[str]:
    return sorted({p.run_id for p in all_partitions(client, ch.db)})


def require_data(client: Client, ch: ClickHouseResource, run_id: str, role: str
                  ) -> list[Partition]:
    parts = _partitions_of(client, ch, run_id)
    if not parts:
        present = ", ".join(_runs_present(client, ch)) or "none"
        raise InvalidRunIdError(
            f"{role} run {run_id!r} has no data in {ch.db} ({', '.join(PRICE_TABLES)}); "
            f"runs present: {present}"
        )
    return parts


def run_partitions(ch: ClickHouseResource, run_id: str) -> dict[str, list[tuple]]:
    """Per price table, the partition tuples of run_id, e.g. ('live', 202510, 'iphone')."""
    validate_run_id(run_id)
    with ch.client() as client:
        parts = _partitions_of(client, ch, run_id)
    return {t: [p.values for p in parts if p.table == t] for t in PRICE_TABLES}


def asset_partition(table: str, values: tuple, run_id: str) -> tuple[str, str]:
    """(asset name, Dagster partition key) of a table partition relabelled to run_id:
    ('features_wide', ('x', 202510, 'cohort')) → ('cohorts', '2025-10-01|<run_id>')."""
    asset = "cohorts" if table == "features_wide" and values[2:] == ("cohort",) else table
    return asset, f"{key_of_yyyymm(int(values[1]))}|{run_id}"


def list_runs(ch: ClickHouseResource) -> list[str]:
    """Run ids that have at least one partition in a price table."""
    with ch.client() as client:
        return _runs_present(client, ch)


def drop_run(ch: ClickHouseResource, run_id: str, allow_live: bool = False) -> dict[str, int]:
    """Drop every partition of run_id in every price table; returns partitions dropped per table.

    A run without data drops nothing (zero counts). `live` is refused unless allow_live.
    """
    validate_run_id(run_id)
    if run_id == LIVE and not allow_live:
        raise RunOperationRefused(
            f"refusing to drop {LIVE!r}, the production run; pass allow_live=True "
            "(`--allow-live`) if you really mean it"
        )
    dropped = dict.fromkeys(PRICE_TABLES, 0)
    with ch.client() as client:
        for part in _partitions_of(client, ch, run_id):
            client.command(
                f"ALTER TABLE {ch.table(part.table)} DROP PARTITION ID {quote_literal(part.id)}"
            )
            dropped[part.table] += 1
    return dropped


def _stage_copy(client: Client, ch: ClickHouseResource, parts: Sequence[Partition],
                target: str, stack: ExitStack) -> dict[str, tuple[str, list[tuple], int]]:
    """Copy `parts` (one run), deduplicated and relabelled to `target`, into staging tables
    that live as long as `stack`. Returns per table (staging table, target partition tuples,
    rows staged)."""
    out: dict[str, tuple[str, list[tuple], int]] = {}
    for table in PRICE_TABLES:
        mine = [p for p in parts if p.table == table]
        if not mine:
            continue
        full = ch.table(table)
        stage = stack.enter_context(staging_table(client, full, "promote"))
        cols = [name for name, _ in describe_columns(client, full) if name != "inserted_at"]
        select = ", ".join(f"{quote_literal(target)} AS run_id" if c == "run_id" else f"src.{c}"
                           for c in cols)
        ids = ", ".join(quote_literal(p.id) for p in mine)
        # Qualified names: ClickHouse resolves an unqualified `run_id` in WHERE to the SELECT
        # alias (the target), which would select nothing.
        client.command(
            f"INSERT INTO {stage} ({', '.join(cols)}) SELECT {select} FROM {full} AS src FINAL "
            f"WHERE src._partition_id IN ({ids}) AND src.run_id = {quote_literal(mine[0].run_id)}"
        )
        rows = int(client.command(f"SELECT count() FROM {stage}"))
        out[table] = (stage, [(target, *p.values[1:]) for p in mine], rows)
    return out


def _copy_run(client: Client, ch: ClickHouseResource, parts: Sequence[Partition], target: str
              ) -> dict[str, dict[str, int]]:
    """Stage every table first, then swap each target partition in (atomic per partition)."""
    with ExitStack() as stack:
        staged = _stage_copy(client, ch, parts, target, stack)
        for table, (stage, targets, _) in staged.items():
            swap_in(client, ch.table(table), stage, targets)
        return {t: {"partitions": len(targets), "rows": rows}
                for t, (_, targets, rows) in staged.items()}


def promote_run(ch: ClickHouseResource, source: str, target: str = LIVE,
                backup: str | None = None) -> dict:
    """Copy every partition of `source` onto `target`, optionally backing the target up first.

    Target partitions the source lacks stay untouched. With `backup`, the target's current
    partitions are first copied to the backup run id, which must not hold data yet (an older
    backup is never overwritten). Returns {"source", "target", "backup", "promoted",
    "backed_up"}, the last two per table {"partitions": n, "rows": n}.
    """
    for run_id in (source, target, *([] if backup is None else [backup])):
        validate_run_id(run_id)
    if source == target:
        raise InvalidRunIdError(f"source and target are the same run {source!r}")
    if backup is not None and backup in (source, target):
        raise InvalidRunIdError(f"backup run {backup!r} must differ from source and target")
    with ch.client() as client:
        source_parts = require_data(client, ch, source, "source")
        backed_up: dict[str, dict[str, int]] = {}
        if backup is not None:
            existing = _partitions_of(client, ch, backup)
            if existing:
                raise RunOperationRefused(
                    f"backup run {backup!r} already holds {len(existing)} partition(s); "
                    f"drop it first (`kline runs drop {backup}`) or promote without a backup"
                )
            target_parts = _partitions_of(client, ch, target)
            if target_parts:
                backed_up = _copy_run(client, ch, target_parts, backup)
        promoted = _copy_run(client, ch, source_parts, target)
    return {"source": source, "target": target, "backup": backup,
            "promoted": promoted, "backed_up": backed_up}




def backup_name(now: datetime | None = None) -> str:
    """backup_YYYYMMDD, today in Asia/Tokyo."""
    return (now or datetime.now(ZoneInfo(PRICE_TZ))).strftime("backup_%Y%m%d")


def report_promoted(instance: DagsterInstance, ch: ClickHouseResource, source: str,
                    target: str, via: str) -> int:
    """Runless materializations for every target partition a promote wrote, so the Dagster UI
    shows them as materialized; registers the target run id. Returns events reported."""
    create_run(instance, target)
    reported = 0
    for table, partitions in run_partitions(ch, source).items():
        for values in partitions:
            asset, key = asset_partition(table, values, target)
            instance.report_runless_asset_event(AssetMaterialization(
                asset_key=asset, partition=key, metadata={"promoted_from": source, "via": via}))
            reported += 1
    return reported


def unregister_run(instance: DagsterInstance, run_id: str) -> bool:
    """Remove a run id from the instance's partitions; False if it was not registered."""
    if not instance.has_dynamic_partition(RUN_ID_DIMENSION, run_id):
        return False
    instance.delete_dynamic_partition(RUN_ID_DIMENSION, run_id)
    return True
