"""The daily safety net: the current Tokyo month of `live`, recomputed in full."""

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, build_schedule_context

from kline_assets.prices.schedules import live_month_daily


def test_the_daily_run_recomputes_the_current_tokyo_month_of_live():
    # 2025-11-30 16:00 UTC is already 2025-12-01 01:00 in Tokyo.
    when = datetime(2025, 11, 30, 16, 0, tzinfo=ZoneInfo("UTC"))
    request = live_month_daily(build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == "2025-12-01|live"
    assert request.tags["kline/live_writer"] == "live"
    assert live_month_daily.execution_timezone == "Asia/Tokyo"


def test_stopped_unless_the_deployment_turns_live_refresh_on():
    assert live_month_daily.default_status == DefaultScheduleStatus.STOPPED
