"""The integrity of stock_1min: conflicting duplicates in the landing files, bars off the XSHG
calendar, non-finite values and too many bars a day, one result per month partition."""

from collections.abc import Iterator

import numpy as np
import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    multi_asset_check,
)
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.stocks import STOCK_TABLE

from .. import sessions
from ..monthly import tune_for_batch
from ..partitions import STOCK_MONTHS, MonthWindow, month_label
from .common import (
    BAR_COLUMNS,
    NON_FINITE,
    SAMPLE,
    offending,
    per_month,
    sample_table,
    window_filter,
)

ONE_MIN = AssetKey("stock_1min")
CONFLICTS = "no_conflicting_duplicates"
ON_CALENDAR = "bars_on_trading_days_in_sessions"
FINITE_BARS = "finite_bar_values"
CONFLICTS_BY_MONTH = "duplicate_conflicts_by_month"  # stock_1min's materialization metadata

BARS_PER_DAY = "at_most_241_bars_per_code_and_day"
MAX_BARS_PER_DAY = 241
"""A full session day has 240 one-minute bars (labels 09:31…15:00), 241 where the vendor keeps
the opening auction as a 09:30 bar of its own (Tushare, EastMoney)."""

ONE_MIN_SPECS = [
    AssetCheckSpec(CONFLICTS, asset=ONE_MIN, partitions_def=STOCK_MONTHS,
                   description="the last load of each month found no (code, time) bar with "
                   "differing copies (the file sorting last won)"),
    AssetCheckSpec(ON_CALENDAR, asset=ONE_MIN, partitions_def=STOCK_MONTHS,
                   description="every bar lies on an XSHG trading day, within 09:30–11:30 or "
                   "13:00–15:00"),
    AssetCheckSpec(FINITE_BARS, asset=ONE_MIN, partitions_def=STOCK_MONTHS,
                   description="no NaN or ±Infinity in open, high, low, close, volume or amount"),
    AssetCheckSpec(BARS_PER_DAY, asset=ONE_MIN, partitions_def=STOCK_MONTHS,
                   description="no code has more than 241 one-minute bars on a day (240 a full "
                   "session, 241 with a separate 09:30 auction bar)"),
]


def _warn(check: str, passed: bool, metadata: dict[str, object]) -> AssetCheckResult:
    return AssetCheckResult(asset_key=ONE_MIN, check_name=check, passed=passed,
                            severity=AssetCheckSeverity.WARN, metadata=metadata)


def evaluate_conflicts(
    context: AssetCheckExecutionContext, window: MonthWindow | None
) -> AssetCheckResult:
    """Reads the conflicts the last materialization of each month recorded: a conflict is a
    fact about the landing files, which the table no longer shows once the winner is in."""
    instance = context.instance
    if window is None:
        event = instance.get_latest_materialization_event(ONE_MIN)
        found = {"last materialization": _conflicts_of(event, None)} if event else {}
    else:
        found = {}
        for start in window.month_starts():
            label = month_label(start)
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=ONE_MIN, asset_partitions=[f"{label}-01"]),
                limit=1,
            ).records
            if records:
                found[label] = _conflicts_of(records[0].event_log_entry, label)
    total = sum(found.values())
    return _warn(CONFLICTS, total == 0, {
        "conflicting_keys": total,
        "by_month": MetadataValue.json(found),
        "window": window.label if window else "all months",
    })


def _conflicts_of(entry: object, label: str | None) -> int:
    materialization = entry.asset_materialization if entry is not None else None
    if materialization is None:
        return 0
    meta = materialization.metadata
    by_month = meta.get(CONFLICTS_BY_MONTH) or meta.get("duplicate conflicts by month")
    if label is not None and by_month is not None:  # (the second key: before snake_case)
        return int(by_month.value.get(label, 0))
    value = meta.get("duplicate_conflicts") or meta.get("duplicate conflicts")
    return int(value.value) if value is not None else 0


