"""Bench: one trading day of 3-second Level-1 snapshots → 1/5/15/30/60-minute bars.

1,000 symbols × 4,801 snapshots (the 09:25 auction, then every 3 s to 11:30:00 and from
13:00:03 to 15:00:00) ≈ 4.8M snapshots with cumulative volume/amount and day high/low, in
arrival order (time-major, as a market feed delivers them), on 2025-10-09.

  kernel     kline_assets.kernels.bars.synthesize: every period from one pass
  generator  the common per-tick bar generator in the style of vnpy's BarGenerator: one Python
             call per tick, the bar closes when the minute changes, N-minute bars from
             finished 1-minute bars (per-tick values handed over as plain Python numbers, so
             object construction is not charged to it)

Prints ticks/second for both, `ratio = generator / kernel` and peak RSS.

    python bench/ticks.py [--symbols 1000] [--skip-generator]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import peak_rss_mib

from kline_assets.kernels.bars import PERIODS, Ticks, synthesize
from kline_assets.stocks.sessions import trading_days

DAY = "2025-10-09"


def snapshot_clock(step_s: int = 3) -> np.ndarray:
    """Seconds of the day of each snapshot: the auction, then every step through both sessions."""
    morning = np.arange(9 * 3600 + 30 * 60 + step_s, 11 * 3600 + 30 * 60 + 1, step_s)
    afternoon = np.arange(13 * 3600 + step_s, 15 * 3600 + 1, step_s)
    return np.concatenate([[9 * 3600 + 25 * 60], morning, afternoon])


def make_ticks(symbols: int, seed: int = 11) -> Ticks:
    rng = np.random.default_rng(seed)
    clock = snapshot_clock()
    n_t = len(clock)
    base = 5 + rng.random(symbols) * 95
    steps = rng.normal(0, 0.0004, (n_t, symbols))
    price = np.round(base * np.exp(np.cumsum(steps, axis=0)), 2)
    traded = rng.integers(0, 60, (n_t, symbols)) * 100.0
    traded[0] *= 20  # the opening auction
    cum_vol = np.cumsum(traded, axis=0)
    cum_amt = np.cumsum(traded * price, axis=0)
    high = np.maximum.accumulate(price * (1 + rng.random((n_t, symbols)) * 0.001), axis=0)
    low = np.minimum.accumulate(price * (1 - rng.random((n_t, symbols)) * 0.001), axis=0)
    times = np.datetime64(DAY, "us") + (clock * 1_000_000).astype("timedelta64[us]")
    names = np.array([f"{600000 + i:06d}.SH" for i in range(symbols)], dtype=object)
    return Ticks(
        symbol=np.tile(np.arange(symbols), n_t), names=names,
        time=np.repeat(times, symbols), price=price.ravel(), volume=cum_vol.ravel(),
        amount=cum_amt.ravel(), high=high.ravel(), low=low.ravel(),
    )


class BarGenerator:
    """Per-tick bar generator as commonly written (vnpy's BarGenerator): kept for comparison,
    including its habits — the first tick's volume is lost, a bar is only emitted when a tick
    of the next minute arrives, windows close on the minute's arithmetic."""

    def __init__(self, windows: tuple[int, ...]) -> None:
        self.bar: list | None = None
        self.last_volume: float | None = None
        self.last_amount = 0.0
        self.bars: list[list] = []
        self.windows = windows
        self.window_bars: dict[int, list | None] = dict.fromkeys(windows)
        self.finished: dict[int, list[list]] = {w: [] for w in windows}

    def update_tick(self, minute: int, price: float, volume: float, amount: float) -> None:
        bar = self.bar
        if bar is None or bar[0] != minute:
            if bar is not None:
                self.on_bar(bar)
            bar = self.bar = [minute, price, price, price, price, 0.0, 0.0]
        else:
            if price > bar[2]:
                bar[2] = price
            if price < bar[3]:
                bar[3] = price
            bar[4] = price
        if self.last_volume is not None:
            bar[5] += max(volume - self.last_volume, 0.0)
            bar[6] += max(amount - self.last_amount, 0.0)
        self.last_volume, self.last_amount = volume, amount

    def on_bar(self, bar: list) -> None:
        self.bars.append(bar)
        for w in self.windows:
            wb = self.window_bars[w]
            if wb is None:
                wb = self.window_bars[w] = list(bar)
            else:
                wb[2] = max(wb[2], bar[2])
                wb[3] = min(wb[3], bar[3])
                wb[4] = bar[4]
                wb[5] += bar[5]
                wb[6] += bar[6]
            if (bar[0] + 1) % w == 0:
                self.finished[w].append(wb)
                self.window_bars[w] = None


def run_generator(ticks: Ticks) -> tuple[float, int]:
    """Seconds for the per-tick loop alone, and 1-minute bars emitted."""
    minute = ((ticks.time.view(np.int64) // 60_000_000) % 1440).tolist()
    sym = ticks.symbol.tolist()
    price, vol, amt = ticks.price.tolist(), ticks.volume.tolist(), ticks.amount.tolist()
    windows = tuple(p for p in PERIODS if p != 1)
    gens = [BarGenerator(windows) for _ in range(len(ticks.names))]
    t0 = time.perf_counter()
    for i in range(len(sym)):
        gens[sym[i]].update_tick(minute[i], price[i], vol[i], amt[i])
    seconds = time.perf_counter() - t0
    return seconds, sum(len(g.bars) for g in gens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--skip-generator", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    ticks = make_ticks(args.symbols)
    n = len(ticks)
    print(f"{n:,} snapshots of {args.symbols} symbols on {DAY} "
          f"(generated in {time.perf_counter() - t0:.1f} s)")

    trading_days(DAY, DAY)  # load the exchange calendar once, outside the timing
    t0 = time.perf_counter()
    first, last = ticks.time.min(), ticks.time.max()
    days = trading_days(str(first)[:10], str(last)[:10]).values.astype("datetime64[D]")
    bars, report = synthesize(ticks, days, PERIODS, cumulative=True)
    kernel_s = time.perf_counter() - t0
    kernel_rss = peak_rss_mib()
    counts = ", ".join(f"{p}m {len(b):,}" for p, b in bars.items())
    print(f"kernel     {kernel_s:7.2f} s  {n / kernel_s:13,.0f} ticks/s   bars: {counts}")
    print(f"           {report.summary()}")
    assert len(bars[1]) == 240 * args.symbols and len(bars[60]) == 4 * args.symbols
    assert bars[1].volume.sum() == ticks.volume.reshape(-1, args.symbols)[-1].sum()
    print(f"peak RSS after kernel: {kernel_rss:,.0f} MiB")
    if args.skip_generator:
        return
    gen_s, gen_bars = run_generator(ticks)
    print(f"generator  {gen_s:7.2f} s  {n / gen_s:13,.0f} ticks/s   1m bars emitted: "
          f"{gen_bars:,} (the open bars of 15:00 never are)")
    print(f"ratio = generator / kernel = {gen_s / kernel_s:.1f}x (target ≥ 10x)")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
