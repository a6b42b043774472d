"""One pass from ticks to the kept prints of each bar: symbol-major order, duplicates dropped,
out-of-session and bad prints counted by reason, cumulative volume differenced, and the
reduction of the kept prints to bars."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kline_assets.kernels.bars.clock import (
    _AUCTION_OPEN,
    _CLOSE,
    _DAY_US,
    _MIN_US,
    _NOON,
    _REOPEN,
    _SLOT_LABEL,
    _SLOT_REASON,
    REASONS,
    VOLUME_UNITS,
    good_price,
    good_volume,
)
from kline_assets.kernels.bars.frames import Bars, SynthReport, Ticks, _Carry


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean: row i starts a new run of equal keys."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for k in keys:
            new[1:] |= k[1:] != k[:-1]
    return new


def _sort_order(t: Ticks, us: np.ndarray) -> np.ndarray | None:
    """Permutation to (symbol, time, tick_id, arrival) order; None when already in it."""
    sym, tid = t.symbol, t.tick_id
    if len(us) < 2 or _is_sorted(sym, us, tid):
        return None
    # A feed delivers ticks in time order across symbols: then a stable sort by symbol alone
    # (a radix sort for small integer codes) gives the full order.
    if _time_sorted(us, tid):
        for small in (np.uint8, np.uint16):
            if len(t.names) <= np.iinfo(small).max:
                return np.argsort(sym.astype(small), kind="stable")
    return np.lexsort((us, sym)) if tid is None else np.lexsort((tid, us, sym))


def _order_and_dedupe(
    t: Ticks, mask: np.ndarray | None
) -> tuple[Ticks, np.ndarray | None, int]:
    """The ticks without duplicates in (symbol, time, tick_id, arrival) order (with the
    per-tick trading-day mask moved along), and the number of duplicates dropped."""
    us = t.time.view(np.int64)
    order = _sort_order(t, us)
    if order is not None:
        t, mask = _take_symbol_major(t, order), None if mask is None else mask[order]
    return _dedupe(t, mask)


def _dedupe(t: Ticks, mask: np.ndarray | None) -> tuple[Ticks, np.ndarray | None, int]:
    """`_order_and_dedupe` of ticks already in (symbol, time, tick_id, arrival) order."""
    us = t.time.view(np.int64)
    sym, tid = t.symbol, t.tick_id
    if tid is not None:
        dup = ~_starts(sym, us, tid)
    else:
        # Without tick ids a duplicate repeats the whole print; only ticks sharing (symbol,
        # time) can be duplicates, so only those runs pay for the wide sort.
        same = ~_starts(sym, us)
        dup = np.zeros(len(us), dtype=bool)
        if same.any():
            tied = same.copy()
            tied[:-1] |= same[1:]
            sub = np.flatnonzero(tied)
            o2 = sub[np.lexsort((sub, t.amount[sub], t.volume[sub], t.price[sub], us[sub],
                                 sym[sub]))]
            dup[o2[~_starts(sym[o2], us[o2], t.price[o2], t.volume[o2], t.amount[o2])]] = True
    n_dup = int(dup.sum())
    if n_dup:
        keep = np.flatnonzero(~dup)
        t = t.take(keep)
        mask = None if mask is None else mask[keep]
    return t, mask, n_dup


def _time_sorted(us: np.ndarray, tid: np.ndarray | None) -> bool:
    """Whether the ticks are in (time, tick_id) order across symbols, as a feed delivers them."""
    if not (us[1:] >= us[:-1]).all():
        return False
    return tid is None or not ((us[1:] == us[:-1]) & (tid[1:] < tid[:-1])).any()


def _take_symbol_major(t: Ticks, order: np.ndarray) -> Ticks:
    """`t.take(order)` for an `order` sorted by symbol first: the symbol column is rebuilt from
    the symbol counts instead of gathered."""
    sym = t.symbol
    if len(sym) and sym.min() >= 0:
        counts = np.bincount(sym)
        sorted_sym = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    else:
        sorted_sym = sym[order]

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[order]

    return Ticks(sorted_sym, t.names, t.time[order], t.price[order], t.volume[order],
                 t.amount[order], pick(t.tick_id), pick(t.high), pick(t.low))


def _is_sorted(sym: np.ndarray, us: np.ndarray, tid: np.ndarray | None) -> bool:
    if (sym[1:] < sym[:-1]).any():
        return False
    same = sym[1:] == sym[:-1]
    if (same & (us[1:] < us[:-1])).any():
        return False
    if tid is not None:
        return not (same & (us[1:] == us[:-1]) & (tid[1:] < tid[:-1])).any()
    return True


def _day_mask(trading_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Trading-day flag per tick from the trading days (datetime64[D]) covering the ticks."""
    days = np.asarray(trading_day).astype("datetime64[D]").view(np.int64)
    if len(day) == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = int(day.min()), int(day.max())
    table = np.zeros(hi - lo + 1, dtype=bool)
    inside = days[(days >= lo) & (days <= hi)]
    table[inside - lo] = True
    return table[day - lo]


