"""The run-id workflow in ClickHouse: drop, promote and compare whole runs.

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
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from clickhouse_connect.driver.client import Client

from kline_assets.errors import InvalidRunIdError, KlineError
from kline_assets.prices.runs import LIVE, validate_run_id
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse_io import (
    REPLACE_SETTINGS,
    describe_columns,
    partition_literal,
    quote_literal,
)

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
COMPARE_COLUMNS = ["table", "scope", "column", "rows_base", "rows_target", "only_in_base",
                   "only_in_target", "max_abs_diff", "mean_abs_diff", "null_mismatches"]
_NUMERIC = ("Int", "UInt", "Float", "Decimal")
_NOT_VALUES = {"run_id", "inserted_at"}


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


def _all_partitions(client: Client, db: str, tables: Iterable[str] = PRICE_TABLES
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
    return [p for p in _all_partitions(client, ch.db, tables) if p.run_id == run_id]


def _runs_present(client: Client, ch: ClickHouseResource) -> list[str]:
    return sorted({p.run_id for p in _all_partitions(client, ch.db)})


def _require_data(client: Client, ch: ClickHouseResource, run_id: str, role: str
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
    month = int(values[1])
    asset = "cohorts" if table == "features_wide" and values[2:] == ("cohort",) else table
    return asset, f"{month // 100:04d}-{month % 100:02d}-01|{run_id}"


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
                target: str, staging: list[str]) -> dict[str, tuple[str, list[tuple], int]]:
    """Copy `parts` (one run), deduplicated and relabelled to `target`, into staging tables.

    Returns per table (staging table, target partition tuples, rows staged). Every staging
    table created is appended to `staging` so the caller can drop it whatever happens.
    """
    out: dict[str, tuple[str, list[tuple], int]] = {}
    for table in PRICE_TABLES:
        mine = [p for p in parts if p.table == table]
        if not mine:
            continue
        full = ch.table(table)
        stage = f"{full}__staging_promote_{uuid.uuid4().hex[:12]}"
        client.command(f"CREATE TABLE {stage} AS {full}")
        staging.append(stage)
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
    staging: list[str] = []
    try:
        staged = _stage_copy(client, ch, parts, target, staging)
        for table, (stage, targets, _) in staged.items():
            for values in targets:
                client.command(
                    f"ALTER TABLE {ch.table(table)} REPLACE PARTITION {partition_literal(values)} "
                    f"FROM {stage}",
                    settings=REPLACE_SETTINGS,
                )
        return {t: {"partitions": len(targets), "rows": rows}
                for t, (_, targets, rows) in staged.items()}
    finally:
        for stage in staging:
            client.command(f"DROP TABLE IF EXISTS {stage}")


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
        source_parts = _require_data(client, ch, source, "source")
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


def _value_columns(client: Client, full_table: str, keys: Sequence[str]) -> list[str]:
    return [
        name for name, ch_type in describe_columns(client, full_table)
        if name not in _NOT_VALUES and name not in keys
        and ch_type.removeprefix("Nullable(").startswith(_NUMERIC)
    ]


def _compare_sql(full: str, table: str, values: Sequence[str], base: str, target: str,
                 month: int) -> str:
    """Per scope of one month: counts, and per value column max/sum/count of |b − t| and NULL
    mismatches. One row per key and run after FINAL, so a key's values are anyIf(…, run)."""
    keys = ", ".join(k for k in KEYS[table] if k != "scope")
    is_b, is_t = f"run_id = {quote_literal(base)}", f"run_id = {quote_literal(target)}"
    # NaN counts as missing, like NULL; v/b/t{i} aliases never collide with column names.
    cleaned = [f"if(isNaN(toFloat64({c})), NULL, toFloat64({c})) AS v{i}"
               for i, c in enumerate(values)]
    per_key = [f"anyIf(v{i}, {is_b}) AS b{i}, anyIf(v{i}, {is_t}) AS t{i}"
               for i in range(len(values))]
    per_scope = [f"max(abs(b{i} - t{i})) AS max{i}, sum(ifNull(abs(b{i} - t{i}), 0)) AS sum{i}, "
                 f"count(abs(b{i} - t{i})) AS n{i}, "
                 f"countIf(pb AND pt AND (isNull(b{i}) != isNull(t{i}))) AS nm{i}"
                 for i in range(len(values))]
    return f"""
        SELECT {", ".join(["sc AS scope", "countIf(pb) AS rows_base", "countIf(pt) AS rows_target",
                           "countIf(pb AND NOT pt) AS only_in_base",
                           "countIf(pt AND NOT pb) AS only_in_target", *per_scope])}
        FROM (
            SELECT {", ".join(["sc", keys, f"countIf({is_b}) > 0 AS pb",
                               f"countIf({is_t}) > 0 AS pt", *per_key])}
            FROM (
                SELECT {", ".join(["run_id", f"{SCOPE_EXPR[table]} AS sc", keys, *cleaned])}
                FROM {full} FINAL
                WHERE run_id IN ({quote_literal(base)}, {quote_literal(target)})
                  AND toYYYYMM(bucket) = {month}
            )
            GROUP BY sc, {keys}
        )
        GROUP BY sc
    """


