"""The batch kernel: a day (or more) of ticks to 1-minute bars in cache-sized chunks, and every
period from one pass."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from kline_assets.kernels.bars.clock import (
    _DAY_US,
    _MIN_US,
    PERIODS,
    _check_options,
    block_end_minutes,
    minute_labels,
)
from kline_assets.kernels.bars.frames import Bars, SynthReport, Ticks, _Carry
from kline_assets.kernels.bars.periods import fill_bars, resample_bars
from kline_assets.kernels.bars.prepare import (
    _aggregate,
    _dedupe,
    _is_mask,
    _is_sorted,
    _prepare,
    _sort_order,
    _time_sorted,
)


def ticks_to_bars(
    ticks: Ticks,
    trading_day: np.ndarray,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
    fill: bool = False,
) -> tuple[Bars, SynthReport]:
    """1-minute bars of `ticks`; `trading_day[i]` says whether tick i's date is a session."""
    _check_options(profile, volume_unit)
    bars, report = _bars_in_chunks(ticks, trading_day, profile, cumulative, volume_unit)
    return (fill_bars(bars, profile) if fill else bars), report


# Ticks per chunk of whole symbols: a chunk's temporaries stay in cache and are recycled by the
# allocator, where full-length temporaries would each fault in tens of MB of fresh pages.
_CHUNK = 1 << 17


def _bars_in_chunks(
    t: Ticks, trading_day: np.ndarray, profile: str, cumulative: bool, volume_unit: str
) -> tuple[Bars, SynthReport]:
    """`_prepare` + `_aggregate` over chunks of whole symbols in symbol order: every step works
    per symbol, so the chunks' bars and reports just add up."""
    is_mask = _is_mask(trading_day, t)
    mask = np.asarray(trading_day, dtype=bool) if is_mask else None
    us = t.time.view(np.int64)
    n = len(t)
    if (n > _CHUNK and len(t.names) <= np.iinfo(np.uint16).max
            and not _is_sorted(t.symbol, us, t.tick_id) and _time_sorted(us, t.tick_id)):
        return _bars_in_time_chunks(t, trading_day, mask, profile, cumulative, volume_unit)
    order = _sort_order(t, us)
    sym = t.symbol
    if n and sym.min() >= 0:
        counts = np.bincount(sym)
        ends = np.cumsum(counts)
        cuts = np.unique(ends[np.searchsorted(ends, np.arange(_CHUNK, n, _CHUNK))])
        bounds = [0, *(int(c) for c in cuts if 0 < c < n), n]
        codes = np.arange(len(counts), dtype=np.int64)
    else:
        bounds, counts = [0, n], None
    report = SynthReport()
    parts: list[Bars] = []
    for lo, hi in pairwise(bounds):
        if order is None:
            idx: np.ndarray | slice = slice(lo, hi)
            csym = sym[idx]
        else:
            idx = order[lo:hi]
            if counts is None:
                csym = sym[idx]
            else:
                first, last = np.searchsorted(ends, [lo, hi - 1], side="right")
                csym = np.repeat(codes[first:last + 1], np.diff(np.clip(
                    np.r_[lo, ends[first:last + 1]], lo, hi)))

        def pick(a: np.ndarray | None, idx: np.ndarray | slice = idx) -> np.ndarray | None:
            return None if a is None else a[idx]

        chunk = Ticks(csym, t.names, t.time[idx], t.price[idx], t.volume[idx], t.amount[idx],
                      pick(t.tick_id), pick(t.high), pick(t.low))
        g, cmask, dups = _dedupe(chunk, pick(mask))
        kept, part = _prepare(g, cmask if cmask is not None else trading_day, profile,
                              cumulative, volume_unit, None, sorted_ticks=(g, cmask, dups))
        part.received = len(chunk)
        report.add(part)
        bars, _ = _aggregate(kept, t.names)
        parts.append(bars)
    if len(parts) == 1:
        return parts[0], report
    return Bars(1, *(np.concatenate([getattr(b, c) for b in parts])
                     for c in ("symbol", "frame", *Bars.COLUMNS))), report


