"""Jobs of the stock domain.

* `stock_monthly_job`: both assets (and their checks) for the selected month partition(s) —
  what the current-month schedule launches and what a backfill runs.
* `monthly_kline_full_refresh`: one refresh of stock_monthly_kline over a window of months
  (default 2000-01 through the current month) in a single run, like `kline stocks refresh`;
  it records a materialization for every month partition it covered.
"""

from collections.abc import Iterator

from dagster import (
    AssetMaterialization,
    AssetSelection,
    Config,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from psycopg import sql
from pydantic import Field

from kline_assets.resources.postgres import PostgresResource

from . import monthly
from .partitions import FIRST_MONTH, MonthWindow, month_label, window_for_months

stock_monthly_job = define_asset_job(
    "stock_monthly_job",
    selection=AssetSelection.assets("stock_1min", "stock_monthly_kline"),
    description="Load the month's 1-minute bars and refresh its monthly K-lines, with checks.",
)


class FullRefreshConfig(Config):
    from_month: str = Field(default=FIRST_MONTH, description="first month, YYYY-MM")
    to_month: str | None = Field(default=None, description="last month, YYYY-MM; "
                                 "default: the current Beijing month")
    force: bool = Field(default=False, description="TimescaleDB: force => true")
    recreate: bool = Field(default=False, description="drop stock_monthly_kline (CASCADE) and "
                           "create it again first; the run log lists what was dropped")


def month_counts(postgres: PostgresResource, window: MonthWindow) -> dict[str, int]:
    with postgres.connect() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT month, count(*) FROM {} WHERE month >= %s AND month < %s GROUP BY 1"
            ).format(sql.Identifier(monthly.VIEW)),
            (window.start, window.end),
        ).fetchall()
    return {month_label(m): int(n) for m, n in rows}


@op(description="Refresh stock_monthly_kline over a window of months in one go", out={})
def refresh_monthly_kline(
    context: OpExecutionContext, config: FullRefreshConfig, postgres: PostgresResource
) -> Iterator[AssetMaterialization]:
    window = window_for_months(config.from_month, config.to_month)
    report = monthly.refresh(
        postgres, window, force=config.force, recreate=config.recreate,
        announce=context.log.info,
    )
    context.log.info(
        f"{monthly.VIEW} {window.label} on {report.path.label}: {report.rows} rows, "
        f"{report.codes} codes, {report.months} months in {report.seconds:.1f}s"
    )
    counts = month_counts(postgres, window)
    for start in window.month_starts():
        label = month_label(start)
        yield AssetMaterialization(
            asset_key="stock_monthly_kline",
            partition=f"{label}-01",
            metadata={"rows": counts.get(label, 0), "path": report.path.value,
                      "refreshed by": "monthly_kline_full_refresh"},
        )


@job(
    name="monthly_kline_full_refresh",
    description="One refresh of stock_monthly_kline from 2000-01 (or from_month) to now.",
)
def monthly_kline_full_refresh() -> None:
    refresh_monthly_kline()
