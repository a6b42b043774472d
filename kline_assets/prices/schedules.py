"""Schedules of the price domain.

* `live_month_daily` — the daily safety net of `live`: the current month recomputed in full,
  whatever the incremental refreshes did (a failed refresh, a source row edited in place, a
  cohort changed). On by default where KLINE_LIVE_REFRESH=on, like the live sensor.
* `prices_watch` — every 15 minutes: observe the source table and check that `live` features
  keep up. raw_price_records is written by scrapers outside this project; observing it keeps
  its page current (newest recorded_at, row count, data version), and the same run evaluates
  the live_features_fresh check, which warns when `live` falls behind during the day.
"""

from __future__ import annotations

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from kline_assets.lib.months import current_month, month_key
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.jobs import price_assets_job, prices_watch_job
from kline_assets.prices.partitions import LIVE, price_partition_key
from kline_assets.prices.sensors import LIVE_REFRESH_ENV, LIVE_WRITER_TAG, live_refresh_enabled


@schedule(
    job=price_assets_job,
    cron_schedule="30 3 * * *",
    execution_timezone=PRICE_TZ,
    default_status=(DefaultScheduleStatus.RUNNING if live_refresh_enabled()
                    else DefaultScheduleStatus.STOPPED),
    description=(
        "Daily at 03:30 Tokyo: every price asset of the current month of `live`, recomputed "
        "in full — the safety net under the 15-minute incremental refresh. On by default "
        f"where {LIVE_REFRESH_ENV}=on."
    ),
)
def live_month_daily(context: ScheduleEvaluationContext) -> RunRequest:
    month = month_key(current_month(PRICE_TZ, context.scheduled_execution_time))
    return RunRequest(
        partition_key=price_partition_key(LIVE, month),
        run_key=f"{LIVE}:daily:{month}:{context.scheduled_execution_time:%Y-%m-%d}",
        tags={"kline/trigger": "live_month_daily", LIVE_WRITER_TAG: LIVE})


prices_watch = ScheduleDefinition(
    name="prices_watch",
    job=prices_watch_job,
    cron_schedule="*/15 * * * *",
    execution_timezone=PRICE_TZ,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Observe raw_price_records and check live features' freshness, every 15 min.",
)
