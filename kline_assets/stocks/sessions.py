"""A-share trading sessions: the one definition of trading days, session hours and the lunch
break, asked by landing, the schedules, the demo, the tick → bar kernel and the tests.

Trading days come from two sources, joined at the last day the package knows:

* the `exchange-calendars` package (calendar XSHG, which Shenzhen shares), up to the end of its
  data: exchange holidays such as National Day week are not sessions, nor are make-up Saturdays
  that are workdays for offices but not for the exchange;
* after that, the closures file the operators maintain (`KLINE_XSHG_CLOSURES`, default the
  `xshg_closures.csv` shipped beside this module, read by `stocks.closures`): for a year the
  file declares, the trading days are its weekdays minus the closures listed. Those days are
  *provisional* — the package has not confirmed them — and every stock materialization
  touching them says so in its metadata (`calendar_metadata`).

Asking for a day that neither source covers (before the package's first day, or in a year the
file does not declare) raises CalendarRangeError naming the file to edit, instead of guessing.
The package's calendar is built once; the file is read again only when its path, modification
time or size changes, so an operator's edit is picked up by running processes and tests may
point the variable at a file of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kline_assets.lib.errors import CalendarRangeError, ClosuresFileError
from kline_assets.lib.settings import STOCK_TZ

from .closures import (  # noqa: F401 (CLOSURES_ENV, DEFAULT_CLOSURES: asked of sessions)
    CLOSURES_ENV,
    DEFAULT_CLOSURES,
    Closures,
    closures_path,
    origin,
    read_closures,
)

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

DayLike = date | datetime | str | pd.Timestamp
_ONE_DAY = pd.Timedelta(days=1)


# --------------------------------------------------------------------------- the package


@lru_cache(maxsize=1)
def _package() -> tuple[ExchangeCalendar, pd.Timestamp]:
    """XSHG built over an explicit range, and the last day the package decides: the end of
    its precomputed holidays, not merely its last session, so a year ending on a holiday is
    still wholly the package's."""
    import exchange_calendars as xcals

    default = xcals.get_calendar(CALENDAR)
    last = pd.Timestamp(type(default).bound_max() or default.last_session).normalize()
    return xcals.get_calendar(CALENDAR, start=CALENDAR_START, end=last), last


def calendar() -> ExchangeCalendar:
    """XSHG from 2000 to the last day the package knows (built once)."""
    return _package()[0]


@lru_cache(maxsize=1)
def _package_version() -> str:
    from importlib.metadata import version

    return version("exchange-calendars")


def package_range() -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last day whose status the package decides (naive midnights)."""
    cal, last = _package()
    return cal.first_session, last


# --------------------------------------------------------------------------- the closures file


def closures() -> Closures:
    """The closures file in use, read again whenever its path, mtime or size changes."""
    path = closures_path()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ClosuresFileError(
            f"the XSHG closures file {path} ({origin(path)}) cannot be read: "
            f"{exc.strerror or exc}") from exc
    return read_closures(str(path), stat.st_mtime_ns, stat.st_size, package_range()[1])


# --------------------------------------------------------------------------- range checks


def _uncovered_years(first: pd.Timestamp, last: pd.Timestamp) -> list[int]:
    """Years of [first, last] after the package's last day that the file does not declare."""
    hi = package_range()[1]
    if last <= hi:
        return []
    start = max(first, hi + _ONE_DAY)
    declared = closures().years
    return [y for y in range(start.year, last.year + 1) if y not in declared]


def _beyond_message(first: pd.Timestamp, last: pd.Timestamp, years: list[int]) -> str:
    hi = package_range()[1]
    path = closures_path()
    listed = (", ".join(map(str, years)) if len(years) <= 3
              else f"{years[0]}…{years[-1]} ({len(years)} years)")
    example = years[0]
    return (f"{first:%Y-%m-%d}…{last:%Y-%m-%d} is outside the {CALENDAR} calendar: it reaches "
            f"{listed}, which neither "
            f"exchange-calendars {_package_version()} ({CALENDAR} to {hi:%Y-%m-%d}) nor the "
            f"closures file {path} ({origin(path)}) covers: add a line 'year,{example}' and "
            f"the exchange's announced closures of {example} to that file, or upgrade "
            "exchange-calendars")


def _check_range(first: pd.Timestamp, last: pd.Timestamp) -> None:
    lo = package_range()[0]
    if first < lo:
        raise CalendarRangeError(
            f"{first.date()}…{last.date()} is outside the {CALENDAR} calendar of "
            f"exchange-calendars, which starts on {lo.date()}")
    missing = _uncovered_years(first, last)
    if missing:
        raise CalendarRangeError(_beyond_message(first, last, missing))


def _day(value: DayLike) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(STOCK_TZ).tz_localize(None)
    return ts.normalize()


