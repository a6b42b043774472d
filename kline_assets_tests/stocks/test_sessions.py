"""The XSHG calendar as the stock domain uses it: holidays, make-up Saturdays, the schedule."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from dagster import SkipReason, build_schedule_context

from kline_assets.stocks import sessions
from kline_assets.stocks.schedules import stock_current_month

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_known_xshg_holidays_are_pinned() -> None:
    national_day = pd.date_range("2025-10-01", "2025-10-08")
    assert not any(sessions.is_trading_day(d) for d in national_day)
    assert not sessions.is_trading_day("2025-10-11")  # a make-up workday, not a session
    assert sessions.is_trading_day("2025-10-09")
    assert sessions.previous_trading_day("2025-10-09") == pd.Timestamp("2025-09-30")
    days = sessions.trading_days("2025-09-29", "2025-10-12")
    assert [d.strftime("%m-%d") for d in days] == ["09-29", "09-30", "10-09", "10-10"]


def test_in_session_refuses_holiday_bars_and_off_hours() -> None:
    times = np.array(["2025-10-09T09:30", "2025-10-09T11:30", "2025-10-09T12:00",
                      "2025-10-09T15:00", "2025-10-09T15:01", "2025-10-08T10:00",
                      "2025-10-11T10:00"], dtype="datetime64[us]")
    assert sessions.in_session(times).tolist() == [True, True, False, True, False, False, False]
    assert sessions.in_session(times, check_day=False)[-2:].tolist() == [True, True]


def test_the_schedule_launches_nothing_on_an_exchange_holiday() -> None:
    holiday = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 3, 16, 30, tzinfo=SHANGHAI))
    [skip] = list(stock_current_month(holiday))
    assert isinstance(skip, SkipReason)

    # the first trading day after National Day also re-runs September (its last trading day)
    after = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 9, 16, 30, tzinfo=SHANGHAI))
    assert [r.partition_key for r in stock_current_month(after)] == ["2025-09-01", "2025-10-01"]
