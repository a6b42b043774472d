"""Keeps the current month correct.

Monthly buckets are a month wide, so the TimescaleDB policy (end offset 1 hour) never
refreshes the current month before it is over, and the plain path has no policy at all. This
schedule re-runs the current month's partition of stock_monthly_job (load the month's landing
files, refresh its K-lines, run the checks) after the close of every XSHG trading day. Early
in a month it also re-runs the previous month, so a file for that month's last trading day
delivered late is still picked up, even after a holiday week such as National Day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from kline_assets.lib.months import month_key
from kline_assets.lib.settings import STOCK_TZ

from .jobs import stock_monthly_job, stocks_watch_job
from .partitions import add_months, current_month
from .sessions import is_trading_day, previous_trading_day

EARLY_DAYS = 3


def current_month_keys(now: datetime) -> list[str]:
    """Partition keys to refresh at `now`: the current month, plus the previous one while the
    month is young (its first days, or its first trading day after a holiday)."""
    month = current_month(now)
    local = now.astimezone(ZoneInfo(STOCK_TZ))
    early = local.day <= EARLY_DAYS or previous_trading_day(local) < month
    months = [add_months(month, -1), month] if early else [month]
    return [month_key(m) for m in months]


@schedule(
    name="stock_current_month",
    job=stock_monthly_job,
    cron_schedule="30 16 * * 1-5",
    execution_timezone=STOCK_TZ,
    description="Re-materialize the current month (and, early in a month, the previous one) "
    "after the close of every XSHG trading day, so stock_monthly_kline's current month is "
    "never stale by more than a trading day. Exchange holidays launch nothing.",
)
def stock_current_month(
    context: ScheduleEvaluationContext,
) -> Iterator[RunRequest | SkipReason]:
    now = context.scheduled_execution_time
    if not is_trading_day(now):
        yield SkipReason(f"{now:%Y-%m-%d} is not an XSHG trading day")
        return
    for key in current_month_keys(now):
        yield RunRequest(run_key=f"{key}@{now:%Y-%m-%d}", partition_key=key)


stocks_watch = ScheduleDefinition(
    name="stocks_watch",
    job=stocks_watch_job,
    cron_schedule="0 9,17 * * 1-5",
    execution_timezone=STOCK_TZ,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Check that the last stock month was loaded at most one trading day late and "
    "that the trading calendar covers the next 30 days: before the open and after the "
    "evening load, on weekdays.",
)
