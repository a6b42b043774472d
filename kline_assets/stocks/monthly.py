"""stock_monthly_kline on both storage paths: TimescaleDB continuous aggregate, or a plain table.

The path is the database's, not a setting: TimescaleDB iff the extension is installed in the
connected database (`CREATE EXTENSION timescaledb` switches a database over; `--recreate`
then replaces the plain table by the aggregate). Both paths aggregate the same clean bars with
the same first/last-by-time semantics, so they hold identical rows:

* TimescaleDB: the continuous aggregate (sql/timescale/monthly_kline_cagg.sql), its
  (code, month DESC) index and refresh policy; a month is materialized with
  `refresh_continuous_aggregate` over [M, M+1 month), outside any transaction.
* plain PostgreSQL: a table of the same name (sql/postgres/stock_monthly_kline.sql); a window
  of months is deleted and re-inserted in one transaction.

The current month: the policy's one-hour end offset never covers a month-wide bucket before
the month is over, and real-time aggregation is off (`materialized_only = true`), so the
current month is kept correct by the `stock_current_month` schedule re-materializing its
partition — the same mechanism on both paths, so they stay identical.
"""

from __future__ import annotations

import re
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import SQL_DIR
from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.resources.postgres_io import has_timescaledb, is_hypertable
from kline_assets.stocks import STOCK_TABLE

from .partitions import MonthWindow

VIEW = "stock_monthly_kline"

CLEAN_PREDICATE = (
    "volume >= 0\n"
    "  AND amount >= 0\n"
    "  AND high >= GREATEST(open, close)\n"
    "  AND low <= LEAST(open, close)"
)
"""The cleaning rule, shared by the aggregate, the plain refresh and the row-count check.

`>= 0` is false for NULL, so a bar with a NULL volume or amount is dropped; prices are not
checked for sign, because forward-adjusted (qfq) prices may be negative.
"""

CAGG_SQL = SQL_DIR / "timescale" / "monthly_kline_cagg.sql"
HYPERTABLE_SQL = SQL_DIR / "timescale" / "hypertable.sql"
PLAIN_SQL = SQL_DIR / "postgres" / "stock_monthly_kline.sql"

_SECTION = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


class StoragePath(StrEnum):
    """Where stock_monthly_kline lives; the value is what metadata and logs show."""

    TIMESCALEDB = "timescaledb"
    PLAIN = "plain"

    @property
    def label(self) -> str:
        return "TimescaleDB" if self is StoragePath.TIMESCALEDB else "plain PostgreSQL"


class StorageConflictError(KlineError):
    """stock_monthly_kline exists in the other path's form (e.g. a plain table on TimescaleDB)."""


@dataclass
class RefreshReport:
    path: StoragePath
    window: MonthWindow
    rows: int = 0
    codes: int = 0
    months: int = 0
    seconds: float = 0.0
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- SQL files


@cache
def sql_sections(path: Path) -> dict[str, str]:
    """The `-- name: x` sections of a SQL file (the text before the first one is a header)."""
    parts = _SECTION.split(path.read_text())
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def render(path: Path, section: str, source: str) -> sql.Composed:
    """A section with its placeholders filled: identifiers quoted, the predicate inlined."""
    return sql.SQL(sql_sections(path)[section]).format(
        source=table_ident(source),
        source_name=sql.Literal(source),
        view=sql.Identifier(VIEW),
        view_name=sql.Literal(VIEW),
        clean_predicate=sql.SQL(CLEAN_PREDICATE),
    )


# --------------------------------------------------------------------------- detection


def storage_path(conn: psycopg.Connection) -> StoragePath:
    return StoragePath.TIMESCALEDB if has_timescaledb(conn) else StoragePath.PLAIN


def _relation_kind(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)", (name,)
    ).fetchone()
    return row[0] if row else None


def _is_cagg(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM timescaledb_information.continuous_aggregates "
        "WHERE view_name = %s AND view_schema = current_schema()",
        (VIEW,),
    ).fetchone()
    return row is not None


# --------------------------------------------------------------------------- DDL


def ensure_hypertable(conn: psycopg.Connection, source: str) -> bool:
    """Make the 1-minute table a hypertable (TimescaleDB path); True when it was converted."""
    if is_hypertable(conn, source):
        return False
    conn.execute(render(HYPERTABLE_SQL, "create_hypertable", source))
    return True


