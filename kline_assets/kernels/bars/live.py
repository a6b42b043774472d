"""The live path: bars continued batch after batch from a per-symbol state that any consumer
process can pick up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kline_assets.kernels.bars.clock import _check_options
from kline_assets.kernels.bars.frames import Bars, SynthReport, Ticks, _Carry
from kline_assets.kernels.bars.periods import fill_bars
from kline_assets.kernels.bars.prepare import (
    _aggregate,
    _is_mask,
    _order_and_dedupe,
    _prepare,
    _starts,
)


@dataclass
class SymbolState:
    """What the live path carries per symbol from one batch to the next, aligned with the
    batch's `names`: the last tick seen (time in µs, tick id; rejected prints included), and
    the day, cumulative volume/amount and day high/low of the last kept print. A consumer keeps
    it next to the bars (in Redis), so any process can continue where another stopped."""

    last_us: np.ndarray
    last_tid: np.ndarray
    day: np.ndarray
    cum_volume: np.ndarray
    cum_amount: np.ndarray
    day_high: np.ndarray
    day_low: np.ndarray

    FIELDS = ("last_us", "last_tid", "day", "cum_volume", "cum_amount", "day_high", "day_low")
    NONE = (np.iinfo(np.int64).min, np.iinfo(np.int64).min, -1, 0.0, 0.0, np.nan, np.nan)

    @classmethod
    def empty(cls, n: int) -> SymbolState:
        """No symbol seen yet."""
        return cls(*(np.full(n, v, dtype=np.int64 if i < 3 else np.float64)
                     for i, v in enumerate(cls.NONE)))

    def extend(self, extra: int) -> SymbolState:
        """The state with `extra` new, unseen symbols at the end."""
        more = SymbolState.empty(extra)
        return SymbolState(*(np.concatenate([getattr(self, f), getattr(more, f)])
                             for f in self.FIELDS))

    def carry(self) -> _Carry:
        return _Carry(self.day, self.cum_volume, self.cum_amount, self.day_high, self.day_low)


def _continue(
    t: Ticks, trading_day: np.ndarray, state: SymbolState, profile: str, cumulative: bool,
    volume_unit: str,
) -> tuple[Bars, np.ndarray, SynthReport]:
    """`continue_bars`, also returning each bar's symbol code."""
    is_mask = _is_mask(trading_day, t)
    g, mask, dups = _order_and_dedupe(t, np.asarray(trading_day) if is_mask else None)
    s, u = g.symbol, g.time.view(np.int64)
    last_u = state.last_us[s]
    if g.tick_id is None:
        fresh = u > last_u
    else:
        fresh = (u > last_u) | ((u == last_u) & (g.tick_id > state.last_tid[s]))
    stale = int(len(fresh) - np.count_nonzero(fresh))
    if stale:
        keep = np.flatnonzero(fresh)
        g = g.take(keep)
        mask = None if mask is None else mask[keep]
    carry = state.carry()
    kept, report = _prepare(g, trading_day if not is_mask else mask, profile, cumulative,
                            volume_unit, carry, sorted_ticks=(g, mask, dups + stale))
    report.received = len(t)
    if len(g):
        # The last (time, tick_id) of every symbol seen, rejected prints included.
        so, uo = g.symbol, g.time.view(np.int64)
        last = np.flatnonzero(np.r_[so[1:] != so[:-1], True])
        state.last_us[so[last]] = uo[last]
        if g.tick_id is not None:
            state.last_tid[so[last]] = g.tick_id[last]
    if len(kept.sym) == 0:
        return Bars.empty(1), np.zeros(0, dtype=np.int64), report
    carry.remember_last(kept)
    bars, codes = _aggregate(kept, t.names)
    return bars, codes, report


def continue_bars(
    ticks: Ticks,
    trading_day: np.ndarray,
    state: SymbolState,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
) -> tuple[Bars, SynthReport]:
    """1-minute bars of one batch of ticks continuing `state` (updated in place; aligned with
    `ticks.names`), in O(batch).

    Ticks at or before a symbol's last tick in `state` are dropped as already seen (counted as
    duplicates), so applying a batch twice adds nothing. Each symbol's first bar may continue
    the last bar of the previous batch: the caller folds it in (open kept, high max, low min,
    close replaced, volume and amount added).
    """
    _check_options(profile, volume_unit)
    bars, _, report = _continue(ticks, trading_day, state, profile, cumulative, volume_unit)
    return bars, report