def evaluate_calendar(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    """Bars on exchange holidays (asked of sessions.py, not of SQL) or outside the hours."""
    table = table_ident(source)
    where = window_filter("time", window)
    days = [d for (d,) in conn.execute(sql.SQL(
        "SELECT DISTINCT time::date FROM {} WHERE {} ORDER BY 1").format(table, where))]
    holidays = []
    if days:
        as_np = np.array(days, dtype="datetime64[D]")
        holidays = [d for d, ok in zip(days, sessions.trading_day_mask(as_np), strict=True)
                    if not ok]
    hours = sql.SQL(" OR ").join(
        sql.SQL("time::time BETWEEN {} AND {}").format(
            sql.Literal(f"{lo // 3600:02d}:{lo % 3600 // 60:02d}"),
            sql.Literal(f"{hi // 3600:02d}:{hi % 3600 // 60:02d}"))
        for lo, hi in sessions.SESSIONS)
    query = sql.SQL(
        "SELECT {cols}, CASE WHEN time::date = ANY({holidays}) THEN 'non_trading_day' "
        "ELSE 'outside_session' END, count(*) OVER () FROM {table} "
        "WHERE ({where}) AND (time::date = ANY({holidays}) OR NOT ({hours})) "
        "ORDER BY time, code LIMIT {limit}"
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, BAR_COLUMNS)), table=table,
             where=where, holidays=sql.Literal(holidays), hours=hours,
             limit=sql.Literal(SAMPLE))
    count, rows = offending(conn, query)
    return _warn(ON_CALENDAR, count == 0, {
        "offending_rows": count,
        "non_trading_days_with_bars": ", ".join(str(d) for d in holidays) or "none",
        "sample": sample_table(rows, [*BAR_COLUMNS, "reason"]),
        "window": window.label if window else "all months",
    })


def evaluate_finite_bars(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT {cols}, count(*) OVER () FROM {table} WHERE ({where}) AND ({cond}) "
        "ORDER BY time, code LIMIT {limit}"
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, BAR_COLUMNS)),
             table=table_ident(source), where=window_filter("time", window),
             cond=sql.SQL(NON_FINITE), limit=sql.Literal(SAMPLE))
    count, rows = offending(conn, query)
    return _warn(FINITE_BARS, count == 0, {
        "offending_rows": count,
        "sample": sample_table(rows, BAR_COLUMNS),
        "window": window.label if window else "all months",
    })


def evaluate_bars_per_day(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT code, time::date AS day, count(*) AS bars, count(*) OVER () FROM {table} "
        "WHERE ({where}) GROUP BY 1, 2 HAVING count(*) > {most} ORDER BY 2, 1 LIMIT {limit}"
    ).format(table=table_ident(source), where=window_filter("time", window),
             most=sql.Literal(MAX_BARS_PER_DAY), limit=sql.Literal(SAMPLE))
    count, rows = offending(conn, query)
    return _warn(BARS_PER_DAY, count == 0, {
        "offending_code_days": count,
        "sample": sample_table(rows, ["code", "day", "bars"]),
        "window": window.label if window else "all months",
    })


@multi_asset_check(
    specs=ONE_MIN_SPECS,
    can_subset=True,
    name="stock_1min_checks",
    description="Integrity of stock_1min: conflicting duplicates, calendar, finite values, "
    "bars per day",
)
def stock_1min_checks(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    selected = {key.name for key in context.selected_asset_check_keys}
    if CONFLICTS in selected:
        yield from per_month(context, ONE_MIN, CONFLICTS,
                             lambda w: evaluate_conflicts(context, w))
    with postgres.connect() as conn:
        tune_for_batch(conn)
        for name, evaluate in ((ON_CALENDAR, evaluate_calendar),
                               (FINITE_BARS, evaluate_finite_bars),
                               (BARS_PER_DAY, evaluate_bars_per_day)):
            if name in selected:
                yield from per_month(context, ONE_MIN, name,
                                     lambda w, f=evaluate: f(conn, STOCK_TABLE, w))