def ensure_monthly(conn: psycopg.Connection, source: str, path: StoragePath) -> list[str]:
    """Create what is missing of stock_monthly_kline on `path`; returns what was created."""
    created: list[str] = []
    if path is StoragePath.PLAIN:
        if _relation_kind(conn, VIEW) is None:
            created.append(f"table {VIEW}")
        conn.execute(render(PLAIN_SQL, "create_table", source))
        conn.execute(render(PLAIN_SQL, "index", source))
        return created
    if ensure_hypertable(conn, source):
        created.append(f"hypertable {source}")
    if not _is_cagg(conn):
        if _relation_kind(conn, VIEW) is not None:
            raise StorageConflictError(
                f"{VIEW} exists but is not a continuous aggregate (it was built on plain "
                "PostgreSQL before TimescaleDB was installed); run "
                "`kline stocks refresh --recreate` to replace it"
            )
        conn.execute(render(CAGG_SQL, "create_view", source))
        created.append(f"continuous aggregate {VIEW}")
    for section in ("materialized_only", "index", "policy"):
        conn.execute(render(CAGG_SQL, section, source))
    return created


def describe_drop(conn: psycopg.Connection) -> list[str]:
    """What dropping stock_monthly_kline (CASCADE) removes, in words, for --recreate."""
    kind = _relation_kind(conn, VIEW)
    if kind is None:
        return []
    if has_timescaledb(conn) and _is_cagg(conn):
        what = [f"continuous aggregate {VIEW} and its materialized rows"]
        jobs = conn.execute(
            "SELECT job_id, proc_name FROM timescaledb_information.jobs "
            "WHERE hypertable_name = %s AND hypertable_schema = current_schema() "
            "ORDER BY job_id",
            (VIEW,),
        ).fetchall()
        what += [f"job {job_id} ({proc})" for job_id, proc in jobs]
        index_rel = conn.execute(
            "SELECT format('%%I.%%I', materialization_hypertable_schema, "
            "materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates "
            "WHERE view_name = %s",
            (VIEW,),
        ).fetchone()[0]
    else:
        what = [f"table {VIEW} and its rows"]
        index_rel = VIEW
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass(%s)",
        (index_rel,),
    ).fetchall()
    what += [f"index {name}" for (name,) in indexes]
    dependents = conn.execute(
        "SELECT DISTINCT r.ev_class::regclass::text FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid "
        "WHERE d.refobjid = to_regclass(%s) AND r.ev_class <> to_regclass(%s)",
        (VIEW, VIEW),
    ).fetchall()
    what += [f"dependent view {name}" for (name,) in dependents]
    return what


def drop_monthly(conn: psycopg.Connection) -> None:
    kind = _relation_kind(conn, VIEW)
    if kind == "r":
        conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(VIEW)))
    elif kind in ("v", "m"):
        conn.execute(sql.SQL("DROP MATERIALIZED VIEW {} CASCADE").format(sql.Identifier(VIEW)))


# --------------------------------------------------------------------------- refresh


def tune_for_batch(conn: psycopg.Connection) -> None:
    """Settings for one aggregation over millions of bars, for this transaction only.

    The planner guesses ~100k (month, code) groups where there are a few thousand: with the
    default 4 MB work_mem it sorts on disk, and the inflated cost makes JIT compile for longer
    than the query runs (measured: 2–3 s → 0.8 s per month of 200 codes).
    """
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute("SET LOCAL jit = off")


def _refresh_plain(conn: psycopg.Connection, source: str, window: MonthWindow) -> None:
    # Two runs refreshing overlapping windows would both insert the same (code, month).
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (VIEW,))
    tune_for_batch(conn)
    params = {"start": window.start, "end": window.end}
    conn.execute(render(PLAIN_SQL, "delete_window", source), params)
    conn.execute(render(PLAIN_SQL, "insert_window", source), params)


def _refresh_cagg(conn: psycopg.Connection, window: MonthWindow, force: bool) -> None:
    conn.execute(
        "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamp, %s::timestamp, "
        "force => %s)",
        (VIEW, window.start, window.end, force),
    )


def window_stats(conn: psycopg.Connection, window: MonthWindow) -> tuple[int, int, int]:
    """(rows, distinct codes, distinct months) of stock_monthly_kline in the window."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), count(DISTINCT code), count(DISTINCT month) FROM {} "
            "WHERE month >= %s AND month < %s"
        ).format(sql.Identifier(VIEW)),
        (window.start, window.end),
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def refresh(
    postgres: PostgresResource,
    window: MonthWindow,
    force: bool = False,
    recreate: bool = False,
    announce: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Bring stock_monthly_kline up to date for `window` on whichever path the database has.

    recreate: drop stock_monthly_kline (CASCADE: index, policy job, materialized rows) first;
    `announce` hears what is dropped before it goes, and what is created. force: TimescaleDB
    recomputes buckets even where it recorded no change (`force => true`); the plain path
    always recomputes the window.
    """
    started = clock.perf_counter()
    source = STOCK_TABLE
    say = announce or (lambda _message: None)
    postgres.require_tables([source])
    with postgres.connect() as conn:
        path = storage_path(conn)
        report = RefreshReport(path=path, window=window)
        if recreate:
            report.dropped = describe_drop(conn)
            for what in report.dropped:
                say(f"dropping {what}")
            drop_monthly(conn)
        report.created = ensure_monthly(conn, source, path)
        for what in report.created:
            say(f"created {what}")
        if path is StoragePath.PLAIN:
            _refresh_plain(conn, source, window)
    if path is StoragePath.TIMESCALEDB:
        with postgres.connect(autocommit=True) as conn:
            _refresh_cagg(conn, window, force)
    with postgres.connect() as conn:
        report.rows, report.codes, report.months = window_stats(conn, window)
    report.seconds = clock.perf_counter() - started
    return report


