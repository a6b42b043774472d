"""Years of 1-minute bars in TimescaleDB's columnstore: compression of stock_1min_qfq and
stock_1min_synth, and the synthesised archive's retention, applied by `kline init`.

~300M vendor bars a year grow a plain table by tens of GB; segmented by code and ordered by
time, a chunk's bars compress about tenfold and a read of one symbol decompresses only its
batches. Chunks older than `KLINE_TS_COMPRESS_AFTER` (default 7 days: the live week stays in
the rowstore, where the loaders and the hand-over write) are compressed by TimescaleDB's
policy job. `KLINE_SYNTH_RETENTION` (e.g. `2 years`) drops archive chunks older than that; the
merged query then serves those days from the vendor's history alone. Unset, the archive is
kept and no retention policy exists (one left from an earlier setting is removed: the setting
is the truth).

All of it only where the timescaledb extension is installed; on plain PostgreSQL nothing is
sent beyond the question whether the extension is there. The loaders need no change: they
replace a window with DELETE + COPY, which TimescaleDB (2.11+) runs on compressed chunks by
moving only the affected batches back to the rowstore (sql/timescale/columnstore.sql).
No TimescaleDB runs in this project's tests: the statements are tested as text and the plain
path as skipping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import SQL_DIR
from kline_assets.resources.postgres import table_ident
from kline_assets.resources.postgres_io import ensure_hypertable as ensure_plain_hypertable
from kline_assets.resources.postgres_io import has_timescaledb
from kline_assets.stocks import STOCK_SYNTH_TABLE, STOCK_TABLE
from kline_assets.stocks.monthly import ensure_hypertable, sql_sections

COLUMNSTORE_SQL = SQL_DIR / "timescale" / "columnstore.sql"
_INTERVAL = re.compile(r"(\d{1,6})\s*(minute|hour|day|week|month|year)s?", re.I)


def check_interval(text: str, variable: str) -> str:
    """`7 days`, `1 month`, `2 years`… normalised; anything else is refused naming the
    variable (it goes into SQL as a literal, but a typo should not reach the server)."""
    match = _INTERVAL.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise KlineError(f"{variable}={text!r} is not an interval such as '7 days', "
                         "'1 month' or '2 years'")
    n, unit = int(match.group(1)), match.group(2).lower()
    return f"{n} {unit}{'s' if n != 1 else ''}"


def statement(section: str, table: str, age: str | None = None) -> sql.Composed:
    """A section of columnstore.sql with its placeholders filled."""
    return sql.SQL(sql_sections(COLUMNSTORE_SQL)[section]).format(
        table=table_ident(table), table_name=sql.Literal(table),
        age=sql.Literal(age) if age is not None else sql.SQL("NULL"))


@dataclass
class ColumnstoreReport:
    timescaledb: bool
    compress_after: str
    retention: str | None
    changed: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.timescaledb:
            return ("TimescaleDB not installed: stock_1min_qfq and stock_1min_synth stay plain "
                    "tables (no columnstore, no retention)")
        keep = f"older than {self.retention} dropped" if self.retention else "kept for ever"
        done = "; ".join(self.changed) if self.changed else "already as configured"
        return (f"TimescaleDB columnstore on {STOCK_TABLE}, {STOCK_SYNTH_TABLE} (segmentby "
                f"code, orderby time, chunks compressed after {self.compress_after}); "
                f"{STOCK_SYNTH_TABLE} {keep}: {done}")


def _age_differs(conn: psycopg.Connection, section: str, table: str, age: str) -> bool:
    """Whether the table's policy (if any) has another age than `age`, compared as intervals
    by the server (`7 days` = `1 week`)."""
    row = conn.execute(statement(section, table)).fetchone()
    if row is None or row[0] is None:
        return True
    same = conn.execute(sql.SQL("SELECT {}::interval = {}::interval").format(
        sql.Literal(str(row[0])), sql.Literal(age))).fetchone()
    return not (same and same[0])


def apply_columnstore(conn: psycopg.Connection, compress_after: str = "7 days",
                      synth_retention: str = "") -> ColumnstoreReport:
    """Columnstore and policies of the 1-minute tables as the settings say (idempotent);
    nothing but a look at pg_extension on plain PostgreSQL. The tables must exist."""
    age = check_interval(compress_after, "KLINE_TS_COMPRESS_AFTER")
    retention = (check_interval(synth_retention, "KLINE_SYNTH_RETENTION")
                 if synth_retention.strip() else None)
    report = ColumnstoreReport(has_timescaledb(conn), age, retention)
    if not report.timescaledb:
        return report
    if ensure_hypertable(conn, STOCK_TABLE):
        report.changed.append(f"{STOCK_TABLE} made a hypertable")
    if ensure_plain_hypertable(conn, STOCK_SYNTH_TABLE, "time"):
        report.changed.append(f"{STOCK_SYNTH_TABLE} made a hypertable")
    for table in (STOCK_TABLE, STOCK_SYNTH_TABLE):
        enabled = conn.execute(statement("is_enabled", table)).fetchone()
        if not (enabled and enabled[0]):
            conn.execute(statement("enable", table))
            report.changed.append(f"columnstore enabled on {table}")
        if _age_differs(conn, "policy_age", table, age):
            conn.execute(statement("remove_policy", table))
            conn.execute(statement("add_policy", table, age))
            report.changed.append(f"{table} compressed after {age}")
    if retention is not None:
        if _age_differs(conn, "retention_age", STOCK_SYNTH_TABLE, retention):
            conn.execute(statement("remove_retention", STOCK_SYNTH_TABLE))
            conn.execute(statement("add_retention", STOCK_SYNTH_TABLE, retention))
            report.changed.append(f"{STOCK_SYNTH_TABLE} retention {retention}")
    elif conn.execute(statement("retention_age", STOCK_SYNTH_TABLE)).fetchone() is not None:
        conn.execute(statement("remove_retention", STOCK_SYNTH_TABLE))
        report.changed.append(f"{STOCK_SYNTH_TABLE} retention removed")
    return report
