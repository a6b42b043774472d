"""The rules every stock input passes at the door, whatever path it comes by (the tick stream,
tick files for `kline bars synth`, landing files of vendor bars).

One definition each, vectorised over a whole batch, so that a value no product could hold is
refused where it enters, with a reason naming the rule, instead of failing deep inside the
calendar, the kernel or the database — where one bad value would stop every good one behind it.
"""

from __future__ import annotations

import numpy as np

from .sessions import CALENDAR_START

# --------------------------------------------------------------------------- times

FIRST_TIME = np.datetime64(CALENDAR_START, "us")
"""No input time before the calendar's first day: no trading day could hold it."""
END_TIME = np.datetime64("2100-01-01", "us")
"""Input times lie before 2100: far beyond any calendar the operators could declare, and
inside what every date library below (numpy, pandas, PostgreSQL) represents exactly."""
TIME_RULE = f"{FIRST_TIME.astype('datetime64[D]')}…{(END_TIME - 1).astype('datetime64[D]')}"


def time_outside(us: np.ndarray) -> np.ndarray:
    """Mask of times (µs since 1970-01-01, Beijing wall clock, int64) outside the rule."""
    us = np.asarray(us, dtype=np.int64)
    return (us < FIRST_TIME.view(np.int64)) | (us >= END_TIME.view(np.int64))


def time_reason(us: int) -> str:
    """Why one time is refused, with its value as it arrived."""
    return (f"time {us} µs is outside {TIME_RULE} (Beijing wall clock as microseconds since "
            "1970-01-01)")
