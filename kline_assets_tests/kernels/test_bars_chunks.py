"""The batch kernel works through chunks of whole symbols; tiny chunks must give the same bars
and report as one chunk, whatever the input order, ids, duplicates, rejections and resets."""

from __future__ import annotations

import numpy as np
import pytest

from kline_assets.kernels import bars as kb
from kline_assets.kernels.bars import batch
from kline_assets.stocks.sessions import trading_day_mask


def messy_ticks(seed: int, tick_ids: bool, time_sorted: bool, high_low: bool) -> kb.Ticks:
    rng = np.random.default_rng(seed)
    n = 4000
    days = np.array(["2025-10-09", "2025-10-10", "2025-10-11"], dtype="datetime64[D]")
    day = days[rng.integers(0, 3, n)].astype("datetime64[us]")
    # Whole minutes, session edges, lunch and after-hours prints, sub-second offsets.
    sec = rng.choice([9 * 3600 + 20 * 60, 9 * 3600 + 25 * 60, 9 * 3600 + 30 * 60,
                      9 * 3600 + 31 * 60, 11 * 3600 + 30 * 60, 12 * 3600, 13 * 3600,
                      13 * 3600 + 60, 15 * 3600, 15 * 3600 + 1], n)
    sec = np.where(rng.random(n) < 0.7, rng.integers(9 * 3600 + 25 * 60, 15 * 3600, n), sec)
    frac = np.where(rng.random(n) < 0.5, 0, rng.integers(0, 1_000_000, n))
    time = day + (sec * 1_000_000 + frac).astype("timedelta64[us]")
    symbol = rng.integers(0, 23, n)
    price = np.round(rng.uniform(5, 6, n), 2)
    price[rng.random(n) < 0.01] = np.nan
    volume = rng.integers(0, 50, n) * 100.0
    volume[rng.random(n) < 0.01] = -1.0
    amount = volume * price
    tid = rng.integers(0, 3000, n) if tick_ids else None
    # Repeat some prints exactly.
    dup = rng.integers(0, n, 300)
    cols = [symbol, time, price, volume, amount]
    symbol, time, price, volume, amount = (np.concatenate([c, c[dup]]) for c in cols)
    if tid is not None:
        tid = np.concatenate([tid, tid[dup]])
    high = low = None
    if high_low:
        high = price + rng.uniform(0, 0.05, len(price))
        low = price - rng.uniform(0, 0.05, len(price))
    perm = np.argsort(time, kind="stable") if time_sorted else rng.permutation(len(time))
    names = np.array([f"{600000 + i:06d}.SH" for i in range(23)], dtype=object)

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[perm]

    return kb.Ticks(symbol[perm], names, time[perm], price[perm], volume[perm], amount[perm],
                    pick(tid), pick(high), pick(low))


def same_bars(a: kb.Bars, b: kb.Bars) -> None:
    assert len(a) == len(b)
    assert (a.symbol == b.symbol).all()
    assert (a.frame == b.frame).all()
    for c in kb.Bars.COLUMNS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c))


@pytest.mark.parametrize("tick_ids", [False, True])
@pytest.mark.parametrize("time_sorted", [False, True])
@pytest.mark.parametrize("cumulative", [False, True])
@pytest.mark.parametrize("as_mask", [False, True])
def test_chunks_change_nothing(monkeypatch: pytest.MonkeyPatch, tick_ids: bool,
                               time_sorted: bool, cumulative: bool, as_mask: bool) -> None:
    ticks = messy_ticks(7, tick_ids, time_sorted, high_low=cumulative)
    if as_mask:
        trading = trading_day_mask(ticks.time)
    else:
        trading = np.array(["2025-10-09", "2025-10-10"], dtype="datetime64[D]")
    whole, whole_report = kb.ticks_to_bars(ticks, trading, cumulative=cumulative)
    assert whole_report.duplicates and whole_report.rejected_total
    for chunk in (1, 7, 500):
        monkeypatch.setattr(batch, "_CHUNK", chunk)
        bars, report = kb.ticks_to_bars(ticks, trading, cumulative=cumulative)
        same_bars(bars, whole)
        assert report.summary() == whole_report.summary()
        assert report.reset_symbols == whole_report.reset_symbols
        assert report.reset_times == whole_report.reset_times
        assert (report.received, report.kept) == (whole_report.received, whole_report.kept)
