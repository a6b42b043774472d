"""Month partitions of the stock domain and the Beijing wall-clock windows they stand for.

`stock_1min_qfq.time` is a `timestamp without time zone` holding Beijing wall-clock time, so a
partition's window is passed to SQL as naive datetimes: month M is [M-01 00:00, M+1-01 00:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dagster import MonthlyPartitionsDefinition

from kline_assets.settings import STOCK_TZ

FIRST_MONTH = "2000-01"

STOCK_MONTHS = MonthlyPartitionsDefinition(
    start_date="2000-01-01", timezone=STOCK_TZ, end_offset=1
)
"""Every month from 2000-01 through the current (unfinished) Beijing month."""


@dataclass(frozen=True)
class MonthWindow:
    """A half-open window [start, end) of whole months, in naive Beijing wall-clock time."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound.tzinfo is not None or (bound.day, bound.hour, bound.minute) != (1, 0, 0):
                raise ValueError(f"month window bounds must be naive month starts, got {bound}")
        if self.end <= self.start:
            raise ValueError(f"empty month window [{self.start}, {self.end})")

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    @property
    def label(self) -> str:
        first, last = month_label(self.start), month_label(add_months(self.end, -1))
        return first if first == last else f"{first}..{last}"

    def month_starts(self) -> list[datetime]:
        return [add_months(self.start, i) for i in range(self.months)]

    def split(self) -> list[MonthWindow]:
        """One window per month."""
        return [MonthWindow(m, add_months(m, 1)) for m in self.month_starts()]


def add_months(month_start: datetime, n: int) -> datetime:
    index = month_start.year * 12 + month_start.month - 1 + n
    return month_start.replace(year=index // 12, month=index % 12 + 1)


def month_label(month_start: datetime) -> str:
    return f"{month_start.year:04d}-{month_start.month:02d}"


def parse_month(text: str) -> datetime:
    """'YYYY-MM' (or a partition key 'YYYY-MM-01') → naive month start."""
    try:
        parsed = datetime.strptime(text[:7], "%Y-%m")
    except ValueError as exc:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}") from exc
    if len(text) not in (7, 10):
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return parsed


def current_month(now: datetime | None = None) -> datetime:
    """The Beijing month containing `now` (default: the present instant)."""
    from zoneinfo import ZoneInfo

    local = (now or datetime.now(ZoneInfo(STOCK_TZ))).astimezone(ZoneInfo(STOCK_TZ))
    return datetime(local.year, local.month, 1)


def window_for_keys(first_key: str, last_key: str) -> MonthWindow:
    """Partition keys 'YYYY-MM-01' (inclusive range) → the window they cover."""
    return MonthWindow(parse_month(first_key), add_months(parse_month(last_key), 1))


def window_for_months(first: str | None, last: str | None) -> MonthWindow:
    """CLI months 'YYYY-MM' (inclusive; defaults: 2000-01 and the current month) → window."""
    start = parse_month(first or FIRST_MONTH)
    stop = parse_month(last) if last else current_month()
    return MonthWindow(start, add_months(stop, 1))
