"""Keeps the current month correct.

Monthly buckets are a month wide, so the TimescaleDB policy (end offset 1 hour) never
refreshes the current month before it is over, and the plain path has no policy at all. This
schedule re-runs the current month's partition of stock_monthly_job (load the month's landing
files, refresh its K-lines, run the checks) every trading day after the close; during the
first three days of a month it also re-runs the previous month, which picks up its last
trading day.
"""

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import RunRequest, ScheduleEvaluationContext, schedule

from kline_assets.settings import STOCK_TZ

from .jobs import stock_monthly_job
from .partitions import add_months, current_month, month_label


def current_month_keys(now: datetime) -> list[str]:
    """Partition keys to refresh at `now`: the current month, plus the previous one early on."""
    month = current_month(now)
    day = now.astimezone(ZoneInfo(STOCK_TZ)).day
    months = [add_months(month, -1), month] if day <= 3 else [month]
    return [f"{month_label(m)}-01" for m in months]


@schedule(
    name="stock_current_month",
    job=stock_monthly_job,
    cron_schedule="30 16 * * 1-5",
    execution_timezone=STOCK_TZ,
    description="Re-materialize the current month (and, on days 1–3, the previous one) after "
    "the close, so stock_monthly_kline's current month is never stale by more than a day.",
)
def stock_current_month(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    now = context.scheduled_execution_time
    for key in current_month_keys(now):
        yield RunRequest(run_key=f"{key}@{now:%Y-%m-%d}", partition_key=key)
