"""Jobs of the stock domain.

* `stock_monthly_job`: both assets (and their checks) for the selected month partition(s) —
  what the current-month schedule launches and what a backfill runs.
* `monthly_kline_full_refresh`: one refresh of stock_monthly_kline over a window of months
  (default 2000-01 through the current month) in a single run, like `kline stocks refresh`;
  it records a materialization for each month of the window that holds rows (not for empty
  months) and evaluates the asset's checks for those months again.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    Config,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from pydantic import Field

from kline_assets.resources.postgres import PostgresResource

from . import monthly
from .checks import CALENDAR_COVERAGE
from .partitions import FIRST_MONTH, window_for_months
from .refresh_events import refresh_events

stocks_watch_job = define_asset_job(
    "stocks_watch",
    selection=AssetSelection.checks(
        AssetCheckKey(AssetKey("stock_monthly_kline"), "last_month_loaded"),
        AssetCheckKey(AssetKey("stock_1min"), CALENDAR_COVERAGE),
    ),
    description="Evaluate the last_month_loaded freshness check of stock_monthly_kline and "
    "whether the trading calendar covers the next 30 days (calendar_covers_next_30_days).",
)

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


@op(description="Refresh stock_monthly_kline over a window of months in one go", out={})
def refresh_monthly_kline(
    context: OpExecutionContext, config: FullRefreshConfig, postgres: PostgresResource
) -> Iterator[AssetMaterialization | AssetCheckEvaluation]:
    window = window_for_months(config.from_month, config.to_month)
    report = monthly.refresh(
        postgres, window, force=config.force, recreate=config.recreate,
        announce=context.log.info,
    )
    context.log.info(
        f"{monthly.VIEW} {window.label} on {report.path.label}: {report.rows} rows, "
        f"{report.codes} codes, {report.months} months in {report.seconds:.1f}s"
    )
    events = refresh_events(postgres, report, refreshed_by="monthly_kline_full_refresh")
    held = sum(isinstance(e, AssetMaterialization) for e in events)
    context.log.info(f"{held} of {window.months} months hold rows: materializations and checks "
                     "are reported for those")
    yield from events


@job(
    name="monthly_kline_full_refresh",
    description="One refresh of stock_monthly_kline from 2000-01 (or from_month) to now.",
)
def monthly_kline_full_refresh() -> None:
    refresh_monthly_kline()
