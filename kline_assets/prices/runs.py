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

Partitions are read from `system.parts` (metadata only, `prices.tables`); which runs hold
data, for people, is `prices.read.runs`.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from dagster import AssetMaterialization, DagsterInstance

from kline_assets.lib.errors import InvalidRunIdError, KlineError
from kline_assets.lib.months import key_of_yyyymm
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.partitions import (
    BACKUP_PATTERN,
    LIVE,
    RUN_ID_DIMENSION,
    create_run,
    validate_run_id,
)
from kline_assets.prices.tables import (
    PRICE_ASSETS,
    PRICE_TABLES,
    Partition,
    all_partitions,
    run_ids_present,
)
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import (
    create_staging,
    describe_columns,
    drop_table,
    quote_literal,
    swap_in,
    sweep_stale_staging,
)

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


def _partitions_of(client: Client, ch: ClickHouseResource, run_id: str,
                   tables: Iterable[str] = PRICE_TABLES) -> list[Partition]:
    return [p for p in all_partitions(client, ch.db, tables) if p.run_id == run_id]


def _runs_present(client: Client, ch: ClickHouseResource) -> list[str]:
    return run_ids_present(client, ch.db)


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
                f"ALTER TABLE {ch.table(part.table)} DROP PARTITION ID {quote_literal(part.id)}",
                settings=cl.alter_settings(cl.cluster_name()),
            )
            dropped[part.table] += 1
    return dropped


# A test-only hook: KLINE_TEST_PAUSE_AT=<point> makes the process announce the point on stderr
# and wait there, so a test can kill it deterministically between two steps of a promote.
PAUSE_ENV = "KLINE_TEST_PAUSE_AT"
# Called at every point (tests in the same process use it to read between two swaps).
checkpoint_hook: Callable[[str], None] | None = None
RESUME_WITHIN_HOURS = 24


def _checkpoint(point: str) -> None:
    if checkpoint_hook is not None:
        checkpoint_hook(point)
    if os.environ.get(PAUSE_ENV) == point:
        print(f"paused at {point}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def _stage_copy(ch: ClickHouseResource, parts: Sequence[Partition], target: str,
                stack: ExitStack) -> dict[str, tuple[str, list[tuple], int]]:
    """Copy `parts` (one run), deduplicated and relabelled to `target`, into staging tables
    dropped when `stack` closes. Returns per table (staging table, target partition tuples,
    rows staged)."""
    out: dict[str, tuple[str, list[tuple], int]] = {}
    with ch.client() as client:
        for table in PRICE_TABLES:
            mine = [p for p in parts if p.table == table]
            if not mine:
                continue
            full = ch.table(table)
            stage = create_staging(client, full, "promote")
            stack.callback(_drop_table, ch, stage)
            cols = [name for name, _ in describe_columns(client, full) if name != "inserted_at"]
            select = ", ".join(f"{quote_literal(target)} AS run_id" if c == "run_id"
                               else f"src.{c}" for c in cols)
            ids = ", ".join(quote_literal(p.id) for p in mine)
            # Qualified names: ClickHouse resolves an unqualified `run_id` in WHERE to the
            # SELECT alias (the target), which would select nothing.
            client.command(
                f"INSERT INTO {stage} ({', '.join(cols)}) SELECT {select} FROM {full} AS src "
                f"FINAL WHERE src._partition_id IN ({ids}) "
                f"AND src.run_id = {quote_literal(mine[0].run_id)}",
                settings=cl.insert_select_settings(cl.cluster_name()),
            )
            rows = int(client.command(f"SELECT count() FROM {stage}",
                                      settings=cl.reads()))
            out[table] = (stage, [(target, *p.values[1:]) for p in mine], rows)
    return out


def _drop_table(ch: ClickHouseResource, name: str) -> None:
    with ch.client() as client:
        drop_table(client, name)


