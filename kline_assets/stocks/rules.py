"""The rules every stock input passes at the door, whatever path it comes by (the tick stream,
tick files for `kline bars synth`, landing files of vendor bars).

One definition each, vectorised over a whole batch, so that a value no product could hold is
refused where it enters, with a reason naming the rule, instead of failing deep inside the
calendar, the kernel or the database — where one bad value would stop every good one behind it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kline_assets.kernels.bars import Ticks, good_price, good_volume

from .sessions import CALENDAR_START

# --------------------------------------------------------------------------- symbols

SYMBOL_PATTERN = r"^[0-9]{6}\.(SH|SZ|BJ)$"
"""A symbol is the exchange code form: six digits, a dot, the exchange (Shanghai, Shenzhen,
Beijing), e.g. 600000.SH, 000001.SZ. It becomes Redis keys, tab-separated lines and an indexed
column, so anything else (an empty or 1 MB string, a tab, a lower-case suffix) is refused at
the door rather than failing the nightly hand-over of every symbol of the day."""
SYMBOL_RULE = "six digits, a dot and SH, SZ or BJ (e.g. 600000.SH)"
_SHOWN = 40


def symbol_ok(symbols: pa.Array | pa.ChunkedArray | np.ndarray | list) -> np.ndarray:
    """Mask of symbols that follow the rule (null: not); one regex pass in Arrow."""
    if not isinstance(symbols, pa.Array | pa.ChunkedArray):
        symbols = pa.array(np.asarray(symbols, dtype=object).tolist(), pa.string())
    matched = pc.fill_null(pc.match_substring_regex(symbols, SYMBOL_PATTERN), False)
    return np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)


def shown_symbol(symbol: object) -> str:
    """A refused symbol as a message shows it: quoted, and cut short when long."""
    text = "" if symbol is None else str(symbol)
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}… ({len(text):,} characters)"


def symbol_reason(symbol: object) -> str:
    """Why one symbol is refused."""
    return f"symbol {shown_symbol(symbol)} is not {SYMBOL_RULE}"

# --------------------------------------------------------------------------- times

FIRST_TIME = np.datetime64(CALENDAR_START, "us")
"""No input time before the calendar's first day: no trading day could hold it."""
END_TIME = np.datetime64("2100-01-01", "us")
"""Input times lie before 2100: far beyond any calendar the operators could declare, and
inside what every date library below (numpy, pandas, PostgreSQL) represents exactly."""
TIME_RULE = f"{FIRST_TIME.astype('datetime64[D]')}…{(END_TIME - 1).astype('datetime64[D]')}"


def time_outside(times: np.ndarray) -> np.ndarray:
    """Mask of times outside the rule: datetime64 of any unit, or int64 µs since 1970-01-01
    (Beijing wall clock, as the stream carries them)."""
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return (times < FIRST_TIME) | (times >= END_TIME)
    us = times.astype(np.int64, copy=False)
    return (us < FIRST_TIME.view(np.int64)) | (us >= END_TIME.view(np.int64))


def time_reason(us: int) -> str:
    """Why one time is refused, with its value as it arrived."""
    return (f"time {us} µs is outside {TIME_RULE} (Beijing wall clock as microseconds since "
            "1970-01-01)")


# --------------------------------------------------------------------------- values


def tick_value_refusals(ticks: Ticks) -> dict[int, str]:
    """Ticks whose values no bar may take, by position, with the reason: the kernel's own
    `bad_price` (not finite, or ≤ 0) and `bad_volume` (volume or amount not finite, or < 0).
    The kernel still rejects and counts them; the stream consumer also parks them in its
    dead-letter stream, so the raw fields can be looked at. Vectorised; only refused ticks
    are visited, to word their reason."""
    price, volume, amount = ticks.price, ticks.volume, ticks.amount
    checks = [
        (~good_price(price),
         lambda i: f"bad_price: price {float(price[i])!r} is not a finite number above 0"),
        (~good_volume(volume, amount),
         lambda i: f"bad_volume: volume {float(volume[i])!r} and amount {float(amount[i])!r} "
                   "must be finite and ≥ 0"),
    ]
    refused: dict[int, str] = {}
    for mask, reason in reversed(checks):  # the first rule broken is the one reported
        for i in np.flatnonzero(mask).tolist():
            refused[i] = reason(i)
    return refused
