"""The operators' XSHG closures file: what it declares, read and checked line by line.

For a year the file declares (`year,YYYY`), the trading days after exchange-calendars' last
day are its weekdays minus the closures it lists (`YYYY-MM-DD,name`). `stocks.sessions` joins
them to the package's days; this module only reads the file, so a bad line is named with its
file and line before any day is decided from it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from kline_assets.lib.errors import ClosuresFileError

CLOSURES_ENV = "KLINE_XSHG_CLOSURES"
DEFAULT_CLOSURES = Path(__file__).with_name("xshg_closures.csv")
"""The closures shipped with the package: those announced so far for years beyond it."""
_YEAR_LINE = re.compile(r"\d{4}")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Closures:
    """The closures file as read and checked against the package's range.

    `years` are the years the file declares; `sessions` the trading days of those years after
    the package's last day (datetime64[D], sorted); `ignored` says, per line, which entries the
    package has made redundant (they lie within its range, where it decides)."""

    path: Path
    years: frozenset[int]
    sessions: np.ndarray
    ignored: tuple[str, ...]


def closures_path() -> Path:
    """The closures file in use: KLINE_XSHG_CLOSURES, else the one shipped with the package."""
    value = os.environ.get(CLOSURES_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_CLOSURES


def origin(path: Path) -> str:
    if os.environ.get(CLOSURES_ENV, "").strip():
        return f"named by {CLOSURES_ENV}"
    return f"shipped with the package; set {CLOSURES_ENV} to use another"


@lru_cache(maxsize=8)
def read_closures(path_text: str, _mtime_ns: int, _size: int, package_last: pd.Timestamp
                   ) -> Closures:
    """Parse and validate the file (the mtime and size are only the cache key)."""
    path = Path(path_text)

    def bad(line: int, message: str) -> ClosuresFileError:
        return ClosuresFileError(f"{path}:{line}: {message} (the XSHG closures file, "
                                 f"{origin(path)})")

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad(raw[:exc.start].count(b"\n") + 1, "not UTF-8 text") from exc

    year_lines: dict[int, int] = {}
    day_lines: dict[date, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = (part.strip() for part in line.partition(","))
        if head.lower() == "year":
            if not _YEAR_LINE.fullmatch(rest):
                raise bad(number, f"expected 'year,YYYY', got {line!r}")
            year = int(rest)
            if year in year_lines:
                raise bad(number, f"year {year} is declared twice (first on line "
                                  f"{year_lines[year]})")
            year_lines[year] = number
            continue
        if not _DATE_TEXT.fullmatch(head):
            raise bad(number, f"expected 'year,YYYY' or 'YYYY-MM-DD,name', got {line!r}")
        try:
            day = date.fromisoformat(head)
        except ValueError:
            raise bad(number, f"{head} is not a date") from None
        if day in day_lines:
            raise bad(number, f"{day} is listed twice (first on line {day_lines[day]})")
        if day.weekday() >= 5:
            # Weekends are closed anyway; a weekend date is most likely a typo for a weekday
            # closure, which would otherwise stay a trading day unnoticed.
            raise bad(number, f"{day} is a {day:%A}: weekends are never sessions, list only "
                              "the weekdays the exchange is closed")
        day_lines[day] = number
    for day, number in day_lines.items():
        if day.year not in year_lines:
            raise bad(number, f"{day} lies in {day.year}, which the file does not declare: "
                              f"add a line 'year,{day.year}' once every closure of "
                              f"{day.year} announced so far is listed")

    last = package_last.date()
    ignored = [f"{path}:{n}: year {y} lies within exchange-calendars' range (to {last}); "
               "the package decides it" for y, n in year_lines.items() if date(y, 12, 31) <= last]
    ignored += [f"{path}:{n}: {d} lies within exchange-calendars' range (to {last}); the "
                "package decides it" for d, n in day_lines.items() if d <= last]
    closed = np.array(sorted(d for d in day_lines if d > last), dtype="datetime64[D]")
    after = np.datetime64(last, "D") + 1
    parts = []
    for year in sorted(y for y in year_lines if date(y, 12, 31) > last):
        days = np.arange(max(np.datetime64(f"{year:04d}-01-01"), after),
                         np.datetime64(f"{year + 1:04d}-01-01"), dtype="datetime64[D]")
        parts.append(days[np.is_busday(days, holidays=closed)])
    sessions = np.concatenate(parts) if parts else np.zeros(0, dtype="datetime64[D]")
    return Closures(path, frozenset(year_lines), sessions, tuple(ignored))
