"""Every 15 minutes: observe the source table and check that `live` features keep up.

raw_price_records is written by scrapers outside this project; observing it on a schedule
keeps its page current (newest recorded_at, row count, data version), and the same run
evaluates the live_features_fresh check, which warns when the sensor-driven refresh of `live`
falls behind during the day.
"""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from kline_assets.prices.jobs import prices_watch_job
from kline_assets.settings import PRICE_TZ

prices_watch = ScheduleDefinition(
    name="prices_watch",
    job=prices_watch_job,
    cron_schedule="*/15 * * * *",
    execution_timezone=PRICE_TZ,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Observe raw_price_records and check live features' freshness, every 15 min.",
)