def _bars_in_time_chunks(
    t: Ticks, trading_day: np.ndarray, mask: np.ndarray | None, profile: str, cumulative: bool,
    volume_unit: str,
) -> tuple[Bars, SynthReport]:
    """Bars of time-ordered ticks, a chunk of consecutive times at a time: each chunk is put in
    symbol order on its own (a small radix sort, local gathers) and continues every symbol's
    cumulative volume/amount and day high/low from the chunks before it, the way
    `IncrementalBars` does. Chunks end where a bar ends, so no bar (and no timestamp, so no
    duplicate) is split between chunks, and the chunks' bars are the one-pass bars exactly."""
    us = t.time.view(np.int64)
    n, size = len(t), len(t.names)

    def bar_key(u: np.ndarray) -> np.ndarray:  # day * 1440 + end label; grows with time
        d = u // _DAY_US
        return d * 1440 + minute_labels(u - d * _DAY_US, profile)

    # Cut after the last tick of the bar each probe falls in, keeping only cuts between bars.
    cuts = np.unique(np.searchsorted(us, bar_key(us[np.arange(_CHUNK, n, _CHUNK)]) * _MIN_US,
                                     side="right"))
    cuts = cuts[(cuts > 0) & (cuts < n)]
    cuts = cuts[bar_key(us[cuts - 1]) != bar_key(us[cuts])]
    bounds = [0, *(int(c) for c in cuts), n]
    small = np.uint8 if size <= np.iinfo(np.uint8).max else np.uint16
    carry = _Carry(np.full(size, -1, dtype=np.int64), np.zeros(size), np.zeros(size),
                   np.full(size, np.nan), np.full(size, np.nan))
    report = SynthReport()
    parts: list[Bars] = []
    part_codes: list[np.ndarray] = []
    reset_codes: list[np.ndarray] = []
    for lo, hi in pairwise(bounds):
        csym = t.symbol[lo:hi]
        order = np.argsort(csym.astype(small), kind="stable")

        def pick(a: np.ndarray | None, lo: int = lo, hi: int = hi,
                 order: np.ndarray = order) -> np.ndarray | None:
            return None if a is None else a[lo:hi][order]

        chunk = Ticks(csym[order], t.names, pick(t.time), pick(t.price), pick(t.volume),
                      pick(t.amount), pick(t.tick_id), pick(t.high), pick(t.low))
        g, cmask, dups = _dedupe(chunk, pick(mask))
        kept, part = _prepare(g, cmask if cmask is not None else trading_day, profile,
                              cumulative, volume_unit, carry, sorted_ticks=(g, cmask, dups))
        part.received = len(chunk)
        report.add(part)
        if kept.reset_at is not None:
            reset_codes.append(kept.sym[kept.reset_at])
        if len(kept.sym) == 0:
            continue
        carry.remember_last(kept)
        bars, codes = _aggregate(kept, t.names)
        parts.append(bars)
        part_codes.append(codes)
    if reset_codes:
        # Report the resets in (symbol, time) order, as one pass over all the ticks would.
        o = np.argsort(np.concatenate(reset_codes), kind="stable")
        report.reset_symbols = [report.reset_symbols[i] for i in o]
        report.reset_times = [report.reset_times[i] for i in o]
    if not parts:
        return Bars.empty(1), report
    # Chunks follow each other in time and bars within a chunk are in (symbol, frame) order:
    # a stable sort by symbol gives (symbol, frame) order overall.
    o = np.argsort(np.concatenate(part_codes).astype(small), kind="stable")
    return Bars(1, *(np.concatenate([getattr(b, c) for b in parts])[o]
                     for c in ("symbol", "frame", *Bars.COLUMNS))), report


def synthesize(
    ticks: Ticks,
    trading_day: np.ndarray,
    periods: tuple[int, ...] = PERIODS,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
    fill: bool = False,
) -> tuple[dict[int, Bars], SynthReport]:
    """Bars of every asked period from one pass over the ticks. With `fill`, N-minute bars
    come from the filled 1-minute bars: an N-minute series is as complete as the 1-minute
    series it is built from (vendors serve an illiquid symbol's every block, flat at the last
    close)."""
    for p in periods:
        block_end_minutes(np.zeros(0, dtype=np.int64), p)
    one, report = ticks_to_bars(ticks, trading_day, profile=profile, cumulative=cumulative,
                                volume_unit=volume_unit, fill=fill)
    return {p: one if p == 1 else resample_bars(one, p) for p in periods}, report
