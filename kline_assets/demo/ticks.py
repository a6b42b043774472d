"""Exchange-style tick snapshots for one trading day: what the tick → bar kernel folds into
1-minute bars, with the auction prints and the invalid prints it must handle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kline_assets.demo.catalog import S_TICKS, STOCK_CODES, DemoConfig, random_stream
from kline_assets.demo.stocks import opening_prices
from kline_assets.lib.months import add_months
from kline_assets.stocks.sessions import AFTERNOON, AUCTION_OPEN, MORNING, is_trading_day
from kline_assets.stocks.sessions import trading_days as xshg_trading_days

# Special prints in generate_ticks (times are Beijing wall clock):
TICK_EVENTS: dict[str, str] = {
    "09:25:00": "opening call auction, every code (folds into the 09:31 bar)",
    "11:30:00": "last morning print, every code (folds into the 11:30 bar)",
    "15:00:00": "closing call auction, every code (folds into the 15:00 bar)",
    "12:00:00": "out of session, STOCK_CODES[0], stale snapshot (no new volume): reject",
    "15:05:00": "out of session, STOCK_CODES[0], after-hours trade (adds volume): reject",
    "duplicate": "one exact duplicate row of STOCK_CODES[0], just before 10:00",
}
TICK_CODES = 3  # codes with ticks (the first ones of STOCK_CODES)
TICK_INTERVAL_MS = 3000  # exchange snapshot cadence
CLOSING_AUCTION = AFTERNOON[1] - 3 * 60  # 14:57: continuous trading ends, the call begins


def _ms(h: int, m: int, s: int = 0) -> int:
    return ((h * 60 + m) * 60 + s) * 1000


def default_tick_day(cfg: DemoConfig) -> pd.Timestamp:
    """The first XSHG trading day of the demo's first month."""
    first = pd.Timestamp(cfg.first_month)
    last = pd.Timestamp(add_months(cfg.first_month, 1)) - pd.Timedelta(days=1)
    return xshg_trading_days(first, last)[0]


def generate_ticks(cfg: DemoConfig = DemoConfig(), day: str | None = None) -> pd.DataFrame:
    """Exchange-style snapshots of the first TICK_CODES codes for one trading day.

    Columns: time (naive Beijing wall clock, microsecond dtype, millisecond precision), code,
    price (yuan), cum_volume (lots, cumulative since the day's open) and cum_amount (yuan,
    cumulative). Continuous trading snapshots come every ~3 s (at .001–.999 past a 3-second
    slot, never on a whole minute) in 09:30–11:30 and 13:00–14:57; the special prints are in
    TICK_EVENTS. Rows are sorted by (code, time). `day` defaults to the first XSHG trading day
    of the demo's first month; a day the exchange is closed raises ValueError.
    """
    n_codes = max(1, min(TICK_CODES, cfg.stock_codes))
    d = default_tick_day(cfg) if day is None else pd.Timestamp(day).normalize()
    if not is_trading_day(d):
        raise ValueError(f"{d.date()} is not a trading day (XSHG)")
    rng = random_stream(cfg, S_TICKS, int(d.strftime("%Y%m%d")))
    p0 = opening_prices(cfg)
    day_ms = d.value // 1_000_000

    slots = np.concatenate([
        np.arange(MORNING[0] * 1000, MORNING[1] * 1000, TICK_INTERVAL_MS),
        np.arange(AFTERNOON[0] * 1000, CLOSING_AUCTION * 1000, TICK_INTERVAL_MS),
    ])
    frames = []
    for ci in range(n_codes):  # per code (three of them), vectorized within
        code = STOCK_CODES[ci][0]
        keep = rng.random(slots.size) < 0.9
        t_cont = slots[keep] + rng.integers(1, TICK_INTERVAL_MS, keep.sum())
        times = np.concatenate(
            [[AUCTION_OPEN * 1000], t_cont, [MORNING[1] * 1000], [AFTERNOON[1] * 1000]]
        )
        times.sort()
        n = times.size
        # ~2% daily volatility on the 0.01-yuan grid, inside the ±10% daily limit
        walk = np.exp(np.cumsum(rng.normal(0, 0.02 / np.sqrt(n), n)))
        price = np.round(np.clip(p0[ci] * walk, p0[ci] * 0.9, p0[ci] * 1.1), 2)
        lots = np.rint(rng.lognormal(np.log(20 + p0[ci]), 1.0, n))
        lots[rng.random(n) < 0.1] = 0  # snapshots without a trade
        lots[0] = np.rint(lots[1:].mean() * 40)  # opening auction volume
        lots[-1] = np.rint(lots[1:-1].mean() * 60)  # closing auction volume
        frame = pd.DataFrame({
            "t": times, "code": code, "price": price,
            "cum_volume": np.cumsum(lots).astype(np.int64),
            "cum_amount": np.round(np.cumsum(lots * price * 100), 2),
        })
        if ci == 0:
            last_morning = frame[frame.t <= MORNING[1] * 1000].iloc[-1]
            last = frame.iloc[-1]
            extra = pd.DataFrame({
                "t": [_ms(12, 0), _ms(15, 5)], "code": code,
                "price": [last_morning.price, last.price],
                "cum_volume": [last_morning.cum_volume, last.cum_volume + 50],
                "cum_amount": [last_morning.cum_amount,
                               round(last.cum_amount + 50 * last.price * 100, 2)],
            })
            dup = frame.iloc[[frame.index[frame.t < _ms(10, 0)][-1]]]
            frame = pd.concat([frame, extra, dup], ignore_index=True)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).sort_values(["code", "t"], kind="stable")
    out["time"] = (day_ms + out.pop("t").to_numpy()).astype("datetime64[ms]").astype(
        "datetime64[us]"
    )
    return out[["time", "code", "price", "cum_volume", "cum_amount"]].reset_index(drop=True)
