"""Helpers of the stock tests: hand-built 1-minute bars, landing files, a pandas reference.

The reference implements the monthly K-line in pandas, independently of the SQL:
clean bars (volume ≥ 0, amount ≥ 0, high ≥ max(open, close), low ≤ min(open, close), with
NULL failing every comparison and max/min skipping a NULL price as GREATEST/LEAST do), then
per (month, code) the first bar's open, the last bar's name and close (NULLs included), max
high, min low, summed volume and amount.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import DagsterInstance, RunConfig, materialize

from kline_assets.resources.pgcopy import copy_table
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import PostgresIOManager
from kline_assets.stocks import STOCK_TABLE
from kline_assets.stocks.assets import (
    IO_MANAGER,
    StockLandingConfig,
    stock_1min,
    stock_monthly_kline,
)
from kline_assets.stocks.checks import stock_monthly_kline_checks
from kline_assets.stocks.sessions import BAR_END_MINUTES

LANDING = ["time", "code", "name", "open", "high", "low", "close", "volume", "amount"]
MONTHLY = LANDING[1:]  # + month in front
MONTHLY_COLUMNS = ["month", *MONTHLY]


def session_minutes() -> pd.TimedeltaIndex:
    """End-labelled 1-minute bars of a full day: 09:31 … 11:30, 13:01 … 15:00 (240)."""
    return pd.to_timedelta(BAR_END_MINUTES, unit="min")


def with_dbname(dsn: str, dbname: str) -> str:
    """`dsn` pointing at another database of the same server."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def stock_resources(postgres: PostgresResource) -> dict[str, object]:
    """What the stock assets need: the database and the IO manager writing stock_1min."""
    return {"postgres": postgres, IO_MANAGER: PostgresIOManager(postgres=postgres)}


def make_bars(
    codes: Sequence[str],
    days: Sequence[str],
    seed: int = 7,
    minutes: pd.TimedeltaIndex | None = None,
    base: float = 10.0,
) -> pd.DataFrame:
    """Consistent random-walk bars for every code × day × session minute."""
    rng = np.random.default_rng(seed)
    day_starts = pd.to_datetime(list(days)).to_numpy()
    offsets = (minutes if minutes is not None else session_minutes()).to_numpy()
    stamps = pd.DatetimeIndex((day_starts[:, None] + offsets[None, :]).ravel())
    frames = []
    for i, code in enumerate(codes):
        n = len(stamps)
        close = base * (1 + i) + np.cumsum(rng.normal(0, 0.02, n))
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0, 0.01, n))
        volume = rng.integers(100, 10_000, n).astype(float)
        frames.append(pd.DataFrame({
            "time": stamps,
            "code": code,
            "name": f"NAME{code[:6]}",
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": volume,
            "amount": volume * close * 100,
        }))
    return pd.concat(frames, ignore_index=True)[LANDING]


JAN = ["2024-01-02", "2024-01-15", "2024-01-31"]
FEB = ["2024-02-01", "2024-02-29"]
MAR = ["2024-03-01"]


def dirty_bars() -> pd.DataFrame:
    """Three codes over Jan–Mar 2024 with every kind of row the cleaning rule is about."""
    bars = make_bars(["600000.SH", "000001.SZ", "300750.SZ"], JAN + FEB + MAR)
    t = pd.Timestamp
    code = bars["code"]

    def at(c: str, when: str) -> pd.Series:
        return (code == c) & (bars["time"] == t(when))

    # dirty bars, which the aggregate must ignore — including the month's first and last bar
    bars.loc[at("600000.SH", "2024-01-02 09:31"), "volume"] = -5.0
    bars.loc[at("600000.SH", "2024-01-31 15:00"), "amount"] = np.nan
    bars.loc[at("000001.SZ", "2024-01-15 10:00"), "high"] -= 1.0  # high below max(open, close)
    bars.loc[at("000001.SZ", "2024-01-15 10:01"), "low"] += 1.0  # low above min(open, close)
    bars.loc[at("000001.SZ", "2024-01-15 10:02"), "high"] = 1e6  # dropped: also volume < 0
    bars.loc[at("000001.SZ", "2024-01-15 10:02"), "volume"] = -1.0
    # forward-adjusted prices below zero are data, not dirt
    neg = code == "300750.SZ"
    bars.loc[neg, ["open", "high", "low", "close"]] -= 40.0
    # a rename in the middle of February: the month carries the last name
    renamed = (code == "000001.SZ") & (bars["time"] >= t("2024-02-29 13:01"))
    bars.loc[renamed, "name"] = "RENAMED"
    # a NULL open on an otherwise valid bar: GREATEST/LEAST skip it, first() returns it
    bars.loc[at("300750.SZ", "2024-03-01 09:31"), "open"] = np.nan
    return bars


