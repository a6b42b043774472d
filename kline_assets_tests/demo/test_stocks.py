"""Stock bars: XSHG sessions, END labels, the dirty rows, names, prices and landing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.stocks import (
    DIRTY_BAR_RULES,
    NEGATIVE_CODE,
    RENAMED_CODE,
    generate_stock_bars,
    write_stock_landing,
)
from kline_assets.stocks.sessions import BAR_END_MINUTES, trading_days
from kline_assets_tests.support.demo import SMALL


def _dirty(b: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "negative_volume": b.volume < 0,
        "null_amount": b.amount.isna(),
        "high_below_body": b.high < np.maximum(b.open, b.close),
        "low_above_body": b.low > np.minimum(b.open, b.close),
    }


def test_stock_bars_sessions_end_labelled(small_bars: pd.DataFrame) -> None:
    b = small_bars
    assert list(b.columns) == [
        "time", "code", "name", "open", "high", "low", "close", "volume", "amount"
    ]
    assert b.time.dt.tz is None
    minute = b.time.dt.hour * 60 + b.time.dt.minute
    assert set(minute) == set(BAR_END_MINUTES.tolist())
    assert not (minute == 9 * 60 + 30).any()
    assert not minute.between(11 * 60 + 31, 13 * 60).any()
    assert (b.time.dt.second == 0).all()
    start, end = SMALL.stock_window
    # XSHG sessions: National Day week (2025-10-01..08) has no bars
    days = trading_days(start, end - pd.Timedelta(days=1))
    assert set(b.time.dt.normalize()) == set(days)
    assert not b.time.between("2025-10-01", "2025-10-09").any()
    per_day = b.groupby([b.code, b.time.dt.date]).size()
    assert (per_day == 240).all() and len(b) == len(days) * 240 * 3
    assert set(b.code) == {"600000.SH", "000001.SZ", "600036.SH"}
    start, end = SMALL.stock_window
    assert b.time.min() >= start and b.time.max() < end
    assert not b.duplicated(["code", "time"]).any()


def test_stock_bars_dirty_rows_as_documented(small_bars: pd.DataFrame) -> None:
    b = small_bars
    masks = _dirty(b)
    assert set(masks) == set(DIRTY_BAR_RULES)
    months = SMALL.stock_months
    for rule, mask in masks.items():
        assert mask.sum() == months, rule
    any_dirty = np.logical_or.reduce(list(masks.values()))
    assert any_dirty.sum() == months * len(DIRTY_BAR_RULES)  # each breaks exactly one rule
    clean = b[~any_dirty]
    assert (clean.volume >= 0).all() and clean.amount.notna().all()
    assert (clean.amount >= 0).all()


def test_stock_bars_prices_names_and_amounts(small_bars: pd.DataFrame) -> None:
    b = small_bars
    codes = list(dict.fromkeys(b.code))
    neg_code = codes[NEGATIVE_CODE]
    neg = b[b.code == neg_code]
    assert (neg.close < 0).all()  # qfq prices below zero
    pos = b[b.code != neg_code]
    assert pos.close.between(0.5, 300).all()
    # amount ≈ volume × price × 100 (a price between low and high of the raw bar)
    ok = pos[(pos.volume > 0) & pos.amount.notna()
             & (pos.high >= np.maximum(pos.open, pos.close))
             & (pos.low <= np.minimum(pos.open, pos.close))]
    vwap = ok.amount / ok.volume / 100
    assert ((vwap >= ok.low * 0.995) & (vwap <= ok.high * 1.005)).all()
    # one code changes its name mid-month to an ST name
    names = b.groupby("code").name.nunique()
    renamed = codes[RENAMED_CODE]
    assert names[renamed] == 2 and (names.drop(renamed) == 1).all()
    seq = b[b.code == renamed].sort_values("time").name
    assert seq.iloc[-1] == "ST" + seq.iloc[0]
    cfg = DemoConfig(stock_codes=20, stock_months=2)
    start, end = cfg.stock_window
    days = trading_days(start, end - pd.Timedelta(days=1))
    assert len(generate_stock_bars(cfg)) == len(days) * 240 * 20


def test_landing_files_alternate_parquet_and_csv(tmp_path: Path) -> None:
    cfg = DemoConfig(months=1, n_shops=2, n_iphones=2, stock_codes=2, stock_months=2)
    bars = generate_stock_bars(cfg)
    keys = write_stock_landing(cfg, root=tmp_path, bars=bars)
    assert keys == ["2025-10-01", "2025-11-01"]
    october = pd.read_parquet(tmp_path / "2025-10" / "demo_bars.parquet")
    november = pd.read_csv(tmp_path / "2025-11" / "demo_bars.csv", dtype={"code": str})
    assert len(october) + len(november) == len(bars)
    assert (october.time.dt.to_period("M") == "2025-10").all()
