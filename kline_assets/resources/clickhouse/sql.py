"""ClickHouse SQL shared by the IO manager and the run workflow: literals, partition tuples of a
table slice, typed reads, and the staged partition swap.

Writing never deletes first: rows go to a staging table that has the target's structure, then
each partition is swapped in with `REPLACE PARTITION … FROM` — atomic per partition, so a
failed write leaves the previous rows, a re-run never duplicates and a reader never sees half
a month. A staging table carries its writer's host and pid in its name, so one left by a
killed process is recognised and swept, and one that a live writer is using never is.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice

from kline_assets.lib.months import add_months, months_between, yyyymm
from kline_assets.lib.processes import pid_alive
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.features import replace_partition_settings

STAGING_MARK = "__staging_"
STALE_FOREIGN_AFTER_S = 6 * 3600  # staging of another host: swept once this old
_STAGING_NAME = re.compile(STAGING_MARK + r"h([0-9a-f]{8})_p(\d+)_")
Partition = tuple[str | int, ...]


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_range_where(column: str, start: datetime, end: datetime) -> str:
    """`column` in [start, end), compared as epoch seconds so no session zone matters."""
    return (f"{column} >= toDateTime({int(start.timestamp())}) "
            f"AND {column} < toDateTime({int(end.timestamp())})")


def values_where(expr: str, values: Sequence[str]) -> str:
    return f"{expr} IN ({', '.join(quote_literal(str(v)) for v in values)})"


def _dimension_where(dim: TablePartitionDimension) -> str:
    if isinstance(dim.partitions, TimeWindow):
        return time_range_where(dim.partition_expr, dim.partitions.start, dim.partitions.end)
    return values_where(dim.partition_expr, list(dim.partitions))


def where_clause(table_slice: TableSlice) -> str:
    dims = table_slice.partition_dimensions or []
    return " AND ".join(_dimension_where(d) for d in dims) or "1"


def months_in_window(window: TimeWindow) -> list[int]:
    """YYYYMM of every month starting in [window.start, window.end), in the window's own zone
    (the partitions definition's time zone)."""
    start, end = window.start, window.end
    first = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first = add_months(first, 1)
    return [yyyymm(m) for m in months_between(first, end)]


def target_partitions(table_slice: TableSlice) -> list[tuple[str | int, ...]]:
    """The ClickHouse partition tuples a slice covers: (run_id, YYYYMM, *extra values).

    Dimensions are taken in the order of the table's PARTITION BY: the first static one
    (run_id), the month window, then any extra static dimension (e.g. the scope kind).
    """
    statics: list[list[str]] = []
    months: list[int] = []
    for dim in table_slice.partition_dimensions or []:
        if isinstance(dim.partitions, TimeWindow):
            months = months_in_window(dim.partitions)
        else:
            statics.append([str(v) for v in dim.partitions])
    if not statics or not months:
        raise ValueError(
            f"table {table_slice.table}: a write must name run_id and month partitions, "
            f"got {table_slice.partition_dimensions}"
        )
    run_ids, extras = statics[0], statics[1:]
    return [
        (r, m, *rest)
        for r in run_ids
        for m in months
        for rest in itertools.product(*extras)
    ]


def partition_literal(values: tuple[str | int, ...]) -> str:
    return "(" + ", ".join(quote_literal(v) if isinstance(v, str) else str(v) for v in values) + ")"


def describe_columns(client: Client, table: str) -> list[tuple[str, str]]:
    rows = client.query(f"SELECT name, type FROM system.columns WHERE database || '.' || table = "
                        f"{quote_literal(table)} ORDER BY position").result_rows
    return [(r[0], r[1]) for r in rows]


def _is_datetime(ch_type: str) -> bool:
    return ch_type.removeprefix("Nullable(").startswith("DateTime")


def _tz_of(ch_type: str) -> str:
    inner = ch_type.removeprefix("Nullable(")
    if "'" in inner:
        return inner.split("'")[1]
    return "UTC"


def read_frame(client: Client, table: str, where: str, final: bool = True,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """SELECT a slice as a DataFrame; DateTime columns come back tz-aware in their own zone."""
    types = dict(describe_columns(client, table))
    wanted = list(columns) if columns else [c for c in types if c != "inserted_at"]
    # Aliases must not reuse column names: ClickHouse resolves WHERE against SELECT aliases.
    exprs = [f"toUnixTimestamp({c}) AS __epoch_{c}" if _is_datetime(types[c]) else c
             for c in wanted]
    q = f"SELECT {', '.join(exprs)} FROM {table}{' FINAL' if final else ''} WHERE {where}"
    df = client.query_arrow(q, settings=cl.reads()).to_pandas()
    for c in wanted:
        if _is_datetime(types[c]):
            epoch = df.pop(f"__epoch_{c}").astype("int64")
            df[c] = pd.to_datetime(epoch, unit="s", utc=True).dt.tz_convert(_tz_of(types[c]))
    return df[wanted]








def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def sweep_stale_staging(client: Client, database: str, table: str | None = None,
                        now: datetime | None = None) -> list[str]:
    """Drop staging tables whose writer is gone; returns their names.

    Same host: the pid in the name is no longer running. Another host (a shared server): older
    than STALE_FOREIGN_AFTER_S. A table without the owner mark is left alone.
    """
    rows = client.query(
        "SELECT name, toUnixTimestamp(metadata_modification_time) FROM system.tables "
        "WHERE database = {db:String} AND position(name, {mark:String}) > 0",
        parameters={"db": database, "mark": STAGING_MARK},
    ).result_rows
    clock = (now or datetime.now()).timestamp()
    swept = []
    for name, modified in rows:
        if table is not None and not name.startswith(f"{table}{STAGING_MARK}"):
            continue
        match = _STAGING_NAME.search(name)
        if match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        stale = (not pid_alive(pid)) if host == _host_tag() else (
            clock - int(modified) > STALE_FOREIGN_AFTER_S)
        if stale:
            drop_table(client, f"{database}.{name}")
            swept.append(name)
    return swept


def drop_table(client: Client, name: str) -> None:
    """Drop a table now, not after the engine's 8-minute grace period (`SYNC`).

    An embedded engine is open for a moment at a time, so without SYNC a dropped table never
    leaves: it stays queued under `metadata_dropped/` and every later open of the engine loads
    it again. Each staged write drops a table, so a store's opens grew slower with its age
    (measured: ~30 ms on a fresh store, ~180 ms after 330 queued drops)."""
    client.command(cl.drop_table_sql(name, cl.cluster_name()))


def create_staging(client: Client, table: str, purpose: str = "") -> str:
    """A fresh, empty table with `table`'s structure, named after its writer (host, pid) so a
    killed writer's table is swept; the caller drops it (`staging_table` does so itself).
    On a cluster it is a replicated table of its own on every replica (cluster.py)."""
    tag = f"{purpose}_" if purpose else ""
    staging = (f"{table}{STAGING_MARK}h{_host_tag()}_p{os.getpid()}_{tag}"
               f"{uuid.uuid4().hex[:10]}")
    client.command(cl.create_table_as(staging, table, cl.cluster_name()))
    return staging


@contextmanager
def staging_table(client: Client, table: str, purpose: str = "") -> Iterator[str]:
    """A fresh, empty table with `table`'s structure, dropped afterwards whatever happens."""
    staging = create_staging(client, table, purpose)
    try:
        yield staging
    finally:
        drop_table(client, staging)


def swap_in(client: Client, table: str, staging: str, partitions: Sequence[Partition]) -> None:
    """REPLACE each partition of `table` with the staging table's (an empty one clears it).

    On a cluster the replicated table carries the swap to every replica itself, and the
    statement returns once all of them have made it (`alter_sync = 2`, cluster.py)."""
    cluster = cl.cluster_name()
    settings = replace_partition_settings(client)
    if cluster:
        settings = {**settings, **(cl.alter_settings(cluster) or {})}
    for partition in partitions:
        client.command(
            f"ALTER TABLE {table} REPLACE PARTITION {partition_literal(partition)} "
            f"FROM {staging}",
            settings=settings,
        )


def replace_partitions(
    client: Client, table: str, frames: pd.DataFrame | Iterable[pd.DataFrame],
    partitions: Sequence[Partition], each: Callable[[pd.DataFrame], None] | None = None,
) -> int:
    """Swap `partitions` of `table` for the rows of `frames`, atomically per partition; returns
    the rows written.

    `frames` is one frame or an iterable of them (a stream: each chunk goes to the staging
    table as it comes, so memory holds one chunk); `each` checks every chunk before it is
    written. If anything fails the target is untouched. A partition absent from the rows
    becomes empty (that is what re-materializing it means).
    """
    database = table.split(".")[0] if "." in table else None
    if database:
        sweep_stale_staging(client, database, table.split(".", 1)[1])
    chunks = [frames] if isinstance(frames, pd.DataFrame) else frames
    rows = 0
    with staging_table(client, table) as staging:
        for frame in chunks:
            if each is not None:
                each(frame)
            if len(frame):
                client.insert_arrow(staging, pa.Table.from_pandas(frame, preserve_index=False),
                                    settings=cl.writes())
                rows += len(frame)
        swap_in(client, table, staging, partitions)
    return rows


def insert_frame(client: Client, table: str, frame: pd.DataFrame) -> None:
    """Append rows (no swap): for ReplacingMergeTree tables, whose newest version of a sorting
    key wins at merge time and under FINAL, so this rewrites just the rows it carries."""
    if len(frame):
        client.insert_arrow(table, pa.Table.from_pandas(frame, preserve_index=False),
                            settings=cl.writes())


def check_rows_in_slice(frame: pd.DataFrame, table_slice: TableSlice) -> None:
    """Refuse rows that belong to another partition: they would be lost or leak silently."""
    for dim in table_slice.partition_dimensions or []:
        if dim.partition_expr not in frame.columns:
            continue  # an expression over columns (e.g. the scope kind), checked below
        col = frame[dim.partition_expr]
        if isinstance(dim.partitions, TimeWindow):
            start = pd.Timestamp(dim.partitions.start)
            end = pd.Timestamp(dim.partitions.end)
            bad = int(((col < start) | (col >= end)).sum())
            what = f"outside [{start}, {end})"
        else:
            bad = int((~col.isin([str(v) for v in dim.partitions])).sum())
            what = f"with {dim.partition_expr} not in {list(dim.partitions)}"
        if bad:
            raise ValueError(
                f"{bad} row(s) for table {table_slice.table} {what}; nothing was written"
            )


