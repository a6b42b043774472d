"""The stock domain's Definitions, without resources: the top-level definitions merge it and
provide `postgres` (PostgresResource)."""

from dagster import Definitions

from .assets import stock_1min, stock_monthly_kline
from .checks import stock_monthly_kline_checks
from .jobs import monthly_kline_full_refresh, stock_monthly_job
from .schedules import stock_current_month

defs = Definitions(
    assets=[stock_1min, stock_monthly_kline],
    asset_checks=[stock_monthly_kline_checks],
    jobs=[stock_monthly_job, monthly_kline_full_refresh],
    schedules=[stock_current_month],
)
