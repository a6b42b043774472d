"""Validation queries on stock_monthly_kline (the data-cleaning rules' result) and the health
of its refresh policy, one result per month partition."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.stocks import STOCK_TABLE

from ..monthly import (
    CLEAN_PREDICATE,
    VIEW,
    StoragePath,
    refresh_state,
    storage_path,
    tune_for_batch,
)
from ..partitions import STOCK_MONTHS, MonthWindow
from .common import (
    NON_FINITE,
    ROW_COLUMNS,
    SAMPLE,
    as_month_evaluation,
    offending,
    per_month,
    sample_table,
    sql_text,
    window_filter,
)

MONTHLY = AssetKey("stock_monthly_kline")


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


def evaluate_rule(
    conn: psycopg.Connection, rule: RowRule, window: MonthWindow | None
) -> AssetCheckResult:
    query = sql.SQL(
        "SELECT {cols}, count(*) OVER () FROM {view} WHERE ({window}) AND ({cond}) "
        "ORDER BY month, code LIMIT {limit}"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, ROW_COLUMNS)),
        view=sql.Identifier(VIEW),
        window=window_filter("month", window),
        cond=sql.SQL(rule.condition),
        limit=sql.Literal(SAMPLE),
    )
    count, rows = offending(conn, query)
    return AssetCheckResult(
        asset_key="stock_monthly_kline",
        check_name=rule.name,
        passed=count == 0,
        severity=rule.severity,
        metadata={
            "offending_rows": count,
            "sample": sample_table(rows, ROW_COLUMNS),
            "window": window.label if window else "all months",
            "query": sql_text(conn, sql.SQL("SELECT * FROM {} WHERE {}").format(
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
        src_window=window_filter("time", window),
        out_window=window_filter("month", window),
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
            "sample": sample_table(
                [(d["month"], d["code"], d["problem"]) for d in sample],
                ["month", "code", "problem"],
            ),
            "window": window.label if window else "all months",
        },
    )


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


def _evaluators(conn: psycopg.Connection, selected: set[str] | None = None
                ) -> list[tuple[str, Callable[[MonthWindow | None], AssetCheckResult]]]:
    """(check name, its evaluation over a window) of the selected checks (default all)."""
    out: list[tuple[str, Callable[[MonthWindow | None], AssetCheckResult]]] = [
        (rule.name, lambda w, rule=rule: evaluate_rule(conn, rule, w)) for rule in ROW_RULES]
    out += [(ROW_COUNT, lambda w: evaluate_row_count(conn, STOCK_TABLE, w)),
            (POLICY, lambda w: evaluate_policy(conn, w))]
    return [(name, f) for name, f in out if selected is None or name in selected]


@multi_asset_check(
    specs=SPECS,
    can_subset=True,
    name="stock_monthly_kline_checks",
    description="Validation queries on stock_monthly_kline",
)
def stock_monthly_kline_checks(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    selected = {key.name for key in context.selected_asset_check_keys}
    with postgres.connect() as conn:
        tune_for_batch(conn)
        for name, evaluate in _evaluators(conn, selected):
            yield from per_month(context, MONTHLY, name, evaluate)


def monthly_kline_evaluations(
    conn: psycopg.Connection, months: list[MonthWindow]
) -> list[AssetCheckEvaluation]:
    """Every check of stock_monthly_kline on each of `months`, recorded for its partition (a
    refresh outside an asset run re-runs the checks of the months it reports)."""
    return [as_month_evaluation(evaluate(month), month) for month in months
            for _, evaluate in _evaluators(conn)]
