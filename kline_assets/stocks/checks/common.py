"""What every stock check shares: one result per month partition (through
`partitioned_checks.per_partition`, as the price checks), the month filter of the queries, and
how offending rows and queries are shown (the count, up to `SAMPLE` rows, the SQL).

Run without a partition, a check looks at the whole table and is recorded without one.
"""

from collections.abc import Callable, Iterator

import psycopg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)
from psycopg import sql

from kline_assets.lib.partitioned_checks import as_evaluation, per_partition

from ..partitions import MonthWindow, month_label, window_for_keys

SAMPLE = 20
VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "amount"]
ROW_COLUMNS = ["month", "code", "name", *VALUE_COLUMNS]
BAR_COLUMNS = ["time", "code", "name", *VALUE_COLUMNS]
NON_FINITE = " OR ".join(f"{c} IN ('NaN', 'Infinity', '-Infinity')" for c in VALUE_COLUMNS)



def per_month(
    context: AssetCheckExecutionContext, asset: AssetKey, check: str,
    evaluate: Callable[[MonthWindow | None], AssetCheckResult],
) -> Iterator[AssetCheckResult | AssetCheckEvaluation]:
    """`evaluate` over the run's month, or each month of a backfill range that holds a
    materialization, or the whole table (None) in a run without partitions."""
    yield from per_partition(
        context, lambda key: evaluate(None if key is None else window_for_keys(key, key)),
        AssetCheckKey(asset, check))


def as_month_evaluation(result: AssetCheckResult, month: MonthWindow | None
                        ) -> AssetCheckEvaluation:
    """A check result recorded for the partition of `month` (None: no partition)."""
    return as_evaluation(result, f"{month_label(month.start)}-01" if month else None)


def window_filter(column: str, window: MonthWindow | None) -> sql.Composable:
    if window is None:
        return sql.SQL("TRUE")
    return sql.SQL("{col} >= {start} AND {col} < {end}").format(
        col=sql.Identifier(column), start=sql.Literal(window.start), end=sql.Literal(window.end)
    )


def sample_table(rows: list[tuple], columns: list[str]) -> MetadataValue:
    def plain(v: object) -> object:
        return v if isinstance(v, str | int | float | bool) or v is None else str(v)

    return MetadataValue.table(
        records=[TableRecord(dict(zip(columns, map(plain, r), strict=True))) for r in rows],
        schema=TableSchema(columns=[TableColumn(c) for c in columns]),
    )


def offending(conn: psycopg.Connection, query: sql.Composable) -> tuple[int, list[tuple]]:
    """How many rows a check's query found, and the sample it returned: the query ends each
    row with `count(*) OVER ()` and a LIMIT of SAMPLE."""
    rows = conn.execute(query).fetchall()
    return (int(rows[0][-1]) if rows else 0), [r[:-1] for r in rows]


def sql_text(conn: psycopg.Connection, query: sql.Composable) -> MetadataValue:
    return MetadataValue.md(f"```sql\n{query.as_string(conn)}\n```")


