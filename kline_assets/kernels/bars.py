"""Ticks and Level-1 snapshots → 1/5/15/30/60-minute A-share bars, the way vendors label them.

Users hold these bars against Tushare, AkShare, TDX, JoinQuant and RiceQuant minute bars, so the
labelling conventions decide everything:

- profile `end` (TDX, JoinQuant, RiceQuant; 240 bars a full day): a bar is labelled by its end
  T and covers (T−1 min, T]; the opening auction and everything up to 09:31:00 fold into the
  09:31 bar, 13:00:00…13:01:00 into 13:01, so 11:30:00 and 15:00:00 close their sessions'
  last bars instead of forming bars of their own;
- profile `tushare` (Tushare, EastMoney/AkShare; 241 bars): the auction before 09:30:00 is a
  09:30 bar of its own, 09:30:00…09:31:00 is 09:31, the rest as `end`.

N-minute bars are cut per session (morning from 09:30, afternoon from 13:00), so no bar spans
the lunch break: 60-minute bars end 10:30, 11:30, 14:00, 15:00.

Everything is vectorised (a sort into symbol order, run boundaries, ufunc.reduceat): a trading
day of 3-second snapshots for the whole market is millions of ticks, and a per-tick Python loop
is what makes the usual bar generators slow. The batch kernel works through cache-sized chunks
(of whole symbols, or of whole bars in time order for time-ordered feeds), since full-length
temporaries and market-wide gathers cost more in memory traffic than the bar math itself.
The kernel does no I/O and knows no calendar: the caller passes
a trading-day mask per tick (from `kline_assets.stocks.sessions.trading_day_mask`).
Time is naive Beijing wall clock as datetime64; volume leaves in shares, amount in CNY.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

PROFILES = ("end", "tushare")
PERIODS = (1, 5, 15, 30, 60)
VOLUME_UNITS = {"shares": 1.0, "lots": 100.0}
# Rejection reasons in priority order: a print failing several is counted under the first.
REASONS = ("non_trading_day", "pre_open", "lunch", "after_close", "bad_price", "bad_volume")

_MIN_US = 60_000_000
_DAY_US = 86_400 * 1_000_000
_AUCTION_OPEN = (9 * 60 + 25) * _MIN_US
_OPEN = (9 * 60 + 30) * _MIN_US
_FIRST_BAR_END = (9 * 60 + 31) * _MIN_US
_NOON = (11 * 60 + 30) * _MIN_US
_REOPEN = 13 * 60 * _MIN_US
_REOPEN_BAR_END = (13 * 60 + 1) * _MIN_US
_CLOSE = 15 * 60 * _MIN_US

_MORNING_START_MIN = 9 * 60 + 30
_MORNING_END_MIN = 11 * 60 + 30
_AFTERNOON_START_MIN = 13 * 60

# Minute-of-day labels of a full day's 1-minute bars per profile.
_END_LABELS = np.concatenate([
    np.arange(_MORNING_START_MIN + 1, _MORNING_END_MIN + 1),
    np.arange(_AFTERNOON_START_MIN + 1, 15 * 60 + 1),
])
PROFILE_LABELS = {
    "end": _END_LABELS,
    "tushare": np.concatenate([[_MORNING_START_MIN], _END_LABELS]),
}


@dataclass
class Ticks:
    """Prints or snapshots of many symbols, in any order.

    `symbol` holds integer codes into `names` (encoding strings once, with a hash or dictionary
    encoder, is much cheaper than sorting millions of strings); `time` is naive Beijing wall
    clock. `high`/`low` are the day's high/low as of a snapshot, when the source has them.
    """

    symbol: np.ndarray
    names: np.ndarray
    time: np.ndarray
    price: np.ndarray
    volume: np.ndarray
    amount: np.ndarray
    tick_id: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.symbol = np.asarray(self.symbol, dtype=np.int64)
        self.names = np.asarray(self.names, dtype=object)
        self.time = np.asarray(self.time).astype("datetime64[us]", copy=False)
        for name in ("price", "volume", "amount", "high", "low"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, dtype=np.float64))
        if self.tick_id is not None:
            self.tick_id = np.asarray(self.tick_id, dtype=np.int64)

    @classmethod
    def from_arrays(
        cls,
        symbol: np.ndarray,
        time: np.ndarray,
        price: np.ndarray,
        volume: np.ndarray,
        amount: np.ndarray,
        tick_id: np.ndarray | None = None,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
    ) -> Ticks:
        """Ticks from symbol strings (encoded here)."""
        names, codes = np.unique(np.asarray(symbol, dtype=str), return_inverse=True)
        return cls(codes, names.astype(object), time, price, volume, amount, tick_id, high, low)

    def __len__(self) -> int:
        return len(self.time)

    def take(self, idx: np.ndarray) -> Ticks:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return Ticks(self.symbol[idx], self.names, self.time[idx], self.price[idx],
                     self.volume[idx], self.amount[idx], pick(self.tick_id), pick(self.high),
                     pick(self.low))


@dataclass
class Bars:
    """Bars of one period, sorted by (symbol, frame); `frame` is the end label as naive Beijing
    wall clock, datetime64[s]."""

    period: int
    symbol: np.ndarray
    frame: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    amount: np.ndarray

    COLUMNS = ("open", "high", "low", "close", "volume", "amount")

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls, period: int = 1) -> Bars:
        z = np.zeros(0)
        return cls(period, np.zeros(0, dtype=object), np.zeros(0, dtype="datetime64[s]"),
                   z, z, z, z, z, z)

    def take(self, idx: np.ndarray) -> Bars:
        return Bars(self.period, self.symbol[idx], self.frame[idx],
                    *(getattr(self, c)[idx] for c in self.COLUMNS))

    @classmethod
    def concat(cls, parts: list[Bars], period: int) -> Bars:
        """Concatenate and sort by (symbol, frame)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(period)
        symbol = np.concatenate([p.symbol for p in parts])
        frame = np.concatenate([p.frame for p in parts])
        out = cls(period, symbol, frame,
                  *(np.concatenate([getattr(p, c) for p in parts]) for c in cls.COLUMNS))
        order = np.lexsort((frame, symbol.astype(str)))
        return out.take(order)

    def iso_frames(self) -> np.ndarray:
        """Frames as ISO-8601 strings with +08:00, as they leave the system."""
        return np.char.add(np.datetime_as_string(self.frame, unit="s"), "+08:00")

    def records(self) -> list[dict]:
        frames = self.iso_frames()
        return [
            {"symbol": str(self.symbol[i]), "period": self.period, "frame": str(frames[i]),
             **{c: float(getattr(self, c)[i]) for c in self.COLUMNS}}
            for i in range(len(self))
        ]