def _compare_table(client: Client, ch: ClickHouseResource, table: str, base: str, target: str,
                   months: Sequence[int]) -> pd.DataFrame:
    """Long-form rows of one table; month by month, so memory stays that of one month."""
    full = ch.table(table)
    values = _value_columns(client, full, KEYS[table])
    per_month = [client.query_df(_compare_sql(full, table, values, base, target, m))
                 for m in months]
    per_month = [df for df in per_month if not df.empty]
    if not per_month:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    wide = pd.concat(per_month, ignore_index=True)
    numbers = wide.drop(columns="scope").apply(pd.to_numeric, errors="coerce")
    wide = pd.concat([wide["scope"].astype(str), numbers.astype("float64")], axis=1)
    maxes = [c for c in numbers.columns if c.startswith("max")]
    grouped = wide.groupby("scope", sort=True)
    wide = pd.concat([grouped[maxes].max(), grouped[numbers.columns.drop(maxes)].sum()],
                     axis=1).reset_index()
    counts = ["rows_base", "rows_target", "only_in_base", "only_in_target"]
    frames = []
    for i, column in enumerate(values):
        part = wide[["scope", *counts]].copy()
        part.insert(0, "table", table)
        part.insert(2, "column", column)
        part["max_abs_diff"] = wide[f"max{i}"]
        n = wide[f"n{i}"]
        part["mean_abs_diff"] = (wide[f"sum{i}"] / n).where(n > 0)
        part["null_mismatches"] = wide[f"nm{i}"]
        part["_order"] = i
        frames.append(part)
    out = pd.concat(frames, ignore_index=True).sort_values(["scope", "_order"], kind="stable")
    for col in (*counts, "null_mismatches"):
        out[col] = out[col].astype("int64")
    return out[COMPARE_COLUMNS].reset_index(drop=True)


def compare_runs(ch: ClickHouseResource, base: str, target: str,
                 tables: Sequence[str] | None = None) -> pd.DataFrame:
    """Per table × scope × numeric column: rows in each run, keys in only one, |base − target|.

    Keys: price_aligned (iphone_id, shop_id, bucket) and cross_shop_agg (iphone_id, bucket)
    under scope `iphone:<id>`; features_wide (scope, bucket). `only_in_*` count keys (for
    price_aligned a key is a shop's bucket). Differences are over keys present in both runs
    with a value on both sides (NaN = NULL); a value on one side and NULL on the other counts
    in `null_mismatches`. No common values → NaN differences. Columns: COMPARE_COLUMNS.
    """
    validate_run_id(base)
    validate_run_id(target)
    chosen = list(tables) if tables else list(PRICE_TABLES)
    unknown = sorted(set(chosen) - set(PRICE_TABLES))
    if unknown:
        raise KlineError(f"unknown table(s) {unknown}; choose from {', '.join(PRICE_TABLES)}")
    with ch.client() as client:
        parts = [*_require_data(client, ch, base, "base"),
                 *_require_data(client, ch, target, "target")]
        frames = [
            _compare_table(client, ch, table, base, target,
                           sorted({int(p.values[1]) for p in parts if p.table == table}))
            for table in PRICE_TABLES if table in chosen
        ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for col in ("table", "scope", "column"):
        out[col] = out[col].astype(str)
    return out
