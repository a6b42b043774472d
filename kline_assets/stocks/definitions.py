"""The stock domain's Definitions; the top-level definitions merge it and provide the
resources (`postgres`, `postgres_io_manager` that stock_1min writes through, and `redis` that
the hand-over of today's bars reads)."""

from dagster import Definitions

from .assets import stock_1min, stock_monthly_kline
from .checks import (
    calendar_covers_next_30_days,
    last_month_loaded,
    stock_1min_checks,
    stock_monthly_kline_checks,
)
from .jobs import monthly_kline_full_refresh, stock_monthly_job, stocks_watch_job
from .schedules import stock_current_month, stocks_watch
from .ticks.assets import stock_1min_synth, stock_handover_job, stock_handover_nightly

defs = Definitions(
    assets=[stock_1min, stock_monthly_kline, stock_1min_synth],
    asset_checks=[stock_1min_checks, stock_monthly_kline_checks, last_month_loaded,
                  calendar_covers_next_30_days],
    jobs=[stock_monthly_job, monthly_kline_full_refresh, stocks_watch_job, stock_handover_job],
    schedules=[stock_current_month, stocks_watch, stock_handover_nightly],
)
