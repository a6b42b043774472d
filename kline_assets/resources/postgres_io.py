"""A PostgreSQL / TimescaleDB IO manager for Arrow data, in the DbIOManager / DbClient /
DbTypeHandler shape of Dagster's own database integrations.

It knows no domain: the table comes from the asset's `table` metadata (default: the asset
name), the partition column from `partition_expr`. Writing a partition replaces it in ONE
transaction — advisory lock, DELETE the slice, binary COPY (kline_assets.resources.pgcopy) —
so a failed write leaves the previous rows and a re-run never duplicates. When the
timescaledb extension is installed in the database, the table is first made a hypertable on
the partition's time column (idempotent); otherwise it stays a plain table.

Memory stays bounded: an asset may return an `ArrowStream` — any iterable of pyarrow tables —
which is consumed inside the writing transaction, one table at a time, straight into COPY.
"""


import time as clock
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    OutputContext,
    ResourceDependency,
)
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TableSlice,
)
from psycopg import sql
from pydantic import Field

from kline_assets.lib.errors import KlineError
from kline_assets.lib.months import month_of, months_between
from kline_assets.resources.pgcopy import copy_table, table_types
from kline_assets.resources.postgres import PostgresResource, table_ident

Window = tuple[datetime, datetime]


class PostgresWriteError(KlineError):
    """PostgreSQL refused a slice's rows; the transaction was rolled back."""


class ArrowStream:
    """Tables to write into one table slice, consumed once, inside the writing transaction.

    `replace` narrows what is replaced to sub-windows of the slice's time window (the months
    the producer actually has data for); rows outside them are refused. Default: the slice.
    """

    def __init__(self, tables: Iterable[pa.Table], replace: Sequence[Window] | None = None
                 ) -> None:
        self.tables = tables
        self.replace = None if replace is None else list(replace)


# --------------------------------------------------------------------------- SQL pieces


def has_timescaledb(conn: psycopg.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def is_hypertable(conn: psycopg.Connection, table: str) -> bool:
    """Whether `table` is a hypertable (only ask where TimescaleDB is installed)."""
    return conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables h "
        "WHERE format('%%I.%%I', h.hypertable_schema, h.hypertable_name)::regclass "
        "= to_regclass(%s)", (table,)).fetchone() is not None


def ensure_hypertable(conn: psycopg.Connection, table: str, time_column: str,
                      chunk_interval: str = "7 days") -> bool:
    """Make `table` a hypertable on `time_column` when TimescaleDB is installed; True when
    this call converted it. The plain table stays as it is without the extension."""
    if not has_timescaledb(conn) or is_hypertable(conn, table):
        return False
    conn.execute(
        "SELECT create_hypertable(to_regclass(%s), by_range(%s, %s::interval), "
        "create_default_indexes => false, if_not_exists => true, migrate_data => true)",
        (table, time_column, chunk_interval))
    return True


def _bounds(window: Window, pg_type: str) -> Window:
    """A window as the column holds time: wall clock for `timestamp`, instants otherwise."""
    if pg_type == "timestamp":
        return window[0].replace(tzinfo=None), window[1].replace(tzinfo=None)
    return window


def _lock_keys(table: str, window: Window) -> list[str]:
    """One advisory lock per calendar month the window touches, taken in ascending order, so
    overlapping writers wait for each other and disjoint months proceed in parallel."""
    start, end = window[0].replace(tzinfo=None), window[1].replace(tzinfo=None)
    return [f"{table}:{m:%Y-%m}" for m in months_between(month_of(start, "UTC"), end)]


def _outside(data: pa.Table, column: str, windows: Sequence[Window]) -> int:
    times = data[column]
    inside = pa.array([False] * data.num_rows)
    for lo, hi in windows:
        t = times.type
        inside = pc.or_(inside, pc.and_(pc.greater_equal(times, pa.scalar(lo, t)),
                                        pc.less(times, pa.scalar(hi, t))))
    return data.num_rows - int(pc.sum(pc.cast(inside, pa.int64())).as_py() or 0)