def write_csv(bars: pd.DataFrame, path: Path, rename: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = bars.rename(columns=rename or {})
    out.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def write_parquet(bars: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(bars, preserve_index=False), path)
    return path


def reference_monthly(bars: pd.DataFrame) -> pd.DataFrame:
    """The monthly K-line the view defines, computed in pandas."""
    hi = bars[["open", "close"]].max(axis=1)
    lo = bars[["open", "close"]].min(axis=1)
    clean = bars[(bars["volume"] >= 0) & (bars["amount"] >= 0)
                 & (bars["high"] >= hi) & (bars["low"] <= lo)].copy()
    clean["month"] = clean["time"].dt.to_period("M").dt.start_time
    clean = clean.sort_values(["code", "time"])
    keys = ["month", "code"]
    first = clean.drop_duplicates(keys, keep="first").set_index(keys)
    last = clean.drop_duplicates(keys, keep="last").set_index(keys)
    grouped = clean.groupby(keys)
    out = pd.DataFrame({
        "name": last["name"],
        "open": first["open"],
        "high": grouped["high"].max(),
        "low": grouped["low"].min(),
        "close": last["close"],
        "volume": grouped["volume"].sum(),
        "amount": grouped["amount"].sum(),
    })
    return normalize(out.reset_index())


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Monthly rows in a comparable form: column order, sorted, plain dtypes."""
    out = frame[MONTHLY_COLUMNS].copy()
    out["month"] = pd.to_datetime(out["month"]).astype("datetime64[us]")
    out["code"] = out["code"].astype(object)
    out["name"] = out["name"].astype(object).where(out["name"].notna(), None)
    for col in MONTHLY[2:]:
        out[col] = out[col].astype(float)
    return out.sort_values(["month", "code"]).reset_index(drop=True)


def read_monthly(postgres: PostgresResource, where: str = "TRUE") -> pd.DataFrame:
    with postgres.connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(MONTHLY_COLUMNS)} FROM stock_monthly_kline WHERE {where}"
        ).fetchall()
    return normalize(pd.DataFrame(rows, columns=MONTHLY_COLUMNS))


def read_bars(postgres: PostgresResource, where: str = "TRUE") -> pd.DataFrame:
    with postgres.connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(LANDING)} FROM stock_1min_qfq WHERE {where} ORDER BY code, time"
        ).fetchall()
    frame = pd.DataFrame(rows, columns=LANDING)
    frame["time"] = pd.to_datetime(frame["time"])
    return frame


def insert_bars(postgres: PostgresResource, bars: pd.DataFrame) -> None:
    """Write bars straight into stock_1min_qfq (bypassing the landing rules)."""
    with postgres.connect() as conn:
        copy_table(conn, STOCK_TABLE, pa.Table.from_pandas(bars[list(LANDING)],
                                                           preserve_index=False))


def landing_config(root: Path, **extra: object) -> RunConfig:
    return RunConfig(ops={"stock_1min": StockLandingConfig(landing_dir=str(root), **extra)})


def assert_frames_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal rows; sums may differ in the last bits because the database adds in its order."""
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-12, atol=1e-9)


TIMESCALE_DSN = os.environ.get("KLINE_TIMESCALE_DSN")
"""A PostgreSQL server with TimescaleDB for the continuous-aggregate tests; unset: skipped."""


def run_months(postgres: PostgresResource, instance: DagsterInstance, root: Path,
               keys: list[str], *, checks: bool = False) -> None:
    """Materialize stock_1min and stock_monthly_kline month by month from the landing files
    under `root`; with `checks`, the monthly checks too, each of which must pass."""
    for key in keys:
        result = materialize(
            [stock_1min, stock_monthly_kline, *([stock_monthly_kline_checks] if checks else [])],
            partition_key=key, instance=instance, resources=stock_resources(postgres),
            run_config=landing_config(root))
        assert result.success
        if checks:
            assert all(e.passed for e in result.get_asset_check_evaluations())