def _reasons(t: Ticks, us: np.ndarray, is_trading: np.ndarray) -> np.ndarray:
    """Rejection code per tick: 0 kept, else 1 + index into REASONS."""
    sod = us % _DAY_US
    price, vol, amt = t.price, t.volume, t.amount
    code = np.zeros(len(us), dtype=np.int8)
    checks = [
        ~is_trading,
        sod < _AUCTION_OPEN,
        (sod > _NOON) & (sod < _REOPEN),
        sod > _CLOSE,
        ~good_price(price),
        ~good_volume(vol, amt),
    ]
    for i in range(len(checks) - 1, -1, -1):  # lowest priority first, so the first reason wins
        code[checks[i]] = i + 1
    return code


@dataclass
class _Kept:
    """Kept ticks in order with their bar keys and per-print volume/amount."""

    sym: np.ndarray
    day: np.ndarray
    label: np.ndarray
    us: np.ndarray
    tid: np.ndarray | None
    price: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray
    amount: np.ndarray
    raw_volume: np.ndarray
    raw_amount: np.ndarray
    raw_high: np.ndarray | None
    raw_low: np.ndarray | None
    reset_at: np.ndarray | None = None  # positions of the cumulative resets


def _is_mask(trading_day: np.ndarray, t: Ticks) -> bool:
    a = np.asarray(trading_day)
    return a.dtype == bool and len(a) == len(t)