def _as_date(value: DayLike) -> date:
    """The Beijing date of `value` without pandas' year-2262 limit (for read requests)."""
    if isinstance(value, datetime):
        return (value.astimezone(ZoneInfo(STOCK_TZ)) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    return _day(value).date()


# --------------------------------------------------------------------------- trading days


def _file_sessions(first: pd.Timestamp, last: pd.Timestamp) -> np.ndarray:
    """The file's trading days in [first, last] (both after the package's last day)."""
    sessions = closures().sessions
    lo = np.searchsorted(sessions, np.datetime64(first.date(), "D"), side="left")
    hi = np.searchsorted(sessions, np.datetime64(last.date(), "D"), side="right")
    return sessions[lo:hi]


def trading_days(start: DayLike, end: DayLike) -> pd.DatetimeIndex:
    """Trading days d with start ≤ d ≤ end, as naive midnights; the package's days, then the
    closures file's after the package's last day."""
    first, last = _day(start), _day(end)
    if last < first:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    _check_range(first, last)
    hi = package_range()[1]
    parts = []
    if first <= hi:
        known = calendar().sessions_in_range(first, min(last, hi))
        parts.append(pd.DatetimeIndex(known).tz_localize(None).values.astype("datetime64[D]"))
    if last > hi:
        parts.append(_file_sessions(max(first, hi + _ONE_DAY), last))
    return pd.DatetimeIndex(np.concatenate(parts).astype("datetime64[ns]"))


def is_trading_day(day: DayLike) -> bool:
    return len(trading_days(day, day)) == 1


def trading_day_mask(days: np.ndarray) -> np.ndarray:
    """Vectorised: which of `days` (datetime64, any unit; the date part counts) trade."""
    d = np.asarray(days).astype("datetime64[D]")
    if d.size == 0:
        return np.zeros(0, dtype=bool)
    unique, inverse = np.unique(d, return_inverse=True)
    sessions = trading_days(pd.Timestamp(unique[0]), pd.Timestamp(unique[-1]))
    return np.isin(unique, sessions.values.astype("datetime64[D]"))[inverse]


def previous_trading_day(day: DayLike) -> pd.Timestamp:
    """The last trading day strictly before `day`, across the package/file boundary."""
    d = _day(day)
    _check_range(d, d)
    hi = package_range()[1]
    before = d - _ONE_DAY
    if before > hi:
        sessions = closures().sessions
        n = int(np.searchsorted(sessions, np.datetime64(before.date(), "D"), side="right"))
        found = pd.Timestamp(sessions[n - 1]) if n else hi
        _check_range(found, d)  # no undeclared year between it and `day`
        if n:
            return found
        before = hi
    return pd.Timestamp(calendar().date_to_session(before, direction="previous"))


# --------------------------------------------------------------------------- provisional days


def is_provisional(day: DayLike) -> bool:
    """Whether `day` lies after the package's last day: its status, where known, comes from
    the closures file and is not final until exchange-calendars covers its year."""
    return _as_date(day) > package_range()[1].date()


def provisional_days(start: DayLike, end: DayLike) -> pd.DatetimeIndex:
    """The calendar days d with start ≤ d ≤ end whose status comes from the closures file."""
    first, last = _day(start), _day(end)
    return pd.date_range(max(first, package_range()[1] + _ONE_DAY), last, unit="ns")


def provisional_note(first: DayLike, last: DayLike) -> str | None:
    """'provisional (closures file <path>)' when a day of [first, last] is provisional."""
    if _as_date(first) > _as_date(last) or not is_provisional(last):
        return None
    return f"provisional (closures file {closures_path()})"


def calendar_metadata(start: DayLike, end: DayLike) -> dict[str, str]:
    """Materialization metadata of a partition's half-open window [start, end): a `calendar`
    entry when any of its days is provisional, nothing otherwise (so history is unchanged)."""
    last = pd.Timestamp(end) - pd.Timedelta(microseconds=1)
    note = provisional_note(start, last)
    return {"calendar": note} if note else {}


@dataclass(frozen=True)
class CalendarStatus:
    """What the calendar can answer for the days first…last, and from which source."""

    first: date
    last: date
    package_last: date
    package_version: str
    closures_path: Path
    file_years: tuple[int, ...]
    uncovered_years: tuple[int, ...]
    ignored: tuple[str, ...]
    error: str | None

    @property
    def covered(self) -> bool:
        return not self.uncovered_years and self.error is None

    @property
    def provisional(self) -> bool:
        return self.last > self.package_last


def calendar_status(first: DayLike, last: DayLike) -> CalendarStatus:
    """Coverage of [first, last] without raising: the closures file is always read (a broken
    file is reported before it is needed), and an error reading it is part of the status."""
    lo, hi = _day(first), _day(last)
    path = closures_path()
    years: tuple[int, ...] = ()
    uncovered: tuple[int, ...] = ()
    ignored: tuple[str, ...] = ()
    error = None
    try:
        read = closures()
        years, ignored = tuple(sorted(read.years)), read.ignored
        uncovered = tuple(_uncovered_years(lo, hi))
    except CalendarRangeError as exc:
        error = str(exc)
    if uncovered:
        error = _beyond_message(lo, hi, list(uncovered))
    return CalendarStatus(lo.date(), hi.date(), package_range()[1].date(), _package_version(),
                          path, years, uncovered, ignored, error)


# --------------------------------------------------------------------------- session hours


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
