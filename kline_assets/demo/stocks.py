"""1-minute A-share bars imitating forward-adjusted (qfq) vendor data, and the landing files a
vendor would drop.

Bars are END-labelled (09:31 … 11:30, 13:01 … 15:00, 240 a day) on real XSHG sessions, so
exchange holidays such as National Day week have no bars. One code changes its name to an
"ST" name, one code's adjusted prices are negative, and the dirty rows of `DIRTY_BAR_RULES`
test the monthly K-line's cleaning rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kline_assets.demo.catalog import S_BARS, STOCK_CODES, DemoConfig, random_stream
from kline_assets.stocks.sessions import BAR_END_MINUTES, trading_days

# Which codes carry the special cases (indices into the first `stock_codes` codes).
RENAMED_CODE = 1  # becomes "ST" + name from the middle trading day of the first month
NEGATIVE_CODE = -1  # the last code: forward-adjusted (qfq) prices below zero

# Rows the cleaning rules of stock_monthly_kline must drop. Each rule corrupts one existing
# bar per month (the bar keeps its (code, time)), on code `(i + month) % stock_codes`,
# trading day `3 + i` of the month and bar `17 + 37 * i` of that day; each dirty row breaks
# exactly one rule.
DIRTY_BAR_RULES: dict[str, str] = {
    "negative_volume": "volume < 0",
    "null_amount": "amount IS NULL",
    "high_below_body": "high < GREATEST(open, close)",
    "low_above_body": "low > LEAST(open, close)",
}

_MORNING = np.arange(9 * 60 + 31, 11 * 60 + 31)  # END labels, minutes of the day

def stock_days(cfg: DemoConfig) -> pd.DatetimeIndex:
    """The XSHG trading days of the stock window (naive midnights)."""
    start, end = cfg.stock_window
    return trading_days(start, end - pd.Timedelta(days=1))


def opening_prices(cfg: DemoConfig) -> np.ndarray:
    """Each code's first price: the first draw of the bar stream, shared with the ticks."""
    n = max(cfg.stock_codes, 1)
    return np.exp(random_stream(cfg, S_BARS).uniform(np.log(3.0), np.log(80.0), n))


def _stock_params(cfg: DemoConfig) -> dict[str, np.ndarray]:
    rng = random_stream(cfg, S_BARS)
    n = cfg.stock_codes
    return {
        "p0": np.exp(rng.uniform(np.log(3.0), np.log(80.0), n)),
        "sigma": rng.uniform(0.0007, 0.0016, n),  # per minute
        "lots": np.exp(rng.uniform(np.log(300), np.log(20_000), n)),  # mean lots per minute
        "rng": rng,
    }


def _intraday_shape() -> np.ndarray:
    """U-shaped activity over the 240 bars: busy open, quiet lunch edges, busy close."""
    t = np.arange(240)
    return 0.6 + 1.6 * np.exp(-t / 20) + 0.8 * np.exp(-(239 - t) / 15)


