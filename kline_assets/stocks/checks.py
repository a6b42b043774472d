"""Asset checks of the stock domain: validation queries on stock_monthly_kline, the
integrity of stock_1min (conflicting duplicates, bars off the XSHG calendar, non-finite values),
the freshness of the last month and whether the trading calendar reaches far enough ahead.

One op per asset runs its checks on one connection. The checks are partitioned like their
assets, so the UI shows a result per month: a run of one partition yields Dagster's usual check
results; a backfill run over a range of months evaluates each month and records one evaluation
per month partition. Run without a partition, they look at the whole table. Each result
carries the number of offending rows, up to 20 of them, and the query it ran.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
    multi_asset_check,
)
from psycopg import sql

from kline_assets.partitioned_checks import as_evaluation
from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.settings import STOCK_TZ
from kline_assets.stocks import STOCK_TABLE

from . import sessions
from .monthly import (
    CLEAN_PREDICATE,
    VIEW,
    StoragePath,
    refresh_state,
    storage_path,
    tune_for_batch,
)
from .partitions import STOCK_MONTHS, MonthWindow, month_label, window_for_keys

SAMPLE = 20
VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "amount"]
ROW_COLUMNS = ["month", "code", "name", *VALUE_COLUMNS]
BAR_COLUMNS = ["time", "code", "name", *VALUE_COLUMNS]
NON_FINITE = " OR ".join(f"{c} IN ('NaN', 'Infinity', '-Infinity')" for c in VALUE_COLUMNS)


@dataclass(frozen=True)
class RowRule:
    """A validation query: rows of stock_monthly_kline matching `condition` are offending."""

    name: str
    condition: str
    description: str
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR


ROW_RULES = (
    RowRule(
        "monthly_move_under_1000pct",
        "open > 0 AND (close - open) / open > 10.0",
        "(A) no month rises more than 1000% from open to close (where open > 0)",
        AssetCheckSeverity.WARN,
    ),
    RowRule(
        "no_negative_volume_or_amount",
        "volume < 0 OR amount < 0",
        "(B) volume and amount are never negative",
    ),
    RowRule(
        "consistent_price_range",
        "high < low OR high < open OR high < close OR low > open OR low > close",
        "(C) high ≥ low and high/low bound open and close",
    ),
    RowRule(
        "amount_with_volume",
        "volume > 0 AND amount = 0",
        "(D) a month with volume has a turnover",
        AssetCheckSeverity.WARN,
    ),
    RowRule("name_present", "name IS NULL", "(E) every month carries the security name"),
    RowRule(
        "finite_values",
        NON_FINITE,
        "(F) open, high, low, close, volume and amount are finite: PostgreSQL double precision "
        "holds 'NaN' and '±Infinity', which the cleaning rule's comparisons let through",
    ),
)
ROW_COUNT = "row_count_matches_source"
POLICY = "refresh_policy_not_failing"

SPECS = [
    AssetCheckSpec(rule.name, asset="stock_monthly_kline", description=rule.description,
                   partitions_def=STOCK_MONTHS)
    for rule in ROW_RULES
] + [
    AssetCheckSpec(
        ROW_COUNT,
        asset="stock_monthly_kline",
        description="one row per distinct (code, month) of the clean 1-minute bars",
        partitions_def=STOCK_MONTHS,
    ),
    AssetCheckSpec(
        POLICY,
        asset="stock_monthly_kline",
        description="TimescaleDB: the continuous aggregate's refresh policy did not fail its "
                    "last run (warning; the last error is in the metadata). Plain "
                    "PostgreSQL has no policy and passes",
        partitions_def=STOCK_MONTHS,
    ),
]


def check_window(context: AssetCheckExecutionContext) -> MonthWindow | None:
    """The run's months, or None (whole table) when the run is not partitioned."""
    op = context.op_execution_context
    if op.has_partition_key_range:  # a backfill run over several months
        keys = op.partition_key_range
        return window_for_keys(keys.start, keys.end)
    if op.has_partition_key:
        return window_for_keys(op.partition_key, op.partition_key)
    return None


def per_month(
    window: MonthWindow | None, evaluate: Callable[[MonthWindow | None], AssetCheckResult]
) -> Iterator[AssetCheckResult | AssetCheckEvaluation]:
    """`evaluate` over the run's partition, or over each month of a backfill range.

    A check result of a ranged run would be recorded without a partition (Dagster knows no
    partition for it), so each month of a range is recorded as its own evaluation.
    """
    if window is None:  # the whole table, recorded without a partition
        yield as_month_evaluation(evaluate(None), None)
    elif window.months == 1:
        yield evaluate(window)
    else:
        for month in window.split():
            yield as_month_evaluation(evaluate(month), month)


