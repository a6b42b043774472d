"""What a refresh of stock_monthly_kline outside an asset run tells Dagster.

The `monthly_kline_full_refresh` job and `kline stocks refresh` refresh any window of months in
one go. The asset page should then show what really changed: a materialization for each month
of the window that holds rows (never for empty months: the partition bars show where data is),
carrying the row count, the storage path and, on the latest month, the candlestick chart — and
the asset's checks evaluated again for exactly those months. The job yields these events; the
CLI records them through `record_in_dagster`, a small in-process run of its own: runless check
evaluations cannot be reported twice for the same partition in Dagster 1.13 (the
asset_check_executions unique index includes the empty runless run id), and a run also keeps
the CLI's log beside the materializations.
"""

from __future__ import annotations

from dagster import (
    AssetCheckEvaluation,
    AssetMaterialization,
    DagsterInstance,
    ExecuteInProcessResult,
    MetadataValue,
    job,
    op,
)
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource

from . import monthly
from .checks import monthly_kline_evaluations
from .partitions import MonthWindow, month_label
from .plots import candlestick_markdown
from .sessions import calendar_metadata

ASSET = "stock_monthly_kline"


def month_stats(postgres: PostgresResource, window: MonthWindow) -> dict[str, tuple[int, int]]:
    """month label → (rows, codes) of stock_monthly_kline for the months that hold rows."""
    with postgres.connect() as conn:
        rows = conn.execute(
            sql.SQL("SELECT month, count(*), count(DISTINCT code) FROM {} "
                    "WHERE month >= %s AND month < %s GROUP BY 1 ORDER BY 1"
                    ).format(sql.Identifier(monthly.VIEW)),
            (window.start, window.end),
        ).fetchall()
    return {month_label(m): (int(n), int(c)) for m, n, c in rows}


def chart_metadata(postgres: PostgresResource, window: MonthWindow, code: str | None = None,
                   months: int = 24) -> dict[str, object]:
    """The candlestick of `code` (default: the largest turnover of the window's last month)."""
    with postgres.connect() as conn:
        code = code or monthly.top_code(conn, window)
        if code is None:
            return {}
        bars = monthly.recent_months(conn, code, window.end, months)
    title = f"{code} monthly K-line to {month_label(window.month_starts()[-1])}"
    return {"chart_code": code, "chart": MetadataValue.md(candlestick_markdown(bars, title))}


def refresh_events(
    postgres: PostgresResource, report: monthly.RefreshReport, refreshed_by: str
) -> list[AssetMaterialization | AssetCheckEvaluation]:
    """Materializations of the months of `report.window` holding rows, then their checks."""
    stats = month_stats(postgres, report.window)
    with postgres.connect() as conn:
        state = monthly.refresh_state(conn, report.path, report.window)
    labels = list(stats)
    events: list[AssetMaterialization | AssetCheckEvaluation] = []
    for label in labels:
        rows, codes = stats[label]
        month = MonthWindow.of_months(label, label)
        metadata: dict[str, object] = {
            "dagster/row_count": rows, "rows_refreshed": rows, "codes": codes,
            "path": report.path.value, "refreshed_by": refreshed_by,
            **state, **calendar_metadata(month.start, month.end),
        }
        if label == labels[-1]:
            metadata.update(chart_metadata(postgres, month))
        events.append(AssetMaterialization(asset_key=ASSET, partition=f"{label}-01",
                                           metadata=metadata))
    months = [MonthWindow.of_months(label, label) for label in labels]
    with postgres.connect() as conn:
        monthly.tune_for_batch(conn)
        events.extend(monthly_kline_evaluations(conn, months))
    return events


def record_in_dagster(
    instance: DagsterInstance, events: list[AssetMaterialization | AssetCheckEvaluation],
    job_name: str, description: str,
) -> ExecuteInProcessResult:
    """Record `events` in `instance` from a run named `job_name` (not part of the Definitions:
    the work was done outside Dagster, the run only records it)."""

    @op(name="record_refresh", out={}, description=description)
    def record():
        yield from events

    @job(name=job_name, description=description)
    def recorder():
        record()

    return recorder.execute_in_process(instance=instance)