def replace_time_window(
    conn: psycopg.Connection,
    table: str,
    time_column: str,
    start: datetime,
    end: datetime,
    tables: Iterable[pa.Table],
    windows: Sequence[Window] | None = None,
    static: Mapping[str, Sequence[str]] | None = None,
) -> tuple[int, int]:
    """DELETE `windows` (default [start, end)) of `table` and COPY `tables` into it, on the
    caller's transaction; returns (rows deleted, rows written).

    Every row must lie in one of the windows: a row elsewhere would survive the next
    replacement of its own window, so it is refused and the transaction fails.
    """
    types = table_types(conn, table)
    if not types:
        raise PostgresWriteError(f"table {table} does not exist")
    pg_type = types.get(time_column)
    if pg_type is None:
        raise PostgresWriteError(f"table {table} has no column {time_column!r}")
    windows = [_bounds(w, pg_type) for w in (windows if windows is not None else [(start, end)])]
    for key in sorted({k for w in windows for k in _lock_keys(table, w)}):
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
    extra = sql.SQL("").join(
        sql.SQL(" AND {} = ANY(%s)").format(sql.Identifier(c)) for c in (static or {}))
    deleted = 0
    for lo, hi in windows:
        deleted += conn.execute(
            sql.SQL("DELETE FROM {} WHERE {col} >= %s AND {col} < %s{extra}").format(
                table_ident(table), col=sql.Identifier(time_column), extra=extra),
            (lo, hi, *[list(v) for v in (static or {}).values()]),
        ).rowcount
    written = 0
    for data in tables:
        if data.num_rows == 0:
            continue
        stray = _outside(data, time_column, windows)
        if stray:
            raise PostgresWriteError(
                f"{stray} row(s) for {table} lie outside the partition's time window; "
                "nothing was written")
        written += copy_table(conn, table, data, types)
    return deleted, written


# --------------------------------------------------------------------------- Dagster pieces


def _time_dimension(table_slice: TableSlice) -> tuple[str, TimeWindow] | None:
    for dim in table_slice.partition_dimensions or []:
        if isinstance(dim.partitions, TimeWindow):
            return dim.partition_expr, dim.partitions
    return None


def _static_dimensions(table_slice: TableSlice) -> dict[str, list[str]]:
    return {d.partition_expr: [str(v) for v in d.partitions]
            for d in table_slice.partition_dimensions or []
            if not isinstance(d.partitions, TimeWindow)}


def _qualified(table_slice: TableSlice) -> str:
    if "." in table_slice.table or table_slice.schema in ("", "public"):
        return table_slice.table
    return f"{table_slice.schema}.{table_slice.table}"


def _where(table_slice: TableSlice) -> sql.Composable:
    parts: list[sql.Composable] = []
    for dim in table_slice.partition_dimensions or []:
        col = sql.Identifier(dim.partition_expr)
        if isinstance(dim.partitions, TimeWindow):
            parts.append(sql.SQL("{c} >= {lo} AND {c} < {hi}").format(
                c=col, lo=sql.Literal(dim.partitions.start), hi=sql.Literal(dim.partitions.end)))
        else:
            parts.append(sql.SQL("{} = ANY({})").format(
                col, sql.Literal([str(v) for v in dim.partitions])))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")


class PostgresArrowTypeHandler(DbTypeHandler[Any]):
    """pyarrow Tables and ArrowStreams in, pyarrow Tables out."""

    def __init__(self, chunk_interval: str = "7 days") -> None:
        self.chunk_interval = chunk_interval

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: Any,
                      connection: psycopg.Connection) -> Mapping[str, Any]:
        started = clock.perf_counter()
        stream = obj if isinstance(obj, ArrowStream) else ArrowStream([obj])
        table = _qualified(table_slice)
        time_dim = _time_dimension(table_slice)
        timescale = has_timescaledb(connection)
        try:
            if time_dim is None:  # unpartitioned or static partitions: the whole slice
                deleted = connection.execute(
                    sql.SQL("DELETE FROM {} WHERE {}").format(table_ident(table),
                                                             _where(table_slice))
                ).rowcount
                written = sum(copy_table(connection, table, t) for t in stream.tables)
                hypertable = False
            else:
                column, window = time_dim
                hypertable = ensure_hypertable(connection, table, column, self.chunk_interval)
                if stream.replace is not None:
                    _check_within(stream.replace, window)
                deleted, written = replace_time_window(
                    connection, table, column, window.start, window.end, stream.tables,
                    windows=stream.replace, static=_static_dimensions(table_slice))
        except psycopg.Error as exc:
            raise PostgresWriteError(
                f"writing {_describe(table_slice)} to {table} failed; the previous rows were "
                f"left as they were: {type(exc).__name__}: {str(exc).strip()}"
            ) from exc
        return {
            "rows written": written,
            "rows replaced": deleted,
            "storage": "hypertable" if timescale else "plain table",
            "made a hypertable": hypertable,
            "write seconds": round(clock.perf_counter() - started, 3),
        }

    def load_input(self, context: InputContext, table_slice: TableSlice,
                   connection: psycopg.Connection) -> pa.Table:
        cols = (sql.SQL(", ").join(map(sql.Identifier, table_slice.columns))
                if table_slice.columns else sql.SQL("*"))
        cursor = connection.execute(sql.SQL("SELECT {} FROM {} WHERE {}").format(
            cols, table_ident(_qualified(table_slice)), _where(table_slice)))
        names = [d.name for d in cursor.description or []]
        rows = cursor.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    @property
    def supported_types(self) -> Sequence[type]:
        return [pa.Table, ArrowStream]


