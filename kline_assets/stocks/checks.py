"""The seed's validation queries (section 6.1) as asset checks on stock_monthly_kline.

One op runs them all on one connection. In a partitioned run they look at the run's months
(one partition or a backfill range); run on their own (Dagster cannot launch unpartitioned
checks for a partition), at the whole table. Each result carries the
number of offending rows, up to 20 of them, and the query it ran.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset_check,
)
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource

from .monthly import CLEAN_PREDICATE, VIEW, tune_for_batch
from .partitions import MonthWindow, window_for_keys

SAMPLE = 20
ROW_COLUMNS = ["month", "code", "name", "open", "high", "low", "close", "volume", "amount"]


@dataclass(frozen=True)
class RowRule:
    """A seed query: rows of stock_monthly_kline matching `condition` are offending."""

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
)
ROW_COUNT = "row_count_matches_source"

SPECS = [
    AssetCheckSpec(rule.name, asset="stock_monthly_kline", description=rule.description)
    for rule in ROW_RULES
] + [
    AssetCheckSpec(
        ROW_COUNT,
        asset="stock_monthly_kline",
        description="one row per distinct (code, month) of the clean 1-minute bars",
    )
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
            "offending rows": count,
            "sample (first 20)": _records([r[:-1] for r in rows], ROW_COLUMNS),
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
        source=sql.Identifier(*source.split(".")),
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
            "expected rows": int(expected),
            "offending rows": int(mismatches),
            "sample (first 20)": _records(
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
    description="The seed's validation queries on stock_monthly_kline",
)
def stock_monthly_kline_checks(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    window = check_window(context)
    selected = {key.name for key in context.selected_asset_check_keys}
    with postgres.connect() as conn:
        tune_for_batch(conn)
        for rule in ROW_RULES:
            if rule.name in selected:
                yield evaluate_rule(conn, rule, window)
        if ROW_COUNT in selected:
            yield evaluate_row_count(conn, postgres.stock_table, window)