def _prepare(
    t: Ticks, trading_day: np.ndarray, profile: str, cumulative: bool, volume_unit: str,
    carry: _Carry | None, sorted_ticks: tuple[Ticks, np.ndarray | None, int] | None = None,
) -> tuple[_Kept, SynthReport]:
    """Order, dedupe, validate, difference and label the ticks. `trading_day` is either a
    boolean mask per tick or the trading days (datetime64) covering the ticks' dates."""
    report = SynthReport(received=len(t))
    is_mask = _is_mask(trading_day, t)
    if sorted_ticks is None:
        sorted_ticks = _order_and_dedupe(t, np.asarray(trading_day) if is_mask else None)
    t, mask, report.duplicates = sorted_ticks
    us = t.time.view(np.int64)
    minute = us // _MIN_US
    day = minute // 1440
    slot = minute - day * 1440
    slot += slot
    slot += us != minute * _MIN_US
    del minute
    is_trading = mask.astype(bool) if mask is not None else _day_mask(trading_day, day)
    price, vol, amt = t.price, t.volume, t.amount
    time_code = _SLOT_REASON[slot]
    price_ok = good_price(price)
    volume_ok = good_volume(vol, amt)
    ok = is_trading & price_ok
    ok &= volume_ok
    ok &= time_code == 0
    n_ok = int(np.count_nonzero(ok))
    counts = np.zeros(len(REASONS) + 1, dtype=np.int64)
    if n_ok != len(t):
        bad = np.flatnonzero(~ok)
        code = np.zeros(len(bad), dtype=np.int8)  # lowest priority first: the first reason wins
        code[~volume_ok[bad]] = 6
        code[~price_ok[bad]] = 5
        tc = time_code[bad]
        code[tc > 0] = tc[tc > 0]
        code[~is_trading[bad]] = 1
        counts = np.bincount(code, minlength=len(REASONS) + 1)
    report.rejected = {r: int(counts[i + 1]) for i, r in enumerate(REASONS)}
    del price_ok, volume_ok, time_code, is_trading
    if n_ok != len(t):
        keep = np.flatnonzero(ok)
        t, us, day, slot = t.take(keep), us[keep], day[keep], slot[keep]
    del ok
    report.kept = len(t)
    sym = t.symbol
    n = len(sym)
    unit = VOLUME_UNITS[volume_unit]
    raw_v = t.volume * unit if unit != 1.0 else t.volume
    raw_a = t.amount
    group = _starts(sym, day)
    first = np.flatnonzero(group)
    del group
    if carry is not None:
        same_day = carry.day[sym[first]] == day[first]
    reset_at = None
    if cumulative:
        dv = np.empty_like(raw_v)
        da = np.empty_like(raw_a)
        np.subtract(raw_v[1:], raw_v[:-1], out=dv[1:])
        np.subtract(raw_a[1:], raw_a[:-1], out=da[1:])
        if carry is not None:
            dv[first] = raw_v[first] - np.where(same_day, carry.cum_volume[sym[first]], 0.0)
            da[first] = raw_a[first] - np.where(same_day, carry.cum_amount[sym[first]], 0.0)
        else:
            dv[first] = raw_v[first] - 0.0
            da[first] = raw_a[first] - 0.0
        reset = dv < 0
        reset |= da < 0
        if reset.any():
            dv[reset], da[reset] = 0.0, 0.0
            report.resets = int(reset.sum())
            report.reset_symbols = [str(s) for s in t.names[sym[reset]]]
            report.reset_times = list(t.time[reset])
            reset_at = np.flatnonzero(reset)
        del reset
    else:
        dv, da = raw_v, raw_a
    price = t.price
    high_eff, low_eff = price, price
    raw_h = raw_l = None
    for name in ("high", "low"):
        x = getattr(t, name)
        if x is None:
            continue
        # Whether x moved past the symbol's previous x of the day (none before a day's first).
        moved = np.empty(n, dtype=bool)
        cmp = np.greater if name == "high" else np.less
        if n:
            cmp(x[1:], x[:-1], out=moved[1:])
            if carry is not None:
                carried = carry.day_high if name == "high" else carry.day_low
                prev = np.where(same_day, carried[sym[first]], np.nan)
                moved[first] = cmp(x[first], prev)
            else:
                moved[first] = False
        eff = price.copy()
        if name == "high":
            raw_h, high_eff = x, eff
            np.maximum(price, x, out=eff, where=moved)
        else:
            raw_l, low_eff = x, eff
            np.minimum(price, x, out=eff, where=moved)
        del moved
    label = _SLOT_LABEL[profile][slot]
    tid = t.tick_id
    kept = _Kept(sym, day, label, us, tid, price, high_eff, low_eff, dv, da, raw_v, raw_a,
                 raw_h, raw_l, reset_at)
    return kept, report


def _aggregate(k: _Kept, names: np.ndarray) -> tuple[Bars, np.ndarray]:
    """1-minute bars of kept ticks, and the integer symbol code of each bar."""
    if len(k.sym) == 0:
        return Bars.empty(1), np.zeros(0, dtype=np.int64)
    key = k.day * 1440
    key += k.label
    starts = np.flatnonzero(_starts(k.sym, key))
    ends = np.r_[starts[1:], len(k.sym)] - 1
    frame = (key[starts] * 60).astype("datetime64[s]")
    bars = Bars(
        1, names[k.sym[starts]], frame, k.price[starts],
        np.maximum.reduceat(k.high, starts), np.minimum.reduceat(k.low, starts),
        k.price[ends], np.add.reduceat(k.volume, starts), np.add.reduceat(k.amount, starts),
    )
    return bars, k.sym[starts]