def as_month_evaluation(result: AssetCheckResult, month: MonthWindow | None
                        ) -> AssetCheckEvaluation:
    """A check result recorded for the partition of `month` (None: no partition)."""
    return as_evaluation(result, f"{month_label(month.start)}-01" if month else None)


def _window_filter(column: str, window: MonthWindow | None) -> sql.Composable:
    if window is None:
        return sql.SQL("TRUE")
    return sql.SQL("{col} >= {start} AND {col} < {end}").format(
        col=sql.Identifier(column), start=sql.Literal(window.start), end=sql.Literal(window.end)
    )


def _records(rows: list[tuple], columns: list[str]) -> MetadataValue:
    def plain(v: object) -> object:
        return v if isinstance(v, str | int | float | bool) or v is None else str(v)

    return MetadataValue.table(
        records=[TableRecord(dict(zip(columns, map(plain, r), strict=True))) for r in rows],
        schema=TableSchema(columns=[TableColumn(c) for c in columns]),
    )


def _sql_text(conn: psycopg.Connection, query: sql.Composable) -> MetadataValue:
    return MetadataValue.md(f"```sql\n{query.as_string(conn)}\n```")


def evaluate_rule(
    conn: psycopg.Connection, rule: RowRule, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT {cols}, count(*) OVER () FROM {view} WHERE ({window}) AND ({cond}) "
        "ORDER BY month, code LIMIT {limit}"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, ROW_COLUMNS)),
        view=sql.Identifier(VIEW),
        window=_window_filter("month", window),
        cond=sql.SQL(rule.condition),
        limit=sql.Literal(SAMPLE),
    )
    rows = conn.execute(query).fetchall()
    count = int(rows[0][-1]) if rows else 0
    return AssetCheckResult(
        asset_key="stock_monthly_kline",
        check_name=rule.name,
        passed=count == 0,
        severity=rule.severity,
        metadata={
            "offending_rows": count,
            "sample": _records([r[:-1] for r in rows], ROW_COLUMNS),
            "window": window.label if window else "all months",
            "query": _sql_text(conn, sql.SQL("SELECT * FROM {} WHERE {}").format(
                sql.Identifier(VIEW), sql.SQL(rule.condition))),
        },
    )


