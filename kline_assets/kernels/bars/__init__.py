"""Ticks and Level-1 snapshots → 1/5/15/30/60-minute A-share bars, the way vendors label them.

Users hold these bars against Tushare, AkShare, TDX, JoinQuant and RiceQuant minute bars, so the
labelling conventions decide everything:

- profile `end` (TDX, JoinQuant, RiceQuant; 240 bars a full day): a bar is labelled by its end
  T and covers (T−1 min, T]; the opening auction and everything up to 09:31:00 fold into the
  09:31 bar, 13:00:00…13:01:00 into 13:01, so 11:30:00 and 15:00:00 close their sessions'
  last bars instead of forming bars of their own;
- profile `tushare` (Tushare, EastMoney/AkShare; 241 bars): the auction before 09:30:00 is a
  09:30 bar of its own, 09:30:00…09:31:00 is 09:31, the rest as `end`.

N-minute bars are cut per session (morning from 09:30, afternoon from 13:00), so no bar spans
the lunch break: 60-minute bars end 10:30, 11:30, 14:00, 15:00.

Everything is vectorised (a sort into symbol order, run boundaries, ufunc.reduceat): a trading
day of 3-second snapshots for the whole market is millions of ticks, and a per-tick Python loop
is what makes the usual bar generators slow. The batch kernel works through cache-sized chunks
(of whole symbols, or of whole bars in time order for time-ordered feeds), since full-length
temporaries and market-wide gathers cost more in memory traffic than the bar math itself.
The kernel does no I/O and knows no calendar: the caller passes
a trading-day mask per tick (from `kline_assets.stocks.sessions.trading_day_mask`).
Time is naive Beijing wall clock as datetime64; volume leaves in shares, amount in CNY.

Modules: `clock` (profiles, periods, the bar a moment belongs to), `frames` (Ticks, Bars,
SynthReport), `prepare` (ticks → kept prints → bars), `batch` (ticks_to_bars, synthesize),
`periods` (fill_bars, resample_bars), `live` (continue_bars, IncrementalBars).
"""

from kline_assets.kernels.bars.batch import synthesize, ticks_to_bars
from kline_assets.kernels.bars.clock import (
    PERIODS,
    PROFILE_LABELS,
    PROFILES,
    REASONS,
    VOLUME_UNITS,
    block_end_minutes,
    good_price,
    good_volume,
    minute_labels,
)
from kline_assets.kernels.bars.frames import Bars, SynthReport, Ticks
from kline_assets.kernels.bars.live import IncrementalBars, SymbolState, continue_bars
from kline_assets.kernels.bars.periods import fill_bars, resample_bars

__all__ = [
    "PERIODS",
    "PROFILES",
    "PROFILE_LABELS",
    "REASONS",
    "VOLUME_UNITS",
    "Bars",
    "IncrementalBars",
    "SymbolState",
    "SynthReport",
    "Ticks",
    "block_end_minutes",
    "continue_bars",
    "fill_bars",
    "good_price",
    "good_volume",
    "minute_labels",
    "resample_bars",
    "synthesize",
    "ticks_to_bars",
]
