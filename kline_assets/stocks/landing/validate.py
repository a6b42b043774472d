"""Which parsed bars a month keeps: inside the month's window, on an XSHG trading day, inside a
session (09:30–11:30, 13:00–15:00, both ends inclusive so start- and end-labelled vendor files
both fit). Rejected bars are counted per file and per reason; a bar on an exchange holiday is
its own reason, so a holiday week is not reported as hundreds of off-hours bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from kline_assets.lib.months import MonthWindow

from .. import sessions
from .discover import LandingFile

NON_TRADING_DAY = "non_trading_day"
OUTSIDE_SESSION = "outside_session"
REPORT_LIMIT = 20


@dataclass
class FileStats:
    file: str
    rows: int = 0
    outside_month: int = 0
    non_trading_day: int = 0
    outside_session: int = 0
    loaded: int = 0
    duplicates: int = 0
    conflicts: int = 0


@dataclass
class Screened:
    """A file's bars that the month keeps (`keep`), and samples of those it rejected."""

    keep: np.ndarray
    rejected: list[dict[str, object]] = field(default_factory=list)


def screen(f: LandingFile, table: pa.Table, window: MonthWindow, stats: FileStats) -> Screened:
    """Classify a parsed file's bars for `window`, filling `stats`."""
    times = table["time"].combine_chunks().to_numpy(zero_copy_only=False)
    times = times.astype("datetime64[us]")
    start, end = np.datetime64(window.start, "us"), np.datetime64(window.end, "us")
    in_window = (times >= start) & (times < end)
    stats.rows = table.num_rows
    stats.outside_month = int((~in_window).sum()) if f.month is not None else 0
    trading = np.zeros(len(times), dtype=bool)
    trading[in_window] = sessions.trading_day_mask(times[in_window])
    in_hours = sessions.in_session(times, check_day=False)
    holiday = in_window & ~trading
    off_hours = in_window & trading & ~in_hours
    stats.non_trading_day = int(holiday.sum())
    stats.outside_session = int(off_hours.sum())
    rejected: list[dict[str, object]] = []
    codes = table["code"]
    for reason, mask in ((NON_TRADING_DAY, holiday), (OUTSIDE_SESSION, off_hours)):
        for i in np.flatnonzero(mask)[:REPORT_LIMIT]:
            rejected.append({"file": f.rel, "where": f.where(int(i)),
                             "code": codes[int(i)].as_py(),
                             "time": str(pd.Timestamp(times[int(i)])), "reason": reason})
    return Screened(in_window & trading & in_hours, rejected[:REPORT_LIMIT])
