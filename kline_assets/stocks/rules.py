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

MAX_PRICE = 1e6
"""No A-share trades near a million CNY a share (the dearest ever were a few thousand): a
price, open, high, low, close or a snapshot's day high/low beyond it is a feed error."""
MAX_QUANTITY = 1e15
"""Volume (shares) and amount (CNY) of a print, a bar or a day's running total stay below
this: orders of magnitude above any real day of the whole market, and below 2**53, so sums of
them stay exact to the unit in float64."""
BOUNDS = {"open": MAX_PRICE, "high": MAX_PRICE, "low": MAX_PRICE, "close": MAX_PRICE,
          "price": MAX_PRICE, "volume": MAX_QUANTITY, "amount": MAX_QUANTITY}
"""The magnitude bound of every numeric column an input may carry (landing bars, ticks)."""


def beyond_bound(values: np.ndarray, column: str) -> np.ndarray:
    """Mask of finite values whose magnitude exceeds the column's bound (landing keeps
    negative prices for the monthly view's cleaning rule to drop, so only size is checked)."""
    return np.abs(np.asarray(values, dtype=np.float64)) > BOUNDS[column]


def _ok_day_extreme(values: np.ndarray | None, n: int) -> np.ndarray:
    """A snapshot's day high/low: absent (NaN), or a price in (0, MAX_PRICE]."""
    if values is None:
        return np.ones(n, dtype=bool)
    return np.isnan(values) | ((values > 0) & (values <= MAX_PRICE))


def screen_tick_values(ticks: Ticks) -> tuple[Ticks, dict[int, str]]:
    """Ticks whose values no bar may take, by position, with the reason, and the ticks as the
    kernel should see them.

    Refused: the kernel's own `bad_price` (price not finite, or ≤ 0) and `bad_volume` (volume
    or amount not finite, or < 0); a price above MAX_PRICE, a volume or amount above
    MAX_QUANTITY (the landing bounds); a day high or low that is not a price in (0, MAX_PRICE],
    or a day low above the day high. The kernel rejects and counts the first two kinds itself;
    a tick refused for the others is handed to it with NaN in the field it checks (price for
    prices, volume for quantities), so it is rejected and counted under the same reason
    instead of becoming a bar. Vectorised; only refused ticks are visited, to word their
    reason."""
    price, volume, amount = ticks.price, ticks.volume, ticks.amount
    high, low, n = ticks.high, ticks.low, len(ticks.price)

    def num(v: float) -> str:
        return repr(float(v))

    inverted = np.zeros(n, dtype=bool)
    if high is not None and low is not None:
        inverted = low > high  # NaN compares False: an absent extreme never inverts
    price_checks = [
        (~good_price(price), lambda i: f"bad_price: price {num(price[i])} is not a finite "
                                       "number above 0"),
        (price > MAX_PRICE, lambda i: f"bad_price: price {num(price[i])} is above "
                                      f"{MAX_PRICE:g}"),
        (~_ok_day_extreme(high, n), lambda i: f"bad_price: day high {num(high[i])} is not a "
                                              f"price in (0, {MAX_PRICE:g}]"),
        (~_ok_day_extreme(low, n), lambda i: f"bad_price: day low {num(low[i])} is not a "
                                             f"price in (0, {MAX_PRICE:g}]"),
        (inverted, lambda i: f"bad_price: day low {num(low[i])} is above day high "
                             f"{num(high[i])}"),
    ]
    volume_checks = [
        (~good_volume(volume, amount),
         lambda i: f"bad_volume: volume {num(volume[i])} and amount {num(amount[i])} must be "
                   "finite and ≥ 0"),
        ((volume > MAX_QUANTITY) | (amount > MAX_QUANTITY),
         lambda i: f"bad_volume: volume {num(volume[i])} or amount {num(amount[i])} is above "
                   f"{MAX_QUANTITY:g}"),
    ]
    refused: dict[int, str] = {}
    for mask, reason in reversed(price_checks + volume_checks):  # the first broken is reported
        for i in np.flatnonzero(mask).tolist():
            refused[i] = reason(i)
    bad_price = np.logical_or.reduce([m for m, _ in price_checks[1:]])
    bad_volume = volume_checks[1][0]
    if bad_price.any() or bad_volume.any():
        ticks = Ticks(ticks.symbol, ticks.names, ticks.time,
                      np.where(bad_price, np.nan, price), np.where(bad_volume, np.nan, volume),
                      amount, ticks.tick_id, high, low)
    return ticks, refused
