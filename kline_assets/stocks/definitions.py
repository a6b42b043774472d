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
from .vendor.dagster import (
    vendor_bars_match_kernel,
    vendor_history_sensor,
    vendor_monthly_refresh,
    vendor_stream_trim,
    vendor_stream_trim_nightly,
)

defs = Definitions(
    assets=[stock_1min, stock_monthly_kline, stock_1min_synth],
    asset_checks=[stock_1min_checks, stock_monthly_kline_checks, last_month_loaded,
                  calendar_covers_next_30_days, vendor_bars_match_kernel],
    jobs=[stock_monthly_job, monthly_kline_full_refresh, stocks_watch_job, stock_handover_job,
          vendor_monthly_refresh, vendor_stream_trim],
    schedules=[stock_current_month, stocks_watch, stock_handover_nightly,
               vendor_stream_trim_nightly],
    sensors=[vendor_history_sensor],
)
