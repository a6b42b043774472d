"""Month partitions of the stock domain and the Beijing wall-clock windows they stand for.

`stock_1min_qfq.time` is a `timestamp without time zone` holding Beijing wall-clock time, so a
partition's window is passed to SQL as naive datetimes: month M is [M-01 00:00, M+1-01 00:00).
Month arithmetic itself lives in kline_assets.lib.months; this module only adds the stock zone.
"""

from __future__ import annotations

from datetime import datetime

from dagster import MonthlyPartitionsDefinition

from kline_assets.lib import months
from kline_assets.lib.months import MonthWindow, add_months, month_label, parse_month
from kline_assets.lib.settings import STOCK_TZ

FIRST_MONTH = "2000-01"

STOCK_MONTHS = MonthlyPartitionsDefinition(
    start_date="2000-01-01", timezone=STOCK_TZ, end_offset=1
)
"""Every month from 2000-01 through the current (unfinished) Beijing month."""


def current_month(now: datetime | None = None) -> datetime:
    """The Beijing month holding `now` (default: the present instant), as a naive start."""
    return months.current_month(STOCK_TZ, now)


def window_for_keys(first_key: str, last_key: str) -> MonthWindow:
    """Partition keys 'YYYY-MM-01' (inclusive range) → the window they cover."""
    return MonthWindow.of_months(first_key, last_key)


def window_for_months(first: str | None, last: str | None) -> MonthWindow:
    """CLI months 'YYYY-MM' (inclusive; defaults: 2000-01 and the current month) → window."""
    start = parse_month(first or FIRST_MONTH)
    stop = parse_month(last) if last else current_month()
    return MonthWindow(start, add_months(stop, 1))


__all__ = [
    "FIRST_MONTH",
    "STOCK_MONTHS",
    "MonthWindow",
    "add_months",
    "current_month",
    "month_label",
    "parse_month",
    "window_for_keys",
    "window_for_months",
]
