"""Month arithmetic shared by both domains: partition keys, labels, windows and YYYYMM ids.

Prices partition by Tokyo months, stocks by Beijing months; both are calendar months in a
zone, so one set of helpers serves both. Naive datetimes are wall-clock month starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

_MONTH_TEXT = re.compile(r"(\d{4})-(\d{2})(?:-01)?")


def add_months(month_start: datetime, n: int) -> datetime:
    """The month start `n` months later (negative: earlier); keeps the time zone."""
    index = month_start.year * 12 + month_start.month - 1 + n
    return month_start.replace(year=index // 12, month=index % 12 + 1)


def month_label(month_start: datetime) -> str:
    """'YYYY-MM'."""
    return f"{month_start.year:04d}-{month_start.month:02d}"


def month_key(month_start: datetime) -> str:
    """The monthly partition key 'YYYY-MM-01'."""
    return f"{month_label(month_start)}-01"


def yyyymm(month_start: datetime) -> int:
    """The month as ClickHouse's toYYYYMM gives it: 202510."""
    return month_start.year * 100 + month_start.month


def key_of_yyyymm(value: int) -> str:
    """202510 → '2025-10-01'."""
    return f"{int(value) // 100:04d}-{int(value) % 100:02d}-01"


def parse_month(text: str) -> datetime:
    """'YYYY-MM' or a partition key 'YYYY-MM-01' → naive month start; anything else is refused."""
    match = _MONTH_TEXT.fullmatch(str(text).strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return datetime(int(match.group(1)), int(match.group(2)), 1)


def zoned(month_start: datetime, tz: str) -> datetime:
    """A naive month start as the same wall-clock instant in `tz`."""
    return month_start.replace(tzinfo=ZoneInfo(tz))


def month_window(month: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a month ('YYYY-MM' or 'YYYY-MM-01'), tz-aware in `tz`."""
    start = zoned(parse_month(month), tz)
    return start, add_months(start, 1)


def month_of(instant: datetime, tz: str) -> datetime:
    """The naive start of the month in `tz` that holds `instant` (naive = already local)."""
    local = instant.astimezone(ZoneInfo(tz)) if instant.tzinfo else instant
    return datetime(local.year, local.month, 1)


def current_month(tz: str, now: datetime | None = None) -> datetime:
    """The naive start of the month in `tz` holding `now` (default: the present instant)."""
    return month_of(now or datetime.now(ZoneInfo(tz)), tz)


def months_between(start: datetime, end: datetime) -> list[datetime]:
    """Month starts m (same zone as `start`) with start ≤ m < end; `start` is a month start."""
    out, month = [], start
    while month < end:
        out.append(month)
        month = add_months(month, 1)
    return out


@dataclass(frozen=True)
class MonthWindow:
    """A half-open window [start, end) of whole months, as naive wall-clock month starts."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound.tzinfo is not None or (bound.day, bound.hour, bound.minute) != (1, 0, 0):
                raise ValueError(f"month window bounds must be naive month starts, got {bound}")
        if self.end <= self.start:
            last = month_label(add_months(self.end, -1))
            raise ValueError(
                f"the first month ({month_label(self.start)}) is after the last ({last})"
            )

    @classmethod
    def of_months(cls, first: str, last: str) -> MonthWindow:
        """Inclusive months ('YYYY-MM' or partition keys) → their window."""
        return cls(parse_month(first), add_months(parse_month(last), 1))

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    @property
    def label(self) -> str:
        first, last = month_label(self.start), month_label(add_months(self.end, -1))
        return first if first == last else f"{first}..{last}"

    def month_starts(self) -> list[datetime]:
        return months_between(self.start, self.end)

    def keys(self) -> list[str]:
        return [month_key(m) for m in self.month_starts()]

    def split(self) -> list[MonthWindow]:
        """One window per month."""
        return [MonthWindow(m, add_months(m, 1)) for m in self.month_starts()]
