"""Bench: 200 codes × 12 months of 1-minute bars (≈12.6M rows) → stock_monthly_kline, plain path.

Measures, in one run on a throwaway database:
  load      landing CSV files (one per trading day) → stock_1min_qfq, month by month, through
            the same code as the stock_1min asset (parallel parse, dedupe, one COPY per month)
  refresh   stock_monthly_kline per month partition (12 refreshes), and once over the year
  pandas    the baseline: read every bar (COPY → pyarrow → pandas, the fastest read there is,
            so the ratio is not flattered by pd.read_sql), clean, groupby month/code with
            first/last by time
and checks that pandas and SQL give the same rows. Prints seconds and
`ratio = pandas / refresh`.

    python bench/stock_monthly.py [--codes 200] [--months 12]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bench_postgres, peak_rss_mib, timed

from kline_assets.stocks import STOCK_TABLE, landing, monthly
from kline_assets.stocks.partitions import MonthWindow, add_months

FIRST = pd.Timestamp("2024-01-01")


def session_offsets() -> np.ndarray:
    minutes = np.concatenate(
        [np.arange(9 * 60 + 31, 11 * 60 + 31), np.arange(13 * 60 + 1, 15 * 60 + 1)]
    )
    return (minutes * 60_000_000).astype("timedelta64[us]")


def write_landing(root: Path, codes: int, months: int, seed: int = 1) -> int:
    """One CSV per weekday with every code's 240 bars; ~0.1% dirty bars (negative volume)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(FIRST, FIRST + pd.DateOffset(months=months), inclusive="left")
    names = np.array([f"{600000 + i:06d}.SH" for i in range(codes)])
    offsets = session_offsets()
    price = 10 + rng.random(codes) * 90
    rows = 0
    for day in days:
        n = codes * len(offsets)
        times = np.tile(day.to_datetime64().astype("datetime64[us]") + offsets, codes)
        steps = rng.normal(0, 0.002, (codes, len(offsets)))
        close = (price[:, None] * np.exp(np.cumsum(steps, axis=1))).ravel()
        price = close.reshape(codes, -1)[:, -1]
        open_ = np.roll(close.reshape(codes, -1), 1, axis=1)
        open_[:, 0] = close.reshape(codes, -1)[:, 0]
        open_ = open_.ravel()
        spread = np.abs(rng.normal(0, 0.01, n))
        volume = rng.integers(100, 50_000, n).astype(float)
        volume[rng.random(n) < 0.001] = -1.0
        table = pa.table({
            "time": pa.array(times, pa.timestamp("us")),
            "code": np.repeat(names, len(offsets)),
            "name": np.repeat(np.char.add("名称", names), len(offsets)),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": volume,
            "amount": volume * close * 100,
        })
        month_dir = root / day.strftime("%Y-%m")
        month_dir.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, month_dir / f"{day:%Y-%m-%d}.csv")
        rows += n
    return rows


def pandas_baseline(pg, window: MonthWindow) -> tuple[pd.DataFrame, dict[str, float]]:
    t: dict[str, float] = {}
    with timed(t, "read"):
        bars = pg.copy_out(
            "SELECT time, code, name, open, high, low, close, volume, amount "
            f"FROM stock_1min_qfq WHERE time >= '{window.start}' AND time < '{window.end}'",
            {"time": pa.timestamp("us")},
        ).to_pandas()
    with timed(t, "compute"):
        hi = bars[["open", "close"]].max(axis=1)
        lo = bars[["open", "close"]].min(axis=1)
        clean = bars[(bars["volume"] >= 0) & (bars["amount"] >= 0)
                     & (bars["high"] >= hi) & (bars["low"] <= lo)]
        clean = clean.assign(month=clean["time"].dt.to_period("M").dt.start_time)
        clean = clean.sort_values(["code", "time"])
        keys = ["month", "code"]
        grouped = clean.groupby(keys, sort=False)
        first = clean.drop_duplicates(keys, keep="first").set_index(keys)
        last = clean.drop_duplicates(keys, keep="last").set_index(keys)
        out = pd.DataFrame({
            "name": last["name"], "open": first["open"],
            "high": grouped["high"].max(), "low": grouped["low"].min(),
            "close": last["close"],
            "volume": grouped["volume"].sum(), "amount": grouped["amount"].sum(),
        }).reset_index()
    t["total"] = t["read"] + t["compute"]
    return out, t