def _check_within(windows: Sequence[Window], outer: TimeWindow) -> None:
    lo, hi = outer.start, outer.end
    for start, end in windows:
        s, e = (start, end) if start.tzinfo else (start.replace(tzinfo=lo.tzinfo),
                                                  end.replace(tzinfo=lo.tzinfo))
        if s < lo or e > hi:
            raise PostgresWriteError(f"replace window [{start}, {end}) is outside the "
                                     f"partition's [{lo}, {hi})")


def _describe(table_slice: TableSlice) -> str:
    dims = table_slice.partition_dimensions or []
    parts = []
    for d in dims:
        if isinstance(d.partitions, TimeWindow):
            lo, hi = d.partitions.start, d.partitions.end
            parts.append(f"{d.partition_expr} in [{lo:%Y-%m-%d %H:%M}, {hi:%Y-%m-%d %H:%M})")
        else:
            parts.append(f"{d.partition_expr} in {list(d.partitions)}")
    return " and ".join(parts) or "the whole table"


class PostgresDbClient(DbClient[psycopg.Connection]):
    def __init__(self, postgres: PostgresResource) -> None:
        self.postgres = postgres

    def delete_table_slice(self, context: OutputContext, table_slice: TableSlice,
                           connection: psycopg.Connection) -> None:
        """Nothing here: the type handler deletes and writes under one lock, one transaction."""

    def ensure_schema_exists(self, context: OutputContext, table_slice: TableSlice,
                             connection: psycopg.Connection) -> None:
        if table_slice.schema and table_slice.schema != "public" and "." not in table_slice.table:
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(table_slice.schema)))

    def get_select_statement(self, table_slice: TableSlice) -> str:
        cols = ", ".join(table_slice.columns) if table_slice.columns else "*"
        where = _where(table_slice).as_string(None)
        return f"SELECT {cols} FROM {_qualified(table_slice)} WHERE {where}"

    def get_table_name(self, table_slice: TableSlice) -> str:
        return _qualified(table_slice)

    @contextmanager
    def connect(self, context: OutputContext | InputContext, table_slice: TableSlice
                ) -> Iterator[psycopg.Connection]:
        """One transaction per output: committed when the write completes, else rolled back."""
        with self.postgres.connect() as conn:
            yield conn


class _PostgresDbIOManager(DbIOManager):
    """DbIOManager honouring a `table` metadata entry (a table named unlike its asset)."""

    def _get_table_slice(self, context, output_context) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        metadata = output_context.definition_metadata or {}
        if metadata.get("table"):
            table_slice = table_slice._replace(table=str(metadata["table"]))
        return table_slice


class PostgresIOManager(ConfigurableIOManagerFactory):
    """Stores pyarrow Tables / ArrowStreams in PostgreSQL tables (hypertables on TimescaleDB).

    Assets declare `metadata={"partition_expr": "<time column>"}` when partitioned, and
    `"table"` when the table name differs from the asset name (`"schema"` for a schema other
    than public). The table must exist: its DDL is the product's, not the IO manager's.
    """

    postgres: ResourceDependency[PostgresResource]
    chunk_interval: str = Field(default="7 days",
                                description="TimescaleDB chunk interval of new hypertables")

    def create_io_manager(self, context) -> DbIOManager:
        return _PostgresDbIOManager(
            type_handlers=[PostgresArrowTypeHandler(self.chunk_interval)],
            db_client=PostgresDbClient(self.postgres),
            database="postgres",
            schema=None,
            io_manager_name="PostgresIOManager",
            default_load_type=pa.Table,
        )


__all__ = [
    "ArrowStream",
    "PostgresIOManager",
    "PostgresWriteError",
    "ensure_hypertable",
    "has_timescaledb",
    "is_hypertable",
    "replace_time_window",
]
