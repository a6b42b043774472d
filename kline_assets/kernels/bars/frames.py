"""The column frames the bar kernel reads and writes: ticks in, bars out, and the report of
what was rejected and why."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kline_assets.kernels.bars.clock import REASONS


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
