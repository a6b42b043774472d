"""Everything of the price domain, merged into the project's Definitions."""

from dagster import Definitions

from kline_assets.prices.assets import ALL
from kline_assets.prices.checks import (
    aggregate_checks,
    live_features_fresh,
    price_aligned_checks,
)
from kline_assets.prices.jobs import price_assets_job, prices_watch_job
from kline_assets.prices.live_job import live_refresh_job
from kline_assets.prices.run_jobs import RUN_JOBS
from kline_assets.prices.schedules import live_month_daily, prices_watch
from kline_assets.prices.sensors import live_prices_sensor

defs = Definitions(
    assets=ALL,
    asset_checks=[*price_aligned_checks, *aggregate_checks, live_features_fresh],
    jobs=[price_assets_job, live_refresh_job, prices_watch_job, *RUN_JOBS],
    schedules=[live_month_daily, prices_watch],
    sensors=[live_prices_sensor],
)