@dataclass
class SynthReport:
    """What happened to the ticks: kept, duplicates, rejections by reason, cumulative resets."""

    received: int = 0
    kept: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    resets: int = 0
    reset_symbols: list[str] = field(default_factory=list)
    reset_times: list[np.datetime64] = field(default_factory=list)

    def add(self, other: SynthReport) -> None:
        self.received += other.received
        self.kept += other.kept
        self.duplicates += other.duplicates
        for reason, n in other.rejected.items():
            self.rejected[reason] += n
        self.resets += other.resets
        self.reset_symbols.extend(other.reset_symbols)
        self.reset_times.extend(other.reset_times)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in self.rejected.items())
        text = (f"{self.received} ticks: {self.kept} kept, {self.duplicates} duplicates dropped, "
                f"{self.rejected_total} rejected ({reasons}); {self.resets} cumulative resets")
        if self.resets:
            shown = [f"{s} {np.datetime_as_string(t, unit='s')}"
                     for s, t in zip(self.reset_symbols[:10], self.reset_times[:10], strict=True)]
            text += " at " + ", ".join(shown) + (" …" if self.resets > 10 else "")
        return text


@dataclass
class _Carry:
    """Per-symbol values carried in from earlier batches (the live path's state)."""

    day: np.ndarray  # int64 day number of the last kept print, -1 = none
    cum_volume: np.ndarray
    cum_amount: np.ndarray
    day_high: np.ndarray
    day_low: np.ndarray

    def remember_last(self, kept) -> None:
        """Keep each symbol's last kept print of the batch (kept is in symbol order), so the
        next batch differences and widens from it."""
        last = np.flatnonzero(np.r_[kept.sym[1:] != kept.sym[:-1], True])
        ls = kept.sym[last]
        self.day[ls] = kept.day[last]
        self.cum_volume[ls], self.cum_amount[ls] = kept.raw_volume[last], kept.raw_amount[last]
        if kept.raw_high is not None:
            self.day_high[ls] = kept.raw_high[last]
        if kept.raw_low is not None:
            self.day_low[ls] = kept.raw_low[last]


