"""The landing-file rules, per stream entry: what a vendor bar must be to enter the history.

The same definitions as landing files and ticks (`stocks.rules`: the symbol rule, time range
and magnitude bounds; `stocks.sessions`: XSHG trading days and session hours; the landing
reasons `non_trading_day` / `outside_session`), vectorised over a batch. Unlike a landing file,
which is all or nothing and keeps dirty bars for the monthly view's cleaning rule, the stream
must never block: each entry that breaks a rule is rejected on its own, with a reason, and
parked in the dead-letter stream. A bar that the monthly view would drop (inconsistent high/low,
negative volume) is rejected here, because a live feed's bad bar is a feed error to look at,
not history.

Reasons, the first broken in this order:

    malformed        a field missing or not a number / time / period
    bad_symbol       not six digits, a dot and SH/SZ/BJ
    bad_period       not 1, 5, 15, 30 or 60
    bad_time         outside 2000-01-01…2099-12-31
    calendar         a year neither exchange-calendars nor the closures file covers
    non_trading_day  an XSHG holiday or weekend
    outside_session  not a bar end of the period inside 09:30–11:30 / 13:00–15:00
    not_finite       NaN or ±inf in open, high, low, close, volume or amount
    beyond_bound     a price beyond ±1e6 or a volume/amount beyond 1e15
    high_low         high < max(open, close) or low > min(open, close)
    negative_volume  volume or amount < 0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kline_assets.kernels.bars import PERIODS, PROFILE_LABELS, VOLUME_UNITS, block_end_minutes
from kline_assets.lib.errors import CalendarRangeError
from kline_assets.lib.settings import STOCK_TZ

from .. import rules, sessions
from ..landing.validate import NON_TRADING_DAY, OUTSIDE_SESSION
from .codec import FIELDS

REASONS = ("malformed", "bad_symbol", "bad_period", "bad_time", "calendar", NON_TRADING_DAY,
           OUTSIDE_SESSION, "not_finite", "beyond_bound", "high_low", "negative_volume")
PRICES = ("open", "high", "low", "close")
VALUES = (*PRICES, "volume", "amount")
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
_BEIJING = r"\+08:?00$"

# Minute of day of every valid bar end per period: 1-minute bars as landing files allow them
# (09:30–11:30, 13:00–15:00 inclusive, so a 09:30 auction bar fits), N-minute bars at the ends
# of the session-cut blocks (60-minute: 10:30, 11:30, 14:00, 15:00).
_ENDS = {1: None, **{p: np.unique(block_end_minutes(PROFILE_LABELS["end"], p))
                     for p in PERIODS if p != 1}}


@dataclass
class Screened:
    """The batch's bars that pass (`rows`, one per entry in stream order, with its batch
    position `pos`), and the rejected positions with (reason, detail)."""

    rows: pd.DataFrame
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason, _ in self.rejected.values():
            out[reason] = out.get(reason, 0) + 1
        return out


class DayCache:
    """Trading-day answers per day, kept across batches; a day beyond the calendar is asked
    again next time, so a year an operator adds to the closures file is taken without a
    restart."""

    def __init__(self) -> None:
        self._known: dict[np.datetime64, bool] = {}

    def classify(self, days: np.ndarray) -> tuple[np.ndarray, dict[np.datetime64, str]]:
        """Trading mask of `days` (datetime64[D]) and, per day the calendar cannot answer,
        its message."""
        unique = np.unique(days)
        beyond: dict[np.datetime64, str] = {}
        for d in unique:
            if d in self._known:
                continue
            try:
                self._known[d] = len(sessions.trading_days(str(d), str(d))) == 1
            except CalendarRangeError as exc:
                beyond[d] = str(exc)
        trading = np.array([self._known.get(d, False) for d in unique], dtype=bool)
        return trading[np.searchsorted(unique, days)], beyond


def _text(table: pa.Table, name: str) -> pa.Array:
    return pc.utf8_trim_whitespace(table.column(name).combine_chunks())


def _numbers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """float64 of each text, and a mask of texts that are no number (empty included)."""
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    try:
        values = pc.cast(pc.if_else(pc.equal(text, ""), "nan", text),
                         pa.float64()).to_numpy(zero_copy_only=False)
        return values, empty
    except pa.ArrowInvalid:
        raw = pd.Series(text.to_pandas(), dtype=object)
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        spelled = raw.str.lower().str.lstrip("+-").isin(["nan"]).to_numpy()
        return values, empty | (np.isnan(values) & ~spelled)


def _frames(text: pa.Array) -> np.ndarray:
    """Naive Beijing wall clock (datetime64[us]) of ISO-8601 texts, NaT where unreadable: a
    +08:00 offset is dropped in Arrow; other offsets go through pandas."""
    local = pc.replace_substring_regex(text, _BEIJING, "")
    try:
        return pc.cast(local, pa.timestamp("us")).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    raw = pd.Series(local.to_pandas(), dtype=object)
    out = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
    offset = raw.str.contains(_OFFSET, regex=True).to_numpy(dtype=bool)
    if (~offset).any():
        naive = pd.to_datetime(raw[~offset], format="ISO8601", errors="coerce")
        out[~offset] = naive.to_numpy(dtype="datetime64[us]")
    if offset.any():
        aware = pd.to_datetime(raw[offset], format="ISO8601", errors="coerce", utc=True)
        out[offset] = aware.dt.tz_convert(STOCK_TZ).dt.tz_localize(None).to_numpy(
            dtype="datetime64[us]")
    return out


def screen(table: pa.Table, days: DayCache, volume_unit: str = "shares") -> Screened:
    """Apply the rules to a batch (the codec's table of strings)."""
    n = table.num_rows
    reason = np.full(n, -1, dtype=np.int8)  # index into REASONS; -1 = kept
    detail = np.full(n, "", dtype=object)

    def reject(mask: np.ndarray, code: str, words) -> None:
        """Mark rows of `mask` not rejected yet; `words(i)` explains row i (only rejected
        rows are visited, to word their reason)."""
        hit = np.flatnonzero(mask & (reason < 0))
        reason[hit] = REASONS.index(code)
        for i in hit.tolist():
            detail[i] = words(i)

    nfields = pc.cast(table.column("nfields"), pa.int64()).to_numpy()
    texts = {name: _text(table, name) for name in (*FIELDS, "name")}
    present = {name: pc.not_equal(texts[name], "").to_numpy(zero_copy_only=False)
               for name in FIELDS}
    missing = np.zeros(n, dtype=bool)
    for name in FIELDS:
        missing |= ~present[name]
    reject(nfields == 0, "malformed", lambda i: "entry has no fields (deleted while pending)")
    reject(missing, "malformed", lambda i: "missing field(s) " + ", ".join(
        f for f in FIELDS if not present[f][i]))

    symbol = texts["symbol"]
    reject(~rules.symbol_ok(symbol), "bad_symbol",
           lambda i: rules.symbol_reason(symbol[i].as_py()))

    period_text = texts["period"]
    period_num, period_bad = _numbers(period_text)
    reject(period_bad, "malformed", lambda i: f"period {period_text[i].as_py()!r} is not a "
                                              "number")
    allowed = np.isin(period_num, PERIODS)
    reject(~allowed, "bad_period", lambda i: f"period {period_text[i].as_py()!r} is not one of "
                                             f"{', '.join(map(str, PERIODS))}")
    period = np.where(allowed, period_num, 1).astype(np.int16)

    frame_text = texts["frame"]
    frame = _frames(frame_text)
    reject(np.isnat(frame), "malformed",
           lambda i: f"frame {frame_text[i].as_py()!r} is not ISO-8601 (bar end, Beijing wall "
                     "clock or with an offset)")
    ok_time = ~np.isnat(frame)
    reject(ok_time & rules.time_outside(np.where(ok_time, frame, rules.FIRST_TIME)), "bad_time",
           lambda i: f"frame {frame_text[i].as_py()!r} is outside {rules.TIME_RULE}")

    values: dict[str, np.ndarray] = {}
    for name in VALUES:
        text = texts[name]
        values[name], bad = _numbers(text)
        reject(bad, "malformed", lambda i, t=text, c=name: f"{c} {t[i].as_py()!r} is not a "
                                                           "number")

    # The calendar only for rows still in the running (their frames are in range).
    alive = reason < 0
    day = frame.astype("datetime64[D]")
    trading = np.zeros(n, dtype=bool)
    if alive.any():
        trading[alive], beyond = days.classify(day[alive])
        if beyond:
            out_of_range = alive & np.isin(day, np.array(list(beyond), dtype="datetime64[D]"))
            reject(out_of_range, "calendar", lambda i: beyond[day[i]])
    reject(~trading, NON_TRADING_DAY,
           lambda i: f"{day[i]} is not an XSHG trading day")

    sec = sessions.seconds_of_day(np.where(np.isnat(frame), rules.FIRST_TIME, frame))
    minute = (sec // 60).astype(np.int64)
    on_minute = sec == minute * 60
    in_hours = on_minute & sessions.in_session(frame, check_day=False)
    for p, ends in _ENDS.items():
        if ends is not None:
            sel = period == p
            in_hours[sel] &= np.isin(minute[sel], ends)
    reject(~in_hours, OUTSIDE_SESSION,
           lambda i: f"frame {frame_text[i].as_py()!r} is not a {int(period[i])}-minute bar end "
                     "within 09:30–11:30 / 13:00–15:00")

    stack = np.column_stack([values[c] for c in VALUES])
    reject(~np.isfinite(stack).all(axis=1), "not_finite",
           lambda i: "open, high, low, close, volume and amount must be finite: " + ", ".join(
               f"{c}={values[c][i]!r}" for c in VALUES if not np.isfinite(values[c][i])))
    beyond_mask = np.zeros(n, dtype=bool)
    for c in VALUES:
        beyond_mask |= rules.beyond_bound(np.nan_to_num(values[c]), c)
    reject(beyond_mask, "beyond_bound", lambda i: ", ".join(
        f"{c} {values[c][i]!r} is beyond ±{rules.BOUNDS[c]:g}" for c in VALUES
        if abs(values[c][i]) > rules.BOUNDS[c]))
    o, h, lo, c = (values[k] for k in PRICES)
    reject((h < np.maximum(o, c)) | (lo > np.minimum(o, c)), "high_low",
           lambda i: f"high {h[i]!r} / low {lo[i]!r} do not enclose open {o[i]!r} and close "
                     f"{c[i]!r}")
    reject((values["volume"] < 0) | (values["amount"] < 0), "negative_volume",
           lambda i: f"volume {values['volume'][i]!r} and amount {values['amount'][i]!r} must "
                     "be ≥ 0")

    keep = np.flatnonzero(reason < 0)
    name = texts["name"]
    name = pc.if_else(pc.equal(name, ""), pa.scalar(None, pa.string()), name)
    taken = pa.array(keep)
    # Text columns stay in Arrow (no Python string per bar): the store hands them on as such.
    rows = pd.DataFrame({
        "pos": keep,
        "code": pd.arrays.ArrowStringArray(pc.cast(symbol.take(taken), pa.large_string())),
        "period": period[keep],
        "time": frame[keep],
        "name": pd.arrays.ArrowStringArray(pc.cast(name.take(taken), pa.large_string())),
        **{k: values[k][keep] for k in VALUES},
    })
    rows["volume"] *= VOLUME_UNITS[volume_unit]
    rejected = {int(i): (REASONS[reason[i]], str(detail[i]))
                for i in np.flatnonzero(reason >= 0).tolist()}
    return Screened(rows, rejected)