def evaluate_row_count(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    """The aggregate has exactly the (code, month) pairs of the clean source bars."""
    query = sql.SQL(
        """WITH expected AS (
    SELECT DISTINCT code, date_trunc('month', time) AS month FROM {source}
    WHERE ({src_window}) AND {clean}
), actual AS (
    SELECT code, month, count(*) AS copies FROM {view} WHERE ({out_window}) GROUP BY 1, 2
), diff AS (
    SELECT coalesce(e.code, a.code) AS code, coalesce(e.month, a.month) AS month,
           CASE WHEN a.code IS NULL THEN 'missing from stock_monthly_kline'
                WHEN e.code IS NULL THEN 'no clean source bars'
                ELSE 'duplicated' END AS problem
    FROM expected e FULL JOIN actual a ON a.code = e.code AND a.month = e.month
    WHERE a.code IS NULL OR e.code IS NULL OR a.copies > 1
)
SELECT (SELECT count(*) FROM expected), (SELECT sum(copies) FROM actual),
       (SELECT count(*) FROM diff),
       (SELECT coalesce(json_agg(d ORDER BY d.month, d.code), '[]')
        FROM (SELECT * FROM diff ORDER BY month, code LIMIT {limit}) d)"""
    ).format(
        source=table_ident(source),
        src_window=_window_filter("time", window),
        out_window=_window_filter("month", window),
        clean=sql.SQL(CLEAN_PREDICATE),
        view=sql.Identifier(VIEW),
        limit=sql.Literal(SAMPLE),
    )
    expected, actual, mismatches, sample = conn.execute(query).fetchone()
    actual = int(actual or 0)
    return AssetCheckResult(
        asset_key="stock_monthly_kline",
        check_name=ROW_COUNT,
        passed=mismatches == 0 and actual == expected,
        metadata={
            "rows": actual,
            "expected_rows": int(expected),
            "offending_rows": int(mismatches),
            "sample": _records(
                [(d["month"], d["code"], d["problem"]) for d in sample],
                ["month", "code", "problem"],
            ),
            "window": window.label if window else "all months",
        },
    )


@multi_asset_check(
    specs=SPECS,
    can_subset=True,
    name="stock_monthly_kline_checks",
    description="Validation queries on stock_monthly_kline",
)
def stock_monthly_kline_checks(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    window = check_window(context)
    selected = {key.name for key in context.selected_asset_check_keys}
    with postgres.connect() as conn:
        tune_for_batch(conn)
        yield from monthly_kline_results(conn, window, selected)


def monthly_kline_evaluations(
    conn: psycopg.Connection, months: list[MonthWindow]
) -> list[AssetCheckEvaluation]:
    """Every check of stock_monthly_kline on each of `months`, recorded for its partition (a
    refresh outside an asset run re-runs the checks of the months it reports)."""
    return [as_month_evaluation(result, month) for month in months
            for result in monthly_kline_results(conn, month)]


def monthly_kline_results(
    conn: psycopg.Connection, window: MonthWindow | None, selected: set[str] | None = None
) -> Iterator[AssetCheckResult | AssetCheckEvaluation]:
    """The selected checks of stock_monthly_kline (default all) over `window`, per month."""
    for rule in ROW_RULES:
        if selected is None or rule.name in selected:
            yield from per_month(window, lambda w, rule=rule: evaluate_rule(conn, rule, w))
    if selected is None or ROW_COUNT in selected:
        yield from per_month(window, lambda w: evaluate_row_count(conn, STOCK_TABLE, w))
    if selected is None or POLICY in selected:
        yield from per_month(window, lambda w: evaluate_policy(conn, w))


def evaluate_policy(conn: psycopg.Connection, window: MonthWindow | None) -> AssetCheckResult:
    """Warn when the refresh policy's last run failed: later refreshes by the policy would
    leave the aggregate behind while every materialization still succeeds."""
    path = storage_path(conn)
    if path is StoragePath.TIMESCALEDB:
        meta = {k: v for k, v in refresh_state(conn, path, window).items()
                if k.startswith("policy_")}
    else:
        meta = {"policy_job": "none (plain PostgreSQL: maintained per month by SQL)"}
    failing = bool(meta.get("policy_failing", False))
    return AssetCheckResult(asset_key="stock_monthly_kline", check_name=POLICY, passed=not failing,
                            severity=AssetCheckSeverity.WARN, metadata=meta)


# --------------------------------------------------------------------------- stock_1min

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
    where = _window_filter("time", window)
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
    rows = conn.execute(query).fetchall()
    count = int(rows[0][-1]) if rows else 0
    return _warn(ON_CALENDAR, count == 0, {
        "offending_rows": count,
        "non_trading_days_with_bars": ", ".join(str(d) for d in holidays) or "none",
        "sample": _records([r[:-1] for r in rows], [*BAR_COLUMNS, "reason"]),
        "window": window.label if window else "all months",
    })


def evaluate_finite_bars(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT {cols}, count(*) OVER () FROM {table} WHERE ({where}) AND ({cond}) "
        "ORDER BY time, code LIMIT {limit}"
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, BAR_COLUMNS)),
             table=table_ident(source), where=_window_filter("time", window),
             cond=sql.SQL(NON_FINITE), limit=sql.Literal(SAMPLE))
    rows = conn.execute(query).fetchall()
    count = int(rows[0][-1]) if rows else 0
    return _warn(FINITE_BARS, count == 0, {
        "offending_rows": count,
        "sample": _records([r[:-1] for r in rows], BAR_COLUMNS),
        "window": window.label if window else "all months",
    })