def _check_options(profile: str, volume_unit: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    if volume_unit not in VOLUME_UNITS:
        raise ValueError(f"volume unit must be one of {tuple(VOLUME_UNITS)}, not {volume_unit!r}")


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean: row i starts a new run of equal keys."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for k in keys:
            new[1:] |= k[1:] != k[:-1]
    return new


def _sort_order(t: Ticks, us: np.ndarray) -> np.ndarray | None:
    """Permutation to (symbol, time, tick_id, arrival) order; None when already in it."""
    sym, tid = t.symbol, t.tick_id
    if len(us) < 2 or _is_sorted(sym, us, tid):
        return None
    # A feed delivers ticks in time order across symbols: then a stable sort by symbol alone
    # (a radix sort for small integer codes) gives the full order.
    if _time_sorted(us, tid):
        for small in (np.uint8, np.uint16):
            if len(t.names) <= np.iinfo(small).max:
                return np.argsort(sym.astype(small), kind="stable")
    return np.lexsort((us, sym)) if tid is None else np.lexsort((tid, us, sym))


def _order_and_dedupe(
    t: Ticks, mask: np.ndarray | None
) -> tuple[Ticks, np.ndarray | None, int]:
    """The ticks without duplicates in (symbol, time, tick_id, arrival) order (with the
    per-tick trading-day mask moved along), and the number of duplicates dropped."""
    us = t.time.view(np.int64)
    order = _sort_order(t, us)
    if order is not None:
        t, mask = _take_symbol_major(t, order), None if mask is None else mask[order]
    return _dedupe(t, mask)


def _dedupe(t: Ticks, mask: np.ndarray | None) -> tuple[Ticks, np.ndarray | None, int]:
    """`_order_and_dedupe` of ticks already in (symbol, time, tick_id, arrival) order."""
    us = t.time.view(np.int64)
    sym, tid = t.symbol, t.tick_id
    if tid is not None:
        dup = ~_starts(sym, us, tid)
    else:
        # Without tick ids a duplicate repeats the whole print; only ticks sharing (symbol,
        # time) can be duplicates, so only those runs pay for the wide sort.
        same = ~_starts(sym, us)
        dup = np.zeros(len(us), dtype=bool)
        if same.any():
            tied = same.copy()
            tied[:-1] |= same[1:]
            sub = np.flatnonzero(tied)
            o2 = sub[np.lexsort((sub, t.amount[sub], t.volume[sub], t.price[sub], us[sub],
                                 sym[sub]))]
            dup[o2[~_starts(sym[o2], us[o2], t.price[o2], t.volume[o2], t.amount[o2])]] = True
    n_dup = int(dup.sum())
    if n_dup:
        keep = np.flatnonzero(~dup)
        t = t.take(keep)
        mask = None if mask is None else mask[keep]
    return t, mask, n_dup


def _time_sorted(us: np.ndarray, tid: np.ndarray | None) -> bool:
    """Whether the ticks are in (time, tick_id) order across symbols, as a feed delivers them."""
    if not (us[1:] >= us[:-1]).all():
        return False
    return tid is None or not ((us[1:] == us[:-1]) & (tid[1:] < tid[:-1])).any()


def _take_symbol_major(t: Ticks, order: np.ndarray) -> Ticks:
    """`t.take(order)` for an `order` sorted by symbol first: the symbol column is rebuilt from
    the symbol counts instead of gathered."""
    sym = t.symbol
    if len(sym) and sym.min() >= 0:
        counts = np.bincount(sym)
        sorted_sym = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    else:
        sorted_sym = sym[order]

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[order]

    return Ticks(sorted_sym, t.names, t.time[order], t.price[order], t.volume[order],
                 t.amount[order], pick(t.tick_id), pick(t.high), pick(t.low))


def _is_sorted(sym: np.ndarray, us: np.ndarray, tid: np.ndarray | None) -> bool:
    if (sym[1:] < sym[:-1]).any():
        return False
    same = sym[1:] == sym[:-1]
    if (same & (us[1:] < us[:-1])).any():
        return False
    if tid is not None:
        return not (same & (us[1:] == us[:-1]) & (tid[1:] < tid[:-1])).any()
    return True


def _day_mask(trading_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Trading-day flag per tick from the trading days (datetime64[D]) covering the ticks."""
    days = np.asarray(trading_day).astype("datetime64[D]").view(np.int64)
    if len(day) == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = int(day.min()), int(day.max())
    table = np.zeros(hi - lo + 1, dtype=bool)
    inside = days[(days >= lo) & (days <= hi)]
    table[inside - lo] = True
    return table[day - lo]


def _reasons(t: Ticks, us: np.ndarray, is_trading: np.ndarray) -> np.ndarray:
    """Rejection code per tick: 0 kept, else 1 + index into REASONS."""
    sod = us % _DAY_US
    price, vol, amt = t.price, t.volume, t.amount
    code = np.zeros(len(us), dtype=np.int8)
    checks = [
        ~is_trading,
        sod < _AUCTION_OPEN,
        (sod > _NOON) & (sod < _REOPEN),
        sod > _CLOSE,
        ~(np.isfinite(price) & (price > 0)),
        ~(np.isfinite(vol) & (vol >= 0) & np.isfinite(amt) & (amt >= 0)),
    ]
    for i in range(len(checks) - 1, -1, -1):  # lowest priority first, so the first reason wins
        code[checks[i]] = i + 1
    return code


def minute_labels(sod_us: np.ndarray, profile: str = "end") -> np.ndarray:
    """End-label minute of day of in-session prints, from microseconds of the day."""
    lab = -(-sod_us // _MIN_US)
    lab = np.where(sod_us <= _FIRST_BAR_END, _FIRST_BAR_END // _MIN_US, lab)
    lab = np.where((sod_us >= _REOPEN) & (sod_us <= _REOPEN_BAR_END),
                   _REOPEN_BAR_END // _MIN_US, lab)
    if profile == "tushare":
        lab = np.where(sod_us < _OPEN, _OPEN // _MIN_US, lab)
    return lab


@dataclass
class _Kept:
    """Kept ticks in order with their bar keys and per-print volume/amount."""

    sym: np.ndarray
    day: np.ndarray
    label: np.ndarray
    us: np.ndarray
    tid: np.ndarray | None
    price: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray
    amount: np.ndarray
    raw_volume: np.ndarray
    raw_amount: np.ndarray
    raw_high: np.ndarray | None
    raw_low: np.ndarray | None
    reset_at: np.ndarray | None = None  # positions of the cumulative resets


def _is_mask(trading_day: np.ndarray, t: Ticks) -> bool:
    a = np.asarray(trading_day)
    return a.dtype == bool and len(a) == len(t)


def _time_tables() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rejection code and end label per time slot `2 * minute_of_day + (not on the minute)`:
    every session boundary is a whole minute, so a print strictly inside a minute behaves like
    any other print inside it and the slot decides both."""
    mod = np.arange(1440, dtype=np.int64)
    sod = np.empty(2880, dtype=np.int64)
    sod[0::2] = mod * _MIN_US
    sod[1::2] = mod * _MIN_US + 1
    code = np.zeros(2880, dtype=np.int8)
    code[sod > _CLOSE] = 4
    code[(sod > _NOON) & (sod < _REOPEN)] = 3
    code[sod < _AUCTION_OPEN] = 2
    return code, {p: minute_labels(sod, p) for p in PROFILES}


_SLOT_REASON, _SLOT_LABEL = _time_tables()


def _prepare(
    t: Ticks, trading_day: np.ndarray, profile: str, cumulative: bool, volume_unit: str,
    carry: _Carry | None, sorted_ticks: tuple[Ticks, np.ndarray | None, int] | None = None,
) -> tuple[_Kept, SynthReport]:
    """Order, dedupe, validate, difference and label the ticks. `trading_day` is either a
    boolean mask per tick or the trading days (datetime64) covering the ticks' dates."""
    report = SynthReport(received=len(t))
    is_mask = _is_mask(trading_day, t)
    if sorted_ticks is None:
        sorted_ticks = _order_and_dedupe(t, np.asarray(trading_day) if is_mask else None)
    t, mask, report.duplicates = sorted_ticks
    us = t.time.view(np.int64)
    minute = us // _MIN_US
    day = minute // 1440
    slot = minute - day * 1440
    slot += slot
    slot += us != minute * _MIN_US
    del minute
    is_trading = mask.astype(bool) if mask is not None else _day_mask(trading_day, day)
    price, vol, amt = t.price, t.volume, t.amount
    time_code = _SLOT_REASON[slot]
    good_price = (price > 0) & (price < np.inf)  # NaN fails both
    good_volume = (vol >= 0) & (vol < np.inf) & (amt >= 0) & (amt < np.inf)
    ok = is_trading & good_price
    ok &= good_volume
    ok &= time_code == 0
    n_ok = int(np.count_nonzero(ok))
    counts = np.zeros(len(REASONS) + 1, dtype=np.int64)
    if n_ok != len(t):
        bad = np.flatnonzero(~ok)
        code = np.zeros(len(bad), dtype=np.int8)  # lowest priority first: the first reason wins
        code[~good_volume[bad]] = 6
        code[~good_price[bad]] = 5
        tc = time_code[bad]
        code[tc > 0] = tc[tc > 0]
        code[~is_trading[bad]] = 1
        counts = np.bincount(code, minlength=len(REASONS) + 1)
    report.rejected = {r: int(counts[i + 1]) for i, r in enumerate(REASONS)}
    del good_price, good_volume, time_code, is_trading
    if n_ok != len(t):
        keep = np.flatnonzero(ok)
        t, us, day, slot = t.take(keep), us[keep], day[keep], slot[keep]
    del ok
    report.kept = len(t)
    sym = t.symbol
    n = len(sym)
    unit = VOLUME_UNITS[volume_unit]
    raw_v = t.volume * unit if unit != 1.0 else t.volume
    raw_a = t.amount
    group = _starts(sym, day)
    first = np.flatnonzero(group)
    del group
    if carry is not None:
        same_day = carry.day[sym[first]] == day[first]
    reset_at = None
    if cumulative:
        dv = np.empty_like(raw_v)
        da = np.empty_like(raw_a)
        np.subtract(raw_v[1:], raw_v[:-1], out=dv[1:])
        np.subtract(raw_a[1:], raw_a[:-1], out=da[1:])
        if carry is not None:
            dv[first] = raw_v[first] - np.where(same_day, carry.cum_volume[sym[first]], 0.0)
            da[first] = raw_a[first] - np.where(same_day, carry.cum_amount[sym[first]], 0.0)
        else:
            dv[first] = raw_v[first] - 0.0
            da[first] = raw_a[first] - 0.0
        reset = dv < 0
        reset |= da < 0
        if reset.any():
            dv[reset], da[reset] = 0.0, 0.0
            report.resets = int(reset.sum())
            report.reset_symbols = [str(s) for s in t.names[sym[reset]]]
            report.reset_times = list(t.time[reset])
            reset_at = np.flatnonzero(reset)
        del reset
    else:
        dv, da = raw_v, raw_a
    price = t.price
    high_eff, low_eff = price, price
    raw_h = raw_l = None
    for name in ("high", "low"):
        x = getattr(t, name)
        if x is None:
            continue
        # Whether x moved past the symbol's previous x of the day (none before a day's first).
        moved = np.empty(n, dtype=bool)
        cmp = np.greater if name == "high" else np.less
        if n:
            cmp(x[1:], x[:-1], out=moved[1:])
            if carry is not None:
                carried = carry.day_high if name == "high" else carry.day_low
                prev = np.where(same_day, carried[sym[first]], np.nan)
                moved[first] = cmp(x[first], prev)
            else:
                moved[first] = False
        eff = price.copy()
        if name == "high":
            raw_h, high_eff = x, eff
            np.maximum(price, x, out=eff, where=moved)
        else:
            raw_l, low_eff = x, eff
            np.minimum(price, x, out=eff, where=moved)
        del moved
    label = _SLOT_LABEL[profile][slot]
    tid = t.tick_id
    kept = _Kept(sym, day, label, us, tid, price, high_eff, low_eff, dv, da, raw_v, raw_a,
                 raw_h, raw_l, reset_at)
    return kept, report


def _aggregate(k: _Kept, names: np.ndarray) -> tuple[Bars, np.ndarray]:
    """1-minute bars of kept ticks, and the integer symbol code of each bar."""
    if len(k.sym) == 0:
        return Bars.empty(1), np.zeros(0, dtype=np.int64)
    key = k.day * 1440
    key += k.label
    starts = np.flatnonzero(_starts(k.sym, key))
    ends = np.r_[starts[1:], len(k.sym)] - 1
    frame = (key[starts] * 60).astype("datetime64[s]")
    bars = Bars(
        1, names[k.sym[starts]], frame, k.price[starts],
        np.maximum.reduceat(k.high, starts), np.minimum.reduceat(k.low, starts),
        k.price[ends], np.add.reduceat(k.volume, starts), np.add.reduceat(k.amount, starts),
    )
    return bars, k.sym[starts]


def ticks_to_bars(
    ticks: Ticks,
    trading_day: np.ndarray,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
    fill: bool = False,
) -> tuple[Bars, SynthReport]:
    """1-minute bars of `ticks`; `trading_day[i]` says whether tick i's date is a session."""
    _check_options(profile, volume_unit)
    bars, report = _bars_in_chunks(ticks, trading_day, profile, cumulative, volume_unit)
    return (fill_bars(bars, profile) if fill else bars), report


# Ticks per chunk of whole symbols: a chunk's temporaries stay in cache and are recycled by the
# allocator, where full-length temporaries would each fault in tens of MB of fresh pages.
_CHUNK = 1 << 17


def _bars_in_chunks(
    t: Ticks, trading_day: np.ndarray, profile: str, cumulative: bool, volume_unit: str
) -> tuple[Bars, SynthReport]:
    """`_prepare` + `_aggregate` over chunks of whole symbols in symbol order: every step works
    per symbol, so the chunks' bars and reports just add up."""
    is_mask = _is_mask(trading_day, t)
    mask = np.asarray(trading_day, dtype=bool) if is_mask else None
    us = t.time.view(np.int64)
    n = len(t)
    if (n > _CHUNK and len(t.names) <= np.iinfo(np.uint16).max
            and not _is_sorted(t.symbol, us, t.tick_id) and _time_sorted(us, t.tick_id)):
        return _bars_in_time_chunks(t, trading_day, mask, profile, cumulative, volume_unit)
    order = _sort_order(t, us)
    sym = t.symbol
    if n and sym.min() >= 0:
        counts = np.bincount(sym)
        ends = np.cumsum(counts)
        cuts = np.unique(ends[np.searchsorted(ends, np.arange(_CHUNK, n, _CHUNK))])
        bounds = [0, *(int(c) for c in cuts if 0 < c < n), n]
        codes = np.arange(len(counts), dtype=np.int64)
    else:
        bounds, counts = [0, n], None
    report = SynthReport()
    parts: list[Bars] = []
    for lo, hi in pairwise(bounds):
        if order is None:
            idx: np.ndarray | slice = slice(lo, hi)
            csym = sym[idx]
        else:
            idx = order[lo:hi]
            if counts is None:
                csym = sym[idx]
            else:
                first, last = np.searchsorted(ends, [lo, hi - 1], side="right")
                csym = np.repeat(codes[first:last + 1], np.diff(np.clip(
                    np.r_[lo, ends[first:last + 1]], lo, hi)))

        def pick(a: np.ndarray | None, idx: np.ndarray | slice = idx) -> np.ndarray | None:
            return None if a is None else a[idx]

        chunk = Ticks(csym, t.names, t.time[idx], t.price[idx], t.volume[idx], t.amount[idx],
                      pick(t.tick_id), pick(t.high), pick(t.low))
        g, cmask, dups = _dedupe(chunk, pick(mask))
        kept, part = _prepare(g, cmask if cmask is not None else trading_day, profile,
                              cumulative, volume_unit, None, sorted_ticks=(g, cmask, dups))
        part.received = len(chunk)
        report.add(part)
        bars, _ = _aggregate(kept, t.names)
        parts.append(bars)
    if len(parts) == 1:
        return parts[0], report
    return Bars(1, *(np.concatenate([getattr(b, c) for b in parts])
                     for c in ("symbol", "frame", *Bars.COLUMNS))), report


def _bars_in_time_chunks(
    t: Ticks, trading_day: np.ndarray, mask: np.ndarray | None, profile: str, cumulative: bool,
    volume_unit: str,
) -> tuple[Bars, SynthReport]:
    """Bars of time-ordered ticks, a chunk of consecutive times at a time: each chunk is put in
    symbol order on its own (a small radix sort, local gathers) and continues every symbol's
    cumulative volume/amount and day high/low from the chunks before it, the way
    `IncrementalBars` does. Chunks end where a bar ends, so no bar (and no timestamp, so no
    duplicate) is split between chunks, and the chunks' bars are the one-pass bars exactly."""
    us = t.time.view(np.int64)
    n, size = len(t), len(t.names)

    def bar_key(u: np.ndarray) -> np.ndarray:  # day * 1440 + end label; grows with time
        d = u // _DAY_US
        return d * 1440 + minute_labels(u - d * _DAY_US, profile)

    # Cut after the last tick of the bar each probe falls in, keeping only cuts between bars.
    cuts = np.unique(np.searchsorted(us, bar_key(us[np.arange(_CHUNK, n, _CHUNK)]) * _MIN_US,
                                     side="right"))
    cuts = cuts[(cuts > 0) & (cuts < n)]
    cuts = cuts[bar_key(us[cuts - 1]) != bar_key(us[cuts])]
    bounds = [0, *(int(c) for c in cuts), n]
    small = np.uint8 if size <= np.iinfo(np.uint8).max else np.uint16
    carry = _Carry(np.full(size, -1, dtype=np.int64), np.zeros(size), np.zeros(size),
                   np.full(size, np.nan), np.full(size, np.nan))
    report = SynthReport()
    parts: list[Bars] = []
    part_codes: list[np.ndarray] = []
    reset_codes: list[np.ndarray] = []
    for lo, hi in pairwise(bounds):
        csym = t.symbol[lo:hi]
        order = np.argsort(csym.astype(small), kind="stable")

        def pick(a: np.ndarray | None, lo: int = lo, hi: int = hi,
                 order: np.ndarray = order) -> np.ndarray | None:
            return None if a is None else a[lo:hi][order]

        chunk = Ticks(csym[order], t.names, pick(t.time), pick(t.price), pick(t.volume),
                      pick(t.amount), pick(t.tick_id), pick(t.high), pick(t.low))
        g, cmask, dups = _dedupe(chunk, pick(mask))
        kept, part = _prepare(g, cmask if cmask is not None else trading_day, profile,
                              cumulative, volume_unit, carry, sorted_ticks=(g, cmask, dups))
        part.received = len(chunk)
        report.add(part)
        if kept.reset_at is not None:
            reset_codes.append(kept.sym[kept.reset_at])
        if len(kept.sym) == 0:
            continue
        carry.remember_last(kept)
        bars, codes = _aggregate(kept, t.names)
        parts.append(bars)
        part_codes.append(codes)
    if reset_codes:
        # Report the resets in (symbol, time) order, as one pass over all the ticks would.
        o = np.argsort(np.concatenate(reset_codes), kind="stable")
        report.reset_symbols = [report.reset_symbols[i] for i in o]
        report.reset_times = [report.reset_times[i] for i in o]
    if not parts:
        return Bars.empty(1), report
    # Chunks follow each other in time and bars within a chunk are in (symbol, frame) order:
    # a stable sort by symbol gives (symbol, frame) order overall.
    o = np.argsort(np.concatenate(part_codes).astype(small), kind="stable")
    return Bars(1, *(np.concatenate([getattr(b, c) for b in parts])[o]
                     for c in ("symbol", "frame", *Bars.COLUMNS))), report


def _day_minute(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = frame.astype("datetime64[s]").view(np.int64)
    return s // 86_400, (s % 86_400) // 60


def fill_bars(bars: Bars, profile: str = "end") -> Bars:
    """Flat zero-volume bars at the previous close for every session minute between a symbol's
    first and last bar of each day, for users who want a complete grid."""
    _check_options(profile, "shares")
    if len(bars) == 0:
        return bars
    labels = PROFILE_LABELS[profile]
    pos_of = np.full(1441, -1, dtype=np.int64)
    pos_of[labels] = np.arange(len(labels))
    day, minute = _day_minute(bars.frame)
    pos = pos_of[minute]
    if (pos < 0).any():
        raise ValueError("fill needs 1-minute bars on the profile's session labels")
    grp = _starts(bars.symbol, day)
    gstart = np.flatnonzero(grp)
    gend = np.r_[gstart[1:], len(bars)] - 1
    first, last = pos[gstart], pos[gend]
    counts = last - first + 1
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    total = int(counts.sum())
    gid_out = np.repeat(np.arange(len(gstart)), counts)
    pos_out = first[gid_out] + np.arange(total) - offsets[gid_out]
    gid_bar = np.cumsum(grp) - 1
    at = offsets[gid_bar] + pos - first[gid_bar]
    src = np.full(total, -1, dtype=np.int64)
    src[at] = np.arange(len(bars))
    prev = np.maximum.accumulate(np.where(src >= 0, np.arange(total), -1))
    has = src >= 0
    from_bar = src[prev]
    close = bars.close[from_bar]
    frame = ((day[gstart][gid_out] * 1440 + labels[pos_out]) * 60).astype("datetime64[s]")

    def col(name: str, flat: np.ndarray) -> np.ndarray:
        return np.where(has, getattr(bars, name)[from_bar], flat)

    zero = np.zeros(total)
    return Bars(1, bars.symbol[gstart][gid_out], frame, col("open", close), col("high", close),
                col("low", close), close, col("volume", zero), col("amount", zero))


def block_end_minutes(minute: np.ndarray, period: int) -> np.ndarray:
    """End label (minute of day) of the `period`-minute block holding each 1-minute label; a
    09:30 auction bar belongs to the first morning block."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    morning = minute <= _MORNING_END_MIN
    base = np.where(morning, _MORNING_START_MIN, _AFTERNOON_START_MIN)
    k = np.maximum(-(-(minute - base) // period), 1)
    return base + k * period


def resample_bars(bars: Bars, period: int) -> Bars:
    """N-minute bars from 1-minute bars sorted by (symbol, frame): vendor or synthesised alike."""
    if period == 1:
        _ = block_end_minutes(np.zeros(0, dtype=np.int64), period)
        return bars
    if len(bars) == 0:
        return Bars.empty(period)
    day, minute = _day_minute(bars.frame)
    block = block_end_minutes(minute, period)
    starts = np.flatnonzero(_starts(bars.symbol, day, block))
    ends = np.r_[starts[1:], len(bars)] - 1
    frame = ((day[starts] * 1440 + block[starts]) * 60).astype("datetime64[s]")
    return Bars(
        period, bars.symbol[starts], frame, bars.open[starts],
        np.maximum.reduceat(bars.high, starts), np.minimum.reduceat(bars.low, starts),
        bars.close[ends], np.add.reduceat(bars.volume, starts),
        np.add.reduceat(bars.amount, starts),
    )


def synthesize(
    ticks: Ticks,
    trading_day: np.ndarray,
    periods: tuple[int, ...] = PERIODS,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
    fill: bool = False,
) -> tuple[dict[int, Bars], SynthReport]:
    """Bars of every asked period from one pass over the ticks. N-minute bars come from the
    unfilled 1-minute bars, so `fill` never changes them."""
    for p in periods:
        block_end_minutes(np.zeros(0, dtype=np.int64), p)
    one, report = ticks_to_bars(ticks, trading_day, profile=profile, cumulative=cumulative,
                                volume_unit=volume_unit)
    out = {p: resample_bars(one, p) for p in periods if p != 1}
    if 1 in periods:
        out[1] = fill_bars(one, profile) if fill else one
    return {p: out[p] for p in periods}, report


@dataclass
class SymbolState:
    """What the live path carries per symbol from one batch to the next, aligned with the
    batch's `names`: the last tick seen (time in µs, tick id; rejected prints included), and
    the day, cumulative volume/amount and day high/low of the last kept print. A consumer keeps
    it next to the bars (in Redis), so any process can continue where another stopped."""

    last_us: np.ndarray
    last_tid: np.ndarray
    day: np.ndarray
    cum_volume: np.ndarray
    cum_amount: np.ndarray
    day_high: np.ndarray
    day_low: np.ndarray

    FIELDS = ("last_us", "last_tid", "day", "cum_volume", "cum_amount", "day_high", "day_low")
    NONE = (np.iinfo(np.int64).min, np.iinfo(np.int64).min, -1, 0.0, 0.0, np.nan, np.nan)

    @classmethod
    def empty(cls, n: int) -> SymbolState:
        """No symbol seen yet."""
        return cls(*(np.full(n, v, dtype=np.int64 if i < 3 else np.float64)
                     for i, v in enumerate(cls.NONE)))

    def extend(self, extra: int) -> SymbolState:
        """The state with `extra` new, unseen symbols at the end."""
        more = SymbolState.empty(extra)
        return SymbolState(*(np.concatenate([getattr(self, f), getattr(more, f)])
                             for f in self.FIELDS))

    def carry(self) -> _Carry:
        return _Carry(self.day, self.cum_volume, self.cum_amount, self.day_high, self.day_low)


def _continue(
    t: Ticks, trading_day: np.ndarray, state: SymbolState, profile: str, cumulative: bool,
    volume_unit: str,
) -> tuple[Bars, np.ndarray, SynthReport]:
    """`continue_bars`, also returning each bar's symbol code."""
    is_mask = _is_mask(trading_day, t)
    g, mask, dups = _order_and_dedupe(t, np.asarray(trading_day) if is_mask else None)
    s, u = g.symbol, g.time.view(np.int64)
    last_u = state.last_us[s]
    if g.tick_id is None:
        fresh = u > last_u
    else:
        fresh = (u > last_u) | ((u == last_u) & (g.tick_id > state.last_tid[s]))
    stale = int(len(fresh) - np.count_nonzero(fresh))
    if stale:
        keep = np.flatnonzero(fresh)
        g = g.take(keep)
        mask = None if mask is None else mask[keep]
    carry = state.carry()
    kept, report = _prepare(g, trading_day if not is_mask else mask, profile, cumulative,
                            volume_unit, carry, sorted_ticks=(g, mask, dups + stale))
    report.received = len(t)
    if len(g):
        # The last (time, tick_id) of every symbol seen, rejected prints included.
        so, uo = g.symbol, g.time.view(np.int64)
        last = np.flatnonzero(np.r_[so[1:] != so[:-1], True])
        state.last_us[so[last]] = uo[last]
        if g.tick_id is not None:
            state.last_tid[so[last]] = g.tick_id[last]
    if len(kept.sym) == 0:
        return Bars.empty(1), np.zeros(0, dtype=np.int64), report
    carry.remember_last(kept)
    bars, codes = _aggregate(kept, t.names)
    return bars, codes, report


def continue_bars(
    ticks: Ticks,
    trading_day: np.ndarray,
    state: SymbolState,
    *,
    profile: str = "end",
    cumulative: bool = False,
    volume_unit: str = "shares",
) -> tuple[Bars, SynthReport]:
    """1-minute bars of one batch of ticks continuing `state` (updated in place; aligned with
    `ticks.names`), in O(batch).

    Ticks at or before a symbol's last tick in `state` are dropped as already seen (counted as
    duplicates), so applying a batch twice adds nothing. Each symbol's first bar may continue
    the last bar of the previous batch: the caller folds it in (open kept, high max, low min,
    close replaced, volume and amount added).
    """
    _check_options(profile, volume_unit)
    bars, _, report = _continue(ticks, trading_day, state, profile, cumulative, volume_unit)
    return bars, report


class IncrementalBars:
    """The live path in memory: 1-minute bars updated batch by batch in O(batch).

    State per symbol: a `SymbolState` and the open (last) bar. Ticks at or before a symbol's
    last tick are dropped as already seen, so applying a batch twice changes nothing; without
    tick ids that means a batch boundary must not split prints sharing one timestamp.
    """

    def __init__(self, *, profile: str = "end", cumulative: bool = False,
                 volume_unit: str = "shares") -> None:
        _check_options(profile, volume_unit)
        self.profile, self.cumulative, self.volume_unit = profile, cumulative, volume_unit
        self.report = SynthReport()
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._state = SymbolState.empty(0)
        self._open = Bars.empty(1)  # one row per symbol index; frame NaT = none
        self._closed: list[Bars] = []

    def _grow(self, names: np.ndarray) -> np.ndarray:
        """Global index of each name, registering new symbols."""
        for name in names:
            if name not in self._index:
                self._index[name] = len(self._names)
                self._names.append(name)
        size, old = len(self._names), len(self._state.last_us)
        if size > old:
            extra = size - old

            def ext(a: np.ndarray, value: object) -> np.ndarray:
                return np.concatenate([a, np.full(extra, value, dtype=a.dtype)])

            self._state = self._state.extend(extra)
            o = self._open
            self._open = Bars(1, np.array(self._names, dtype=object),
                              ext(o.frame, np.datetime64("NaT")),
                              *(ext(getattr(o, col), np.nan) for col in Bars.COLUMNS))
        return np.array([self._index[n] for n in names], dtype=np.int64)

    def update(self, ticks: Ticks, trading_day: np.ndarray) -> Bars:
        """Apply one batch; returns the 1-minute bars it created or changed."""
        gidx = self._grow([str(n) for n in ticks.names])
        t = Ticks(gidx[ticks.symbol], np.array(self._names, dtype=object), ticks.time,
                  ticks.price, ticks.volume, ticks.amount, ticks.tick_id, ticks.high, ticks.low)
        bars, codes, report = _continue(t, trading_day, self._state, self.profile,
                                        self.cumulative, self.volume_unit)
        self.report.add(report)
        if len(bars) == 0:
            return bars
        return self._merge(bars, codes)

    def _merge(self, bars: Bars, codes: np.ndarray) -> Bars:
        """Fold each symbol's first new bar into its open bar when they share a frame; bars the
        batch moved past are closed."""
        o = self._open
        first = np.flatnonzero(_starts(codes))
        last = np.r_[first[1:], len(codes)] - 1
        fc = codes[first]
        joins = o.frame[fc] == bars.frame[first]
        j, jc = first[joins], fc[joins]
        bars.open[j] = o.open[jc]
        bars.high[j] = np.maximum(bars.high[j], o.high[jc])
        bars.low[j] = np.minimum(bars.low[j], o.low[jc])
        bars.volume[j] += o.volume[jc]
        bars.amount[j] += o.amount[jc]
        moved = fc[~joins & ~np.isnat(o.frame[fc])]
        if len(moved):
            self._closed.append(o.take(moved))
        not_last = np.ones(len(codes), dtype=bool)
        not_last[last] = False
        if not_last.any():
            self._closed.append(bars.take(np.flatnonzero(not_last)))
        lc = codes[last]
        o.frame[lc] = bars.frame[last]
        for col in Bars.COLUMNS:
            getattr(o, col)[lc] = getattr(bars, col)[last]
        return bars

    def bars(self, fill: bool = False) -> Bars:
        """Every 1-minute bar so far (the open bars included), sorted by (symbol, frame)."""
        o = self._open
        opened = o.take(np.flatnonzero(~np.isnat(o.frame)))
        self._closed = [Bars.concat([*self._closed], 1)]
        out = Bars.concat([*self._closed, opened], 1)
        return fill_bars(out, self.profile) if fill else out
