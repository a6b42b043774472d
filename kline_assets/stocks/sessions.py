"""A-share trading sessions: the one definition of trading days, session hours and the lunch
break, asked by landing, the schedules, the demo, the tick → bar kernel and the tests.

Trading days come from the `exchange-calendars` package (calendar XSHG, which Shenzhen shares):
exchange holidays such as National Day week are not sessions, nor are make-up Saturdays that
are workdays for offices but not for the exchange. The calendar knows sessions up to the end of
next year; asking beyond raises CalendarRangeError instead of guessing.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kline_assets.errors import CalendarRangeError
from kline_assets.settings import STOCK_TZ

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

CALENDAR = "XSHG"
CALENDAR_START = "2000-01-01"

# Seconds of the Beijing day.
AUCTION_OPEN = 9 * 3600 + 25 * 60  # opening call auction prints (09:25)
MORNING = (9 * 3600 + 30 * 60, 11 * 3600 + 30 * 60)  # continuous trading, 09:30–11:30
AFTERNOON = (13 * 3600, 15 * 3600)  # 13:00–15:00
SESSIONS = (MORNING, AFTERNOON)

# Minute-of-day labels of a full day's 1-minute bars, each labelled by its end (240 bars).
BAR_END_MINUTES = np.concatenate([
    np.arange(MORNING[0] // 60 + 1, MORNING[1] // 60 + 1),
    np.arange(AFTERNOON[0] // 60 + 1, AFTERNOON[1] // 60 + 1),
])


@lru_cache(maxsize=1)
def calendar() -> ExchangeCalendar:
    """XSHG built over an explicit range: from 2000 to the last day the package knows."""
    import exchange_calendars as xcals

    last = xcals.get_calendar(CALENDAR).last_session
    return xcals.get_calendar(CALENDAR, start=CALENDAR_START, end=last)


def _bounds() -> tuple[pd.Timestamp, pd.Timestamp]:
    cal = calendar()
    return cal.first_session, cal.last_session


def _check_range(first: pd.Timestamp, last: pd.Timestamp) -> None:
    lo, hi = _bounds()
    if first < lo or last > hi:
        raise CalendarRangeError(
            f"{first.date()}…{last.date()} is outside the {CALENDAR} calendar of "
            f"exchange-calendars ({lo.date()}…{hi.date()}); upgrade exchange-calendars for "
            "later holidays"
        )


def _day(value: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(STOCK_TZ).tz_localize(None)
    return ts.normalize()


def trading_days(start: date | str | pd.Timestamp, end: date | str | pd.Timestamp
                 ) -> pd.DatetimeIndex:
    """Trading days d with start ≤ d ≤ end, as naive midnights."""
    first, last = _day(start), _day(end)
    if last < first:
        return pd.DatetimeIndex([])
    _check_range(first, last)
    return pd.DatetimeIndex(calendar().sessions_in_range(first, last)).tz_localize(None)


def is_trading_day(day: date | datetime | str | pd.Timestamp) -> bool:
    d = _day(day)
    _check_range(d, d)
    return bool(calendar().is_session(d))


def trading_day_mask(days: np.ndarray) -> np.ndarray:
    """Vectorised: which of `days` (datetime64, any unit; the date part counts) trade."""
    d = np.asarray(days).astype("datetime64[D]")
    if d.size == 0:
        return np.zeros(0, dtype=bool)
    unique, inverse = np.unique(d, return_inverse=True)
    sessions = trading_days(pd.Timestamp(unique[0]), pd.Timestamp(unique[-1]))
    return np.isin(unique, sessions.values.astype("datetime64[D]"))[inverse]


def previous_trading_day(day: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    """The last trading day strictly before `day`."""
    d = _day(day)
    _check_range(d, d)
    return pd.Timestamp(calendar().date_to_session(d - pd.Timedelta(days=1), direction="previous"))


def seconds_of_day(times: np.ndarray) -> np.ndarray:
    """Seconds since midnight of naive Beijing wall-clock datetime64 values (fractions kept)."""
    t = np.asarray(times).astype("datetime64[us]")
    return (t - t.astype("datetime64[D]")).astype(np.int64) / 1e6


def in_session(times: np.ndarray, check_day: bool = True) -> np.ndarray:
    """Within 09:30–11:30 or 13:00–15:00 (both ends inclusive) on a trading day, for naive
    Beijing wall-clock datetime64 values. Vendors label a 1-minute bar by its end, so the
    11:30 and 15:00 bars are inside, and so is a 09:30 auction bar."""
    sec = seconds_of_day(times)
    inside = np.zeros(sec.shape, dtype=bool)
    for lo, hi in SESSIONS:
        inside |= (sec >= lo) & (sec <= hi)
    return inside & trading_day_mask(times) if check_day else inside