COLUMNS = ["month", "code", "name", "open", "high", "low", "close", "volume", "amount"]


def same_rows(pg, expected: pd.DataFrame) -> bool:
    """stock_monthly_kline equals the pandas result (sums to 1e-12 relative)."""
    with pg.connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM stock_monthly_kline ORDER BY month, code"
        ).fetchall()
    actual = pd.DataFrame(rows, columns=COLUMNS)
    expected = expected[COLUMNS].sort_values(["month", "code"]).reset_index(drop=True)
    if len(actual) != len(expected):
        return False
    keys_equal = (
        (pd.to_datetime(actual["month"]).to_numpy() == expected["month"].to_numpy()).all()
        and (actual["code"].to_numpy() == expected["code"].to_numpy()).all()
        and (actual["name"].to_numpy() == expected["name"].to_numpy()).all()
    )
    return bool(keys_equal) and all(
        np.allclose(actual[c].astype(float), expected[c].astype(float), rtol=1e-12, atol=0)
        for c in COLUMNS[3:]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=200)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="kline_bench_landing_"))
    window = MonthWindow(FIRST.to_pydatetime(), add_months(FIRST.to_pydatetime(), args.months))
    t: dict[str, float] = {}
    try:
        with timed(t, "generate"):
            generated = write_landing(root, args.codes, args.months)
        print(f"landing: {generated:,} bars in {len(list(root.rglob('*.csv')))} files "
              f"({t['generate']:.1f}s to generate, not measured)")
        with bench_postgres("kline_bench_stock_monthly") as pg:
            loaded, writing = 0, 0.0
            with timed(t, "load"):
                for month in window.split():
                    report = landing.load_month(
                        pg.connect, STOCK_TABLE, root, month, landing.ReadOptions(),
                        workers=landing.default_workers(), progress=False,
                    )
                    loaded += report.rows_loaded
                    writing += report.write_seconds
            with pg.connect(autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE stock_1min_qfq")
            with timed(t, "refresh_per_month"):
                for month in window.split():
                    monthly.refresh(pg, month)
            with timed(t, "refresh_once"):
                report = monthly.refresh(pg, window)
            expected, base = pandas_baseline(pg, window)
            identical = same_rows(pg, expected)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nstock_monthly bench: {args.codes} codes × {args.months} months, "
          f"{loaded:,} bars loaded, {report.rows:,} monthly rows, on {report.path.label}")
    print(f"{'stage':<34}{'seconds':>10}")
    for label, value in [
        ("load (landing → stock_1min_qfq)", t["load"]),
        ("  of which parse + validate", t["load"] - writing),
        ("  of which DELETE + COPY + commit", writing),
        (f"refresh, {args.months} month partitions", t["refresh_per_month"]),
        ("refresh, one window", t["refresh_once"]),
        ("pandas baseline: read", base["read"]),
        ("pandas baseline: groupby", base["compute"]),
        ("pandas baseline: total", base["total"]),
    ]:
        print(f"{label:<34}{value:>10.2f}")
    print(f"load rate: {loaded / t['load']:,.0f} bars/s")
    print(f"ratio pandas / refresh ({args.months} partitions): "
          f"{base['total'] / t['refresh_per_month']:.2f}")
    print(f"ratio pandas / refresh (one window):    {base['total'] / t['refresh_once']:.2f}")
    print(f"pandas and SQL rows identical: {identical}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    if not identical:
        raise SystemExit("pandas baseline and stock_monthly_kline differ")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"wall: {time.perf_counter() - started:.1f}s")
