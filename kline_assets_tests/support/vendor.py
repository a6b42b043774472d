"""Helpers of the vendor-feed tests: a small day of consistent vendor bars (1-minute, and the
5-minute bars the kernel builds from them), written as a vendor file, and the tables read
back in a comparable form."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kline_assets.kernels.bars import Bars, resample_bars
from kline_assets.resources.postgres import PostgresResource
from kline_assets_tests.support.stocks import make_bars

DAY = "2025-10-09"
CODES = ("600000.SH", "000001.SZ")
VALUES = ["open", "high", "low", "close", "volume", "amount"]


def vendor_bars(codes: Sequence[str] = CODES, days: Sequence[str] = (DAY,), seed: int = 5,
                periods: Sequence[int] = (1, 5)) -> pd.DataFrame:
    """1-minute bars of every code × day × session minute, plus their N-minute bars built by
    the kernel (so the vendor-consistency check passes on them); column `period`."""
    minute = make_bars(list(codes), list(days), seed=seed).sort_values(["code", "time"])
    minute = minute.reset_index(drop=True)
    parts = [minute.assign(period=1)] if 1 in periods else []
    bars = Bars(1, minute["code"].to_numpy(dtype=object),
                minute["time"].to_numpy().astype("datetime64[s]"),
                *(minute[c].to_numpy(dtype=np.float64) for c in VALUES))
    for p in periods:
        if p == 1:
            continue
        made = resample_bars(bars, p)
        parts.append(pd.DataFrame({
            "time": made.frame.astype("datetime64[us]"), "code": made.symbol.astype(str),
            "name": None, **{c: getattr(made, c) for c in VALUES}, "period": p}))
    return pd.concat(parts, ignore_index=True)


def write_vendor_csv(bars: pd.DataFrame, path: Path) -> Path:
    out = bars.copy()
    out["name"] = out["name"].fillna("")
    out.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def read_minutes(postgres: PostgresResource) -> pd.DataFrame:
    with postgres.connect() as conn:
        rows = conn.execute("SELECT time, code, open, high, low, close, volume, amount "
                            "FROM stock_1min_qfq ORDER BY code, time").fetchall()
    return pd.DataFrame(rows, columns=["time", "code", *VALUES])


def read_vendor(postgres: PostgresResource) -> pd.DataFrame:
    with postgres.connect() as conn:
        rows = conn.execute("SELECT time, code, period, open, high, low, close, volume, amount "
                            "FROM stock_bars_vendor ORDER BY code, period, time").fetchall()
    return pd.DataFrame(rows, columns=["time", "code", "period", *VALUES])


def expected_minutes(bars: pd.DataFrame) -> pd.DataFrame:
    one = bars[bars["period"] == 1].sort_values(["code", "time"])
    return one[["time", "code", *VALUES]].reset_index(drop=True)


def assert_minutes_equal(postgres: PostgresResource, bars: pd.DataFrame) -> None:
    got = read_minutes(postgres)
    want = expected_minutes(bars)
    got["time"] = pd.to_datetime(got["time"])
    want = want.assign(time=pd.to_datetime(want["time"]))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
