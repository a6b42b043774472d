"""A slow, obviously-correct reference of the tick → bar contract: it walks the ticks one by
one with Python datetimes and dictionaries, following the vendors' conventions literally, so
the kernel's tests can ask it bar for bar; and the constructed days they run both on."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import numpy as np
import pytest

from kline_assets.kernels.bars import Bars, Ticks, ticks_to_bars
from kline_assets.stocks.sessions import is_trading_day, trading_day_mask

DAY = "2025-10-09"  # a Thursday, the first session after National Day week


@dataclass
class Tick:
    symbol: str
    time: datetime
    price: float
    volume: float
    amount: float
    tick_id: int | None = None
    high: float | None = None
    low: float | None = None


def at(clock: str, day: str = DAY) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}")


# ---------------------------------------------------------------- the reference (loops on purpose)

def ref_label(t: datetime, profile: str) -> datetime:
    tod = t.time()
    midnight = datetime.combine(t.date(), time())
    if profile == "tushare" and tod < time(9, 30):
        return midnight + timedelta(hours=9, minutes=30)
    if tod <= time(9, 31):
        return midnight + timedelta(hours=9, minutes=31)
    if time(13, 0) <= tod <= time(13, 1):
        return midnight + timedelta(hours=13, minutes=1)
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=1)


def ref_reason(k: Tick) -> str | None:
    tod = k.time.time()
    if not is_trading_day(k.time.date()):
        return "non_trading_day"
    if tod < time(9, 25):
        return "pre_open"
    if time(11, 30) < tod < time(13, 0):
        return "lunch"
    if tod > time(15, 0):
        return "after_close"
    if not (math.isfinite(k.price) and k.price > 0):
        return "bad_price"
    ok = all(math.isfinite(v) and v >= 0 for v in (k.volume, k.amount))
    return None if ok else "bad_volume"


def reference(ticks: list[Tick], profile: str = "end", cumulative: bool = False,
              unit: float = 1.0, fill: bool = False) -> tuple[list[tuple], dict]:
    arrival = list(enumerate(ticks))
    arrival.sort(key=lambda p: (p[1].symbol, p[1].time,
                                p[1].tick_id if p[1].tick_id is not None else 0, p[0]))
    seen: set = set()
    stats: dict = defaultdict(int)
    prev_cum: dict = {}
    prev_high: dict = {}
    prev_low: dict = {}
    bars: dict = {}
    for _, k in arrival:
        key = ((k.symbol, k.time, k.tick_id) if k.tick_id is not None
               else (k.symbol, k.time, k.price, k.volume, k.amount))
        if key in seen:
            stats["duplicates"] += 1
            continue
        seen.add(key)
        reason = ref_reason(k)
        if reason:
            stats[reason] += 1
            continue
        sd = (k.symbol, k.time.date())
        vol, amt = k.volume * unit, k.amount
        if cumulative:
            pv, pa = prev_cum.get(sd, (0.0, 0.0))
            prev_cum[sd] = (vol, amt)
            vol, amt = vol - pv, amt - pa
            if vol < 0 or amt < 0:
                stats["resets"] += 1
                vol, amt = 0.0, 0.0
        label = ref_label(k.time, profile)
        hi = lo = k.price
        if k.high is not None:
            if sd in prev_high and k.high > prev_high[sd]:
                hi = max(hi, k.high)
            prev_high[sd] = k.high
        if k.low is not None:
            if sd in prev_low and k.low < prev_low[sd]:
                lo = min(lo, k.low)
            prev_low[sd] = k.low
        b = bars.get((k.symbol, label))
        if b is None:
            bars[(k.symbol, label)] = [k.price, hi, lo, k.price, vol, amt]
        else:
            b[1], b[2], b[3] = max(b[1], hi), min(b[2], lo), k.price
            b[4] += vol
            b[5] += amt
    out = sorted((s, f, *v) for (s, f), v in bars.items())
    if fill:
        out = ref_fill(out, profile)
    return out, dict(stats)


def session_labels(day: datetime, profile: str) -> list[datetime]:
    start = datetime.combine(day.date(), time())
    minutes = [*range(9 * 60 + 31, 11 * 60 + 31), *range(13 * 60 + 1, 15 * 60 + 1)]
    if profile == "tushare":
        minutes.insert(0, 9 * 60 + 30)
    return [start + timedelta(minutes=m) for m in minutes]


def ref_fill(bars: list[tuple], profile: str) -> list[tuple]:
    by_day: dict = defaultdict(dict)
    for b in bars:
        by_day[(b[0], b[1].date())][b[1]] = b
    out = []
    for (symbol, _), day_bars in sorted(by_day.items()):
        first, last = min(day_bars), max(day_bars)
        close = None
        for label in session_labels(first, profile):
            if label < first or label > last:
                continue
            if label in day_bars:
                out.append(day_bars[label])
                close = day_bars[label][5]
            else:
                out.append((symbol, label, close, close, close, close, 0.0, 0.0))
    return out


def ref_block_end(label: datetime, period: int) -> datetime:
    midnight = datetime.combine(label.date(), time())
    bounds = [*range(9 * 60 + 30 + period, 11 * 60 + 31, period),
              *range(13 * 60 + period, 15 * 60 + 1, period)]
    minute = label.hour * 60 + label.minute
    return midnight + timedelta(minutes=next(b for b in bounds if b >= minute))


def ref_resample(bars: list[tuple], period: int) -> list[tuple]:
    out: dict = {}
    for s, f, o, h, lo, c, v, a in bars:
        key = (s, ref_block_end(f, period))
        if key not in out:
            out[key] = [o, h, lo, c, v, a]
        else:
            b = out[key]
            b[1], b[2], b[3] = max(b[1], h), min(b[2], lo), c
            b[4] += v
            b[5] += a
    return sorted((s, f, *v) for (s, f), v in out.items())


# ---------------------------------------------------------------- helpers

def to_ticks(rows: list[Tick]) -> tuple[Ticks, np.ndarray]:
    def column(name: str) -> np.ndarray | None:
        values = [getattr(r, name) for r in rows]
        return None if any(v is None for v in values) else np.array(values, dtype=float)

    times = np.array([r.time for r in rows], dtype="datetime64[us]")
    tid = [r.tick_id for r in rows]
    ticks = Ticks.from_arrays(
        [r.symbol for r in rows], times, column("price"), column("volume"), column("amount"),
        None if any(v is None for v in tid) else np.array(tid), column("high"), column("low"))
    return ticks, trading_day_mask(times)


def rows_of(bars: Bars) -> list[tuple]:
    return [(str(bars.symbol[i]), bars.frame[i].astype(datetime),
             *(float(getattr(bars, c)[i]) for c in Bars.COLUMNS)) for i in range(len(bars))]


def assert_same(got: list[tuple], want: list[tuple]) -> None:
    assert [g[:2] for g in got] == [w[:2] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[2:] == pytest.approx(w[2:], rel=1e-12, abs=1e-9), g[:2]


def check_against_reference(rows: list[Tick], **kw: object) -> Bars:
    ticks, mask = to_ticks(rows)
    unit = 100.0 if kw.get("volume_unit") == "lots" else 1.0
    bars, report = ticks_to_bars(ticks, mask, **kw)
    want, stats = reference(rows, profile=kw.get("profile", "end"),
                            cumulative=kw.get("cumulative", False), unit=unit,
                            fill=kw.get("fill", False))
    assert_same(rows_of(bars), want)
    assert report.duplicates == stats.get("duplicates", 0)
    assert report.resets == stats.get("resets", 0)
    for reason, n in report.rejected.items():
        assert n == stats.get(reason, 0), reason
    return bars


def edge_day() -> list[Tick]:
    """Two symbols interleaved through every edge of the day, out of order, with duplicates."""
    rows = [
        Tick("600000.SH", at("09:20:00"), 10.0, 100, 1000),       # pre_open
        Tick("600000.SH", at("09:25:00"), 10.1, 5000, 50500),     # opening auction
        Tick("000001.SZ", at("09:25:00"), 20.0, 800, 16000),
        Tick("600000.SH", at("09:30:00"), 10.2, 300, 3060),       # exactly 09:30:00
        Tick("600000.SH", at("09:30:59.5"), 10.05, 100, 1005),
        Tick("000001.SZ", at("09:31:00"), 20.2, 100, 2020),       # exactly 09:31:00
        Tick("600000.SH", at("09:31:00.000001"), 10.3, 200, 2060),
        Tick("600000.SH", at("09:35:10"), 10.4, 100, 1040),       # after empty minutes
        Tick("000001.SZ", at("09:33:00"), 20.1, 300, 6030),
        Tick("600000.SH", at("09:32:30"), 10.25, 100, 1025),      # out of order
        Tick("600000.SH", at("09:32:30"), 10.25, 100, 1025),      # duplicate
        Tick("600000.SH", at("09:32:30"), 10.26, 100, 1026),      # same time, other print
        Tick("000001.SZ", at("11:29:30"), 20.3, 100, 2030),
        Tick("000001.SZ", at("11:30:00"), 20.4, 100, 2040),       # exactly 11:30:00
        Tick("000001.SZ", at("11:30:01"), 20.4, 100, 2040),       # lunch
        Tick("600000.SH", at("12:00:00"), 10.0, 100, 1000),       # lunch
        Tick("600000.SH", at("13:00:00"), 10.5, 100, 1050),       # exactly 13:00:00
        Tick("600000.SH", at("13:00:40"), 10.6, 100, 1060),
        Tick("600000.SH", at("13:01:00.5"), 10.7, 100, 1070),
        Tick("000001.SZ", at("14:59:59"), 20.0, 100, 2000),
        Tick("000001.SZ", at("15:00:00"), 20.1, 900, 18090),      # exactly 15:00:00
        Tick("000001.SZ", at("15:00:03"), 20.1, 100, 2010),       # after_close
        Tick("600000.SH", at("10:00:00", "2025-10-03"), 10.0, 100, 1000),  # holiday
        Tick("600000.SH", at("10:00:00", "2025-10-11"), 10.0, 100, 1000),  # make-up Saturday
        Tick("600000.SH", at("10:00:00", "2025-10-12"), 10.0, 100, 1000),  # Sunday
        Tick("600000.SH", at("10:10:00"), 0.0, 100, 0),           # bad_price
        Tick("600000.SH", at("10:11:00"), float("nan"), 100, 0),  # bad_price
        Tick("600000.SH", at("10:12:00"), 10.0, -100, -1000),     # bad_volume
    ]
    return rows