def evaluate_bars_per_day(
    conn: psycopg.Connection, source: str, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT code, time::date AS day, count(*) AS bars, count(*) OVER () FROM {table} "
        "WHERE ({where}) GROUP BY 1, 2 HAVING count(*) > {most} ORDER BY 2, 1 LIMIT {limit}"
    ).format(table=table_ident(source), where=_window_filter("time", window),
             most=sql.Literal(MAX_BARS_PER_DAY), limit=sql.Literal(SAMPLE))
    rows = conn.execute(query).fetchall()
    count = int(rows[0][-1]) if rows else 0
    return _warn(BARS_PER_DAY, count == 0, {
        "offending_code_days": count,
        "sample": _records([r[:-1] for r in rows], ["code", "day", "bars"]),
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
    window = check_window(context)
    selected = {key.name for key in context.selected_asset_check_keys}
    if CONFLICTS in selected:
        yield from per_month(window, lambda w: evaluate_conflicts(context, w))
    with postgres.connect() as conn:
        tune_for_batch(conn)
        for name, evaluate in ((ON_CALENDAR, evaluate_calendar),
                               (FINITE_BARS, evaluate_finite_bars),
                               (BARS_PER_DAY, evaluate_bars_per_day)):
            if name in selected:
                yield from per_month(window, lambda w, f=evaluate: f(conn, STOCK_TABLE, w))


# --------------------------------------------------------------------------- freshness

MONTHLY = AssetKey("stock_monthly_kline")
LOADED_AT = time(16, 30)
"""When the stock_current_month schedule loads a trading day (after the 15:00 close)."""


def last_month_freshness(instance: DagsterInstance, now: datetime) -> AssetCheckResult:
    """The month holding the last trading day that should be loaded by `now` was materialized
    no earlier than the load of the trading day before it: at most one trading day behind."""
    local = now.astimezone(ZoneInfo(STOCK_TZ)).replace(tzinfo=None)
    day = pd.Timestamp(local.date())
    if not (sessions.is_trading_day(day) and local.time() >= LOADED_AT):
        day = sessions.previous_trading_day(day)
    due = datetime.combine(sessions.previous_trading_day(day).date(), LOADED_AT)
    due_utc = due.replace(tzinfo=ZoneInfo(STOCK_TZ)).timestamp()
    key = f"{month_label(day.to_pydatetime())}-01"
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=MONTHLY, asset_partitions=[key]), limit=1).records
    last = records[0].timestamp if records else None
    meta: dict[str, object] = {
        "partition": key,
        "last_trading_day": f"{day:%Y-%m-%d}",
        "loaded_no_earlier_than": f"{due:%Y-%m-%d %H:%M} Beijing",
        "last_materialized_at": (datetime.fromtimestamp(last, ZoneInfo(STOCK_TZ))
                                 .strftime("%Y-%m-%d %H:%M") + " Beijing") if last else "never",
    }
    return AssetCheckResult(passed=last is not None and last >= due_utc,
                            severity=AssetCheckSeverity.WARN, metadata=meta)


@asset_check(
    asset=MONTHLY,
    description="Freshness: the month of the last trading day was loaded at most one trading "
    "day late (materialized no earlier than 16:30 Beijing of the trading day before it). "
    "Evaluated after every stock_current_month run and by the stocks_watch schedule.",
)
def last_month_loaded(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return last_month_freshness(context.instance, datetime.now(UTC))


# --------------------------------------------------------------------------- calendar

CALENDAR_COVERAGE = "calendar_covers_next_30_days"
CALENDAR_HORIZON_DAYS = 30


def calendar_coverage(now: datetime, days: int = CALENDAR_HORIZON_DAYS) -> AssetCheckResult:
    """Whether every day of the `days` Beijing days from `now` on is known to the calendar.

    Fails (as a warning, while there is still time to act) when one of them lies in a year
    that neither exchange-calendars nor the closures file covers, or when the closures file
    cannot be read — from then on every tick, landing file and hand-over of such a day is
    refused. Passes with `calendar: provisional (…)` while the days rely on the file."""
    today = now.astimezone(ZoneInfo(STOCK_TZ)).date()
    last = today + timedelta(days=days - 1)
    status = sessions.calendar_status(today, last)
    source = (f"provisional (closures file {status.closures_path})" if status.provisional
              else f"exchange-calendars {status.package_version}")
    meta: dict[str, object] = {
        "window": f"{today}..{last}",
        "calendar": source,
        "package_last_day": f"{status.package_last} (exchange-calendars "
                            f"{status.package_version})",
        "closures_file": MetadataValue.path(str(status.closures_path)),
        "closures_file_years": ", ".join(map(str, status.file_years)) or "none",
    }
    if status.uncovered_years:
        meta["uncovered_years"] = ", ".join(map(str, status.uncovered_years))
    if status.error:
        meta["error"] = status.error
    if status.ignored:
        meta["ignored_lines"] = MetadataValue.md("\n".join(f"* {i}" for i in status.ignored))
    return AssetCheckResult(passed=status.covered, severity=AssetCheckSeverity.WARN,
                            metadata=meta)


@asset_check(
    asset=ONE_MIN,
    description="The XSHG calendar knows every day of the next 30 (Beijing): from "
    "exchange-calendars, or for years beyond it from the closures file (KLINE_XSHG_CLOSURES; "
    "the result then says `calendar: provisional`). Warns when a day lies in a year neither "
    "covers, or the file has a bad line: add the exchange's announced closures of that year "
    "to the file. Evaluated by the stocks_watch schedule and after every stock_monthly_job run.",
)
def calendar_covers_next_30_days(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return calendar_coverage(datetime.now(UTC))