def generate_stock_bars(cfg: DemoConfig = DemoConfig()) -> pd.DataFrame:
    """stock_1min_qfq rows: time (naive Beijing wall clock, END-labelled), code, name, open,
    high, low, close (yuan, qfq), volume (lots), amount (yuan); code by code (in STOCK_CODES
    order), each in time order.

    Every code has 240 bars on every XSHG trading day; the rows of DIRTY_BAR_RULES are corrupted
    in place.
    """
    cols = ["time", "code", "name", "open", "high", "low", "close", "volume", "amount"]
    start, end = cfg.stock_window
    days = stock_days(cfg)
    n_codes, n_days = cfg.stock_codes, len(days)
    if n_codes == 0 or n_days == 0:
        empty = {"time": "datetime64[us]", "code": "str", "name": "str"}
        return pd.DataFrame({c: pd.Series(dtype=empty.get(c, "float64")) for c in cols})
    prm = _stock_params(cfg)
    rng = prm.pop("rng")
    shape = np.tile(_intraday_shape(), n_days)
    t_len = n_days * 240

    # log returns; a gap at each day's first bar; volatility follows the activity profile
    sig = prm["sigma"][:, None] * np.sqrt(shape / shape.mean())[None, :]
    ret = rng.normal(0, 1, (n_codes, t_len)) * sig
    gap = np.zeros((n_codes, t_len))
    gap[:, ::240] = rng.normal(0, 0.008, (n_codes, n_days))
    gap[:, 0] = 0
    lclose = np.log(prm["p0"])[:, None] + np.cumsum(gap + ret, axis=1)
    raw_close = np.maximum(np.round(np.exp(lclose), 2), 0.5)
    raw_open = np.maximum(np.round(np.exp(lclose - ret), 2), 0.5)
    body_hi = np.maximum(raw_open, raw_close)
    body_lo = np.minimum(raw_open, raw_close)
    wick = np.abs(rng.normal(0, 1, (2, n_codes, t_len))) * sig * raw_close * 0.8
    raw_high = body_hi + np.round(wick[0], 2)
    raw_low = np.maximum(body_lo - np.round(wick[1], 2), 0.01)
    vol = np.rint(prm["lots"][:, None] * shape[None, :] * rng.lognormal(-0.125, 0.5, ret.shape))
    vol[rng.random(vol.shape) < 0.003] = 0  # the odd minute without trades
    typical = (raw_high + raw_low + raw_close) / 3
    amount = np.round(vol * typical * 100 * (1 + rng.normal(0, 0.0005, vol.shape)), 2)

    # forward adjustment: one code's cumulative dividends exceed its old prices
    adj = np.zeros(n_codes)
    neg = NEGATIVE_CODE % n_codes
    if n_codes >= 2:
        adj[neg] = np.round(raw_close[neg].max() + 1.5, 2)
    o, h, lo, c = (np.round(x - adj[:, None], 2) for x in (raw_open, raw_high, raw_low, raw_close))

    # dirty rows
    months = pd.period_range(start, end - pd.Timedelta(days=1), freq="M")
    day_month = days.to_period("M")
    for mi, month in enumerate(months):
        month_days = np.flatnonzero(day_month == month)
        for i, rule in enumerate(DIRTY_BAR_RULES):
            if month_days.size == 0:
                continue
            code = (i + mi) % n_codes
            t = month_days[min(3 + i, month_days.size - 1)] * 240 + (17 + 37 * i) % 240
            if rule == "negative_volume":
                vol[code, t] = -max(vol[code, t], 100)
            elif rule == "null_amount":
                amount[code, t] = np.nan
            elif rule == "high_below_body":
                h[code, t] = round(max(o[code, t], c[code, t]) - 0.05, 2)
                lo[code, t] = min(lo[code, t], h[code, t], o[code, t], c[code, t])
            elif rule == "low_above_body":
                lo[code, t] = round(min(o[code, t], c[code, t]) + 0.05, 2)
                h[code, t] = max(h[code, t], lo[code, t], o[code, t], c[code, t])

    minutes = np.tile(BAR_END_MINUTES, n_days).astype("timedelta64[m]")
    day_start = np.repeat(days.values.astype("datetime64[m]"), 240)
    times = (day_start + minutes).astype("datetime64[us]")
    codes = np.array([c for c, _ in STOCK_CODES[:n_codes]], dtype=object)
    names = np.array([nm for _, nm in STOCK_CODES[:n_codes]], dtype=object)
    name = np.repeat(names[:, None], t_len, axis=1)
    renamed = min(RENAMED_CODE, n_codes - 1)
    first_month = np.flatnonzero(day_month == months[0])
    switch = first_month[first_month.size // 2] * 240
    name[renamed, switch:] = "ST" + names[renamed]

    return pd.DataFrame({
        "time": np.tile(times, n_codes),
        "code": np.repeat(codes, t_len),
        "name": name.ravel(),
        "open": o.ravel(), "high": h.ravel(), "low": lo.ravel(), "close": c.ravel(),
        "volume": vol.ravel(), "amount": amount.ravel(),
    })[cols]



def write_stock_landing(cfg: DemoConfig, root: Path | None = None,
                        bars: pd.DataFrame | None = None) -> list[str]:
    """The demo's 1-minute bars as a vendor would drop them: one file per month under `root`
    (default: the stock assets' landing directory), Parquet and CSV alternating, so both
    readers run. Returns the month partition keys that have bars."""
    if root is None:
        from kline_assets.stocks.assets import default_landing_dir  # Dagster-heavy import

        root = default_landing_dir()
    bars = generate_stock_bars(cfg) if bars is None else bars
    month_of_bar = bars["time"].dt.to_period("M")
    months = sorted(month_of_bar.unique())
    for i, month in enumerate(months):
        folder = root / str(month)
        folder.mkdir(parents=True, exist_ok=True)
        part = bars[month_of_bar == month]
        if i % 2 == 0:
            part.to_parquet(folder / "demo_bars.parquet", index=False)
        else:
            part.to_csv(folder / "demo_bars.csv", index=False)
    return [f"{m}-01" for m in months]