def _copy_run(ch: ClickHouseResource, parts: Sequence[Partition], target: str, phase: str
              ) -> dict[str, dict[str, int]]:
    """Stage every table first, then swap each target partition in (atomic per partition).

    Each swap opens the store on its own, so readers (in embedded mode: other threads and
    processes waiting for the engine) get their turn between two swaps of a long promote.
    """
    with ExitStack() as stack:
        staged = _stage_copy(ch, parts, target, stack)
        swaps = 0
        for table, (stage, targets, _) in staged.items():
            for partition in targets:
                with ch.client() as client:
                    swap_in(client, ch.table(table), stage, [partition])
                swaps += 1
                _checkpoint(f"{phase}:swap:{swaps}")
        return {t: {"partitions": len(targets), "rows": rows}
                for t, (_, targets, rows) in staged.items()}


def _journal(client: Client, ch: ClickHouseResource, promote_id: str, source: str,
             target: str, backup: str, phase: str) -> None:
    client.command(
        f"INSERT INTO {ch.table('promote_journal')} (id, source, target, backup, phase) VALUES "
        f"({', '.join(quote_literal(v) for v in (promote_id, source, target, backup, phase))})",
        settings=cl.writes())


def _unfinished_promote(client: Client, ch: ClickHouseResource, source: str, target: str
                        ) -> tuple[str, str, str] | None:
    """(id, backup, last phase) of the newest promote of source → target that never finished,
    begun within RESUME_WITHIN_HOURS: an older one is not "the same promote" any more (the
    target has moved on since), so a new promote takes a fresh backup."""
    rows = client.query(
        f"SELECT id, any(backup), argMax(phase, at) AS last, max(at) AS t "
        f"FROM {ch.table('promote_journal')} WHERE source = {quote_literal(source)} "
        f"AND target = {quote_literal(target)} GROUP BY id HAVING last != 'done' "
        f"AND min(at) > now64(3) - INTERVAL {RESUME_WITHIN_HOURS} HOUR "
        "ORDER BY t DESC LIMIT 1", settings=cl.reads()).result_rows
    return tuple(rows[0][:3]) if rows else None


def _free_backup_name(client: Client, ch: ClickHouseResource, base: str) -> str:
    """`base` when it holds no data, else the first free `base_2`, `base_3`, …"""
    taken = set(_runs_present(client, ch))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return validate_run_id(name)


def promote_run(ch: ClickHouseResource, source: str, target: str = LIVE,
                backup: str | None = None) -> dict:
    """Copy every partition of `source` onto `target`, optionally backing the target up first.

    Target partitions the source lacks stay untouched. With `backup` (a name such as
    backup_20251121), the target's current partitions are first copied to a backup run id:
    `backup` itself when it holds no data, else `backup_2`, `backup_3`, … (an older backup is
    never overwritten). Every step is journalled, so a promote killed at any point converges
    when re-run: the unfinished promote's backup is reused (redone if the kill came while
    it was being written — the target was untouched then), never a second one taken of a
    half-promoted target. Returns {"source", "target", "backup" (the name used, or None),
    "resumed", "promoted", "backed_up"}, the last two per table {"partitions", "rows"}.
    """
    for run_id in (source, target, *([] if backup is None else [backup])):
        validate_run_id(run_id)
    if source == target:
        raise InvalidRunIdError(f"source and target are the same run {source!r}")
    if backup is not None and backup in (source, target):
        raise InvalidRunIdError(f"backup run {backup!r} must differ from source and target")
    with ch.client() as client:
        ch.ensure_schema(client)
        sweep_stale_staging(client, ch.db)  # e.g. those of a promote killed half-way
        source_parts = require_data(client, ch, source, "source")
        unfinished = _unfinished_promote(client, ch, source, target)
        promote_id, backup_id, phase = unfinished or (uuid.uuid4().hex, "", "")
        if backup is not None and not backup_id:
            backup_id = _free_backup_name(client, ch, backup)
        target_parts = _partitions_of(client, ch, target)
        if unfinished is None:
            _journal(client, ch, promote_id, source, target, backup_id, "started")
    backed_up: dict[str, dict[str, int]] = {}
    if backup_id and phase in ("", "started"):
        # The target is as it was before this promote: (re)take the backup from it.
        if target_parts:
            backed_up = _copy_run(ch, target_parts, backup_id, "backup")
        with ch.client() as client:
            _journal(client, ch, promote_id, source, target, backup_id, "backed_up")
    _checkpoint("backed_up")
    promoted = _copy_run(ch, source_parts, target, "promote")
    with ch.client() as client:
        _journal(client, ch, promote_id, source, target, backup_id, "done")
        made = backup_id and backup_id in _runs_present(client, ch)
    return {"source": source, "target": target, "backup": backup_id if made else None,
            "resumed": unfinished is not None, "promoted": promoted, "backed_up": backed_up}


