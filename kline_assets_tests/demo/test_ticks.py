"""Tick snapshots: auctions, out-of-session prints, the duplicate, trading days only."""

from __future__ import annotations

import pandas as pd
import pytest

from kline_assets.demo.ticks import generate_ticks
from kline_assets.stocks.sessions import is_trading_day
from kline_assets_tests.support.demo import SMALL


def test_ticks_auctions_out_of_session_and_duplicate() -> None:
    t = generate_ticks(SMALL)
    assert list(t.columns) == ["time", "code", "price", "cum_volume", "cum_amount"]
    day = t.time.dt.normalize().unique()
    assert len(day) == 1 and is_trading_day(day[0])
    assert pd.Timestamp(day[0]) == pd.Timestamp("2025-10-09")  # first session after National Day
    clock = t.time.dt.strftime("%H:%M:%S.%f")
    for code, g in t.groupby("code"):
        c = set(clock[g.index])
        for special in ("09:25:00.000000", "11:30:00.000000", "15:00:00.000000"):
            assert special in c, (code, special)
        assert g.cum_volume.is_monotonic_increasing and g.cum_amount.is_monotonic_increasing
        assert g.time.is_monotonic_increasing
        assert (g.price > 0).all()
    hm = t.time.dt.hour * 60 + t.time.dt.minute
    in_session = hm.between(9 * 60 + 30, 11 * 60 + 29) | hm.between(13 * 60, 14 * 60 + 59)
    in_session |= clock.isin(["09:25:00.000000", "11:30:00.000000", "15:00:00.000000"])
    outside = t[~in_session]
    assert sorted(clock[outside.index]) == ["12:00:00.000000", "15:05:00.000000"]
    assert t.duplicated().sum() == 1
    # interior prints never sit exactly on a minute (bar-boundary conventions stay moot)
    on_minute = (t.time.dt.second == 0) & (t.time.dt.microsecond == 0)
    assert set(clock[on_minute]) == {
        "09:25:00.000000", "11:30:00.000000", "15:00:00.000000", "12:00:00.000000",
        "15:05:00.000000",
    }


def test_ticks_for_a_chosen_day() -> None:
    t = generate_ticks(SMALL, day="2025-10-15")
    assert (t.time.dt.date == pd.Timestamp("2025-10-15").date()).all()
    with pytest.raises(ValueError, match="not a trading day"):
        generate_ticks(SMALL, day="2025-10-18")  # a Saturday
    with pytest.raises(ValueError, match="not a trading day"):
        generate_ticks(SMALL, day="2025-10-01")  # National Day