class IncrementalBars:
    """The live path in memory: 1-minute bars updated batch by batch in O(batch).

    State per symbol: a `SymbolState` and the open (last) bar. Ticks at or before a symbol's
    last tick are dropped as already seen, so applying a batch twice changes nothing; without
    tick ids that means a batch boundary must not split prints sharing one timestamp.
    """

    def __init__(self, *, profile: str = "end", cumulative: bool = False,
                 volume_unit: str = "shares") -> None:
        _check_options(profile, volume_unit)
        self.profile, self.cumulative, self.volume_unit = profile, cumulative, volume_unit
        self.report = SynthReport()
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._state = SymbolState.empty(0)
        self._open = Bars.empty(1)  # one row per symbol index; frame NaT = none
        self._closed: list[Bars] = []

    def _grow(self, names: np.ndarray) -> np.ndarray:
        """Global index of each name, registering new symbols."""
        for name in names:
            if name not in self._index:
                self._index[name] = len(self._names)
                self._names.append(name)
        size, old = len(self._names), len(self._state.last_us)
        if size > old:
            extra = size - old

            def ext(a: np.ndarray, value: object) -> np.ndarray:
                return np.concatenate([a, np.full(extra, value, dtype=a.dtype)])

            self._state = self._state.extend(extra)
            o = self._open
            self._open = Bars(1, np.array(self._names, dtype=object),
                              ext(o.frame, np.datetime64("NaT")),
                              *(ext(getattr(o, col), np.nan) for col in Bars.COLUMNS))
        return np.array([self._index[n] for n in names], dtype=np.int64)

    def update(self, ticks: Ticks, trading_day: np.ndarray) -> Bars:
        """Apply one batch; returns the 1-minute bars it created or changed."""
        gidx = self._grow([str(n) for n in ticks.names])
        t = Ticks(gidx[ticks.symbol], np.array(self._names, dtype=object), ticks.time,
                  ticks.price, ticks.volume, ticks.amount, ticks.tick_id, ticks.high, ticks.low)
        bars, codes, report = _continue(t, trading_day, self._state, self.profile,
                                        self.cumulative, self.volume_unit)
        self.report.add(report)
        if len(bars) == 0:
            return bars
        return self._merge(bars, codes)

    def _merge(self, bars: Bars, codes: np.ndarray) -> Bars:
        """Fold each symbol's first new bar into its open bar when they share a frame; bars the
        batch moved past are closed."""
        o = self._open
        first = np.flatnonzero(_starts(codes))
        last = np.r_[first[1:], len(codes)] - 1
        fc = codes[first]
        joins = o.frame[fc] == bars.frame[first]
        j, jc = first[joins], fc[joins]
        bars.open[j] = o.open[jc]
        bars.high[j] = np.maximum(bars.high[j], o.high[jc])
        bars.low[j] = np.minimum(bars.low[j], o.low[jc])
        bars.volume[j] += o.volume[jc]
        bars.amount[j] += o.amount[jc]
        moved = fc[~joins & ~np.isnat(o.frame[fc])]
        if len(moved):
            self._closed.append(o.take(moved))
        not_last = np.ones(len(codes), dtype=bool)
        not_last[last] = False
        if not_last.any():
            self._closed.append(bars.take(np.flatnonzero(not_last)))
        lc = codes[last]
        o.frame[lc] = bars.frame[last]
        for col in Bars.COLUMNS:
            getattr(o, col)[lc] = getattr(bars, col)[last]
        return bars

    def bars(self, fill: bool = False) -> Bars:
        """Every 1-minute bar so far (the open bars included), sorted by (symbol, frame)."""
        o = self._open
        opened = o.take(np.flatnonzero(~np.isnat(o.frame)))
        self._closed = [Bars.concat([*self._closed], 1)]
        out = Bars.concat([*self._closed, opened], 1)
        return fill_bars(out, self.profile) if fill else out