def refresh_state(conn: psycopg.Connection, path: StoragePath, window: MonthWindow | None
                  ) -> dict[str, object]:
    """Metadata of the aggregate's refresh state after refreshing `window`.

    Plain path: this refresh is the state (its window and time; nothing refreshes the table in
    between). TimescaleDB: also the refresh policy job's stats from
    timescaledb_information.job_stats, since the policy refreshes between materializations.
    """
    state: dict[str, object] = {
        "last_refresh_window": window.label if window is not None else "all months",
        "last_refresh_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if path is not StoragePath.TIMESCALEDB:
        return state
    try:
        with conn.transaction():  # a savepoint: a failed look never aborts the caller's work
            stats = conn.execute(POLICY_STATS_SQL, (VIEW,)).fetchone()
            error = None if stats is None else conn.execute(
                POLICY_ERROR_SQL, (stats[0],)).fetchone()
    except psycopg.Error as exc:
        return {**state, "policy_job": f"unreadable ({type(exc).__name__}: {exc})"[:300]}
    return {**state, **policy_metadata(stats, error)}


# Timestamps as text: a policy that failed before it ever succeeded has
# last_successful_finish = -infinity, which psycopg cannot turn into a datetime.
POLICY_STATS_SQL = (
    "SELECT s.job_id, s.last_run_status, s.last_run_started_at::text, "
    "s.last_successful_finish::text, s.next_start::text, s.total_runs, s.total_failures "
    "FROM timescaledb_information.job_stats s "
    "JOIN timescaledb_information.jobs j ON j.job_id = s.job_id "
    "WHERE j.hypertable_name = %s AND j.hypertable_schema = current_schema() "
    "AND j.proc_name = 'policy_refresh_continuous_aggregate'")
POLICY_ERROR_SQL = (
    "SELECT finish_time::text, sqlerrcode, err_message FROM timescaledb_information.job_errors "
    "WHERE job_id = %s ORDER BY finish_time DESC NULLS LAST LIMIT 1")
_POLICY_FIELDS = ("policy_job", "policy_last_run_status", "policy_last_run_started_at",
                  "policy_last_successful_finish", "policy_next_start", "policy_total_runs",
                  "policy_total_failures")


def _when(value: object) -> object:
    """A job-stats time as the UI shows it: ±infinity or none is 'never'."""
    if value is None or str(value).strip().lower() in {"-infinity", "infinity"}:
        return "never"
    return value if isinstance(value, int | str) else str(value)


def policy_metadata(stats: Sequence[object] | None,
                    error: Sequence[object] | None = None) -> dict[str, object]:
    """The refresh policy's state as materialization metadata, from a job_stats row (times as
    text) and its newest job_errors row; `policy_failing` says whether its last run failed."""
    if stats is None:
        return {"policy_job": "none (no refresh policy found)"}
    out: dict[str, object] = {name: _when(value) if "_at" in name or "finish" in name
                              or "next" in name else value
                              for name, value in zip(_POLICY_FIELDS, stats, strict=True)}
    out["policy_failing"] = str(out["policy_last_run_status"]).lower() == "failed"
    if error is not None:
        finished, code, message = error
        out["policy_last_error"] = f"{_when(finished)}: {code} {message}"[:500]
    return out


# --------------------------------------------------------------------------- reading


def top_code(conn: psycopg.Connection, window: MonthWindow) -> str | None:
    """The code with the largest turnover in the window's last month (for the chart)."""
    row = conn.execute(
        sql.SQL(
            "SELECT code FROM {} WHERE month = %s ORDER BY amount DESC NULLS LAST, code LIMIT 1"
        ).format(sql.Identifier(VIEW)),
        (window.month_starts()[-1],),
    ).fetchone()
    return row[0] if row else None


def recent_months(
    conn: psycopg.Connection, code: str, end: datetime, months: int
) -> pd.DataFrame:
    """One code's last `months` monthly bars before `end`, oldest first."""
    rows = conn.execute(
        sql.SQL(
            "SELECT month, open, high, low, close, volume FROM {} "
            "WHERE code = %s AND month < %s ORDER BY month DESC LIMIT %s"
        ).format(sql.Identifier(VIEW)),
        (code, end, months),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["month", "open", "high", "low", "close", "volume"])
    return frame.iloc[::-1].reset_index(drop=True)