def backups(ch: ClickHouseResource) -> list[str]:
    """Backup run ids holding data, oldest first (by date, then suffix)."""
    def order(name: str) -> tuple[str, int]:
        match = BACKUP_PATTERN.fullmatch(name)
        assert match is not None
        return match.group(1), int(match.group(2) or 1)

    return sorted((r for r in list_runs(ch) if BACKUP_PATTERN.fullmatch(r)), key=order)


def prune_backups(ch: ClickHouseResource, keep: int) -> list[str]:
    """Drop all but the newest `keep` backups; returns the run ids dropped."""
    if keep < 0:
        raise KlineError(f"--keep-backups must be ≥ 0, got {keep}")
    old = backups(ch)
    old = old[:max(len(old) - keep, 0)]
    for run_id in old:
        drop_run(ch, run_id)
    return old


def backup_name(now: datetime | None = None) -> str:
    """backup_YYYYMMDD, today in Asia/Tokyo."""
    return (now or datetime.now(ZoneInfo(PRICE_TZ))).strftime("backup_%Y%m%d")


def promoted_materializations(ch: ClickHouseResource, source: str, target: str, via: str
                              ) -> list[AssetMaterialization]:
    """One materialization per target partition a promote of `source` wrote."""
    return [
        AssetMaterialization(asset_key=asset, partition=key,
                             metadata={"promoted_from": source, "via": via})
        for table, partitions in run_partitions(ch, source).items()
        for asset, key in (asset_partition(table, values, target) for values in partitions)
    ]


def report_promoted(instance: DagsterInstance, ch: ClickHouseResource, source: str,
                    target: str, via: str) -> int:
    """Runless materializations for every target partition a promote wrote, so the Dagster UI
    shows them as materialized; registers the target run id. Returns events reported."""
    create_run(instance, target)
    events = promoted_materializations(ch, source, target, via)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)


def asset_month_counts(ch: ClickHouseResource, run_id: str) -> dict[str, dict[str, int]]:
    """Per price asset (features_wide's iPhone scopes, cohorts its cohort scopes), rows
    (FINAL) per month 'YYYY-MM' of run_id."""
    validate_run_id(run_id)
    counts: dict[str, dict[str, int]] = {asset: {} for asset in PRICE_ASSETS}
    with ch.client() as client:
        for table in PRICE_TABLES:
            kind = "splitByChar(':', scope)[1]" if table == "features_wide" else "'iphone'"
            rows = client.query(
                f"SELECT {kind} AS k, toYYYYMM(bucket) AS m, count() FROM {ch.table(table)} "
                f"FINAL WHERE run_id = {quote_literal(run_id)} GROUP BY k, m ORDER BY k, m",
                settings=cl.reads()).result_rows
            for k, m, n in rows:
                asset = "cohorts" if k == "cohort" else table
                counts[asset][key_of_yyyymm(int(m))[:7]] = int(n)
    return counts


def unregister_run(instance: DagsterInstance, run_id: str) -> bool:
    """Remove a run id from the instance's partitions; False if it was not registered."""
    if not instance.has_dynamic_partition(RUN_ID_DIMENSION, run_id):
        return False
    instance.delete_dynamic_partition(RUN_ID_DIMENSION, run_id)
    return True
