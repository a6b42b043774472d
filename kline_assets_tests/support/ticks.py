"""Helpers of the live-bar tests: a demo day of snapshots as a tick file, the batch kernel's
bars of it (the clean run every live path must equal), and running `kline` in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kline_assets.demo.ticks import generate_ticks
from kline_assets.kernels.bars import Bars, ticks_to_bars
from kline_assets.stocks.sessions import trading_days
from kline_assets.stocks.tickfiles import read_ticks

DAY = "2025-10-09"
CONSUME = ("--cumulative", "--volume-unit", "lots")  # demo snapshots: running totals in lots
REPO = Path(__file__).resolve().parents[2]


def write_tick_file(path: Path, day: str = DAY) -> Path:
    """The demo's snapshots of one day (3 codes, ~12,900 ticks, with an auction print, a
    lunch print, an after-hours print and a duplicate) as a tick CSV."""
    df = generate_ticks(day=day)
    pd.DataFrame({"symbol": df["code"], "time": df["time"].dt.strftime("%Y-%m-%d %H:%M:%S.%f"),
                  "price": df["price"], "volume": df["cum_volume"],
                  "amount": df["cum_amount"]}).to_csv(path, index=False)
    return path


def clean_bars(path: Path) -> Bars:
    """The batch kernel's 1-minute bars of a tick file: what the live path must reproduce."""
    ticks = read_ticks(path)
    first, last = str(ticks.time.min())[:10], str(ticks.time.max())[:10]
    days = trading_days(first, last).values.astype("datetime64[D]")
    bars, _ = ticks_to_bars(ticks, days, cumulative=True, volume_unit="lots")
    return bars


def assert_same_bars(got: Bars, want: Bars) -> None:
    """Same frames and OHLCV; amounts are sums of decimals, so batch boundaries may move the
    last bits."""
    assert len(got) == len(want), (len(got), len(want))
    assert got.symbol.astype(str).tolist() == want.symbol.astype(str).tolist()
    np.testing.assert_array_equal(got.frame, want.frame)
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, c), getattr(want, c), err_msg=c)
    np.testing.assert_allclose(got.amount, want.amount, rtol=1e-12)


def kline_env(redis_url: str, pg_dsn: str | None = None) -> dict[str, str]:
    env = {**os.environ, "KLINE_REDIS_URL": redis_url, "PYTHONPATH": str(REPO)}
    if pg_dsn:
        env["KLINE_PG_DSN"] = pg_dsn
    return env


def start_kline(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`kline …` in a real process of its own (so a test can kill -9 it)."""
    return subprocess.Popen([sys.executable, "-m", "kline_assets.cli", *args], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
