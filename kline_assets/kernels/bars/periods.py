"""1-minute bars filled to the full session grid, and resampled to N-minute bars per session."""

from __future__ import annotations

import numpy as np

from kline_assets.kernels.bars.clock import (
    PROFILE_LABELS,
    _check_options,
    _day_minute,
    block_end_minutes,
)
from kline_assets.kernels.bars.frames import Bars
from kline_assets.kernels.bars.prepare import _starts


def fill_bars(bars: Bars, profile: str = "end") -> Bars:
    """Flat zero-volume bars at the previous close for every session minute between a symbol's
    first and last bar of each day, for users who want a complete grid."""
    _check_options(profile, "shares")
    if len(bars) == 0:
        return bars
    labels = PROFILE_LABELS[profile]
    pos_of = np.full(1441, -1, dtype=np.int64)
    pos_of[labels] = np.arange(len(labels))
    day, minute = _day_minute(bars.frame)
    pos = pos_of[minute]
    if (pos < 0).any():
        raise ValueError("fill needs 1-minute bars on the profile's session labels")
    grp = _starts(bars.symbol, day)
    gstart = np.flatnonzero(grp)
    gend = np.r_[gstart[1:], len(bars)] - 1
    first, last = pos[gstart], pos[gend]
    counts = last - first + 1
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    total = int(counts.sum())
    gid_out = np.repeat(np.arange(len(gstart)), counts)
    pos_out = first[gid_out] + np.arange(total) - offsets[gid_out]
    gid_bar = np.cumsum(grp) - 1
    at = offsets[gid_bar] + pos - first[gid_bar]
    src = np.full(total, -1, dtype=np.int64)
    src[at] = np.arange(len(bars))
    prev = np.maximum.accumulate(np.where(src >= 0, np.arange(total), -1))
    has = src >= 0
    from_bar = src[prev]
    close = bars.close[from_bar]
    frame = ((day[gstart][gid_out] * 1440 + labels[pos_out]) * 60).astype("datetime64[s]")

    def col(name: str, flat: np.ndarray) -> np.ndarray:
        return np.where(has, getattr(bars, name)[from_bar], flat)

    zero = np.zeros(total)
    return Bars(1, bars.symbol[gstart][gid_out], frame, col("open", close), col("high", close),
                col("low", close), close, col("volume", zero), col("amount", zero))


def resample_bars(bars: Bars, period: int) -> Bars:
    """N-minute bars from 1-minute bars sorted by (symbol, frame): vendor or synthesised alike."""
    if period == 1:
        _ = block_end_minutes(np.zeros(0, dtype=np.int64), period)
        return bars
    if len(bars) == 0:
        return Bars.empty(period)
    day, minute = _day_minute(bars.frame)
    block = block_end_minutes(minute, period)
    starts = np.flatnonzero(_starts(bars.symbol, day, block))
    ends = np.r_[starts[1:], len(bars)] - 1
    frame = ((day[starts] * 1440 + block[starts]) * 60).astype("datetime64[s]")
    return Bars(
        period, bars.symbol[starts], frame, bars.open[starts],
        np.maximum.reduceat(bars.high, starts), np.minimum.reduceat(bars.low, starts),
        bars.close[ends], np.add.reduceat(bars.volume, starts),
        np.add.reduceat(bars.amount, starts),
    )
