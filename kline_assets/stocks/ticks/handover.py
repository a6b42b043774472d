"""The nightly hand-over of a trading day's synthesised bars from Redis to PostgreSQL.

1. archive: the day's 1-minute bars from Redis replace that day of `stock_1min_synth` in one
   transaction (advisory lock, DELETE, binary COPY — `postgres_io.replace_time_window`), so a
   re-run never duplicates; never `stock_1min_qfq`, which holds the vendors' bars only;
2. integrity: per symbol, bars against the session minutes between its first and last bar,
   with the gaps listed;
3. accuracy: where the vendor has that day, per symbol the share of bars matching exactly,
   the largest OHLC/volume differences, frames the vendor has that we lack (missing) and the
   reverse (extra);
4. only then the day's Redis keys are deleted. Any failure before leaves Redis as it was.

Both reports are computed from the archived rows (read back after the commit), so running the
hand-over again for a day already handed over reports the same numbers and deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from kline_assets.kernels.bars import PROFILE_LABELS, Bars
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import ensure_hypertable, replace_time_window

from .. import STOCK_SYNTH_TABLE, STOCK_TABLE, SYNTH_SQL, rules
from ..history import minute_bars
from ..sessions import is_trading_day
from .keys import LiveKeys
from .live import day_symbols, delete_day, read_day

PRICE_TOLERANCE = 1e-6  # prices are quoted in 0.001/0.01 CNY: anything closer is the same price
DEFAULT_THRESHOLD = 0.05
_OHLC = ("open", "high", "low", "close")


@dataclass
class HandoverReport:
    day: str
    trading_day: bool
    in_redis: int = 0
    archived: int = 0
    deleted_keys: int = 0
    refused_symbols: list[str] = field(default_factory=list)
    integrity: pd.DataFrame = field(default_factory=pd.DataFrame)
    accuracy: pd.DataFrame | None = None
    seconds: float = 0.0

    @property
    def vendor_has_day(self) -> bool:
        return self.accuracy is not None and len(self.accuracy) > 0

    @property
    def exact_share(self) -> float | None:
        """Bars matching the vendor exactly over all frames either side has."""
        if not self.vendor_has_day:
            return None
        a = self.accuracy
        return float(a["exact"].sum() / max(int(a["frames"].sum()), 1))

    @property
    def gaps(self) -> int:
        return 0 if self.integrity.empty else int(self.integrity["missing"].sum())

    def summary(self) -> str:
        if not self.trading_day:
            return f"{self.day} is not an XSHG trading day: nothing to hand over"
        text = (f"{self.day}: {self.in_redis} bars in Redis, {self.archived} archived to "
                f"{STOCK_SYNTH_TABLE}, {len(self.integrity)} symbols, {self.gaps} missing "
                f"session minutes, {self.deleted_keys} Redis keys deleted")
        if self.refused_symbols:
            shown = ", ".join(rules.shown_symbol(s) for s in self.refused_symbols[:5])
            text += (f"; {len(self.refused_symbols)} symbol(s) not archived, not "
                     f"{rules.SYMBOL_RULE}: {shown}")
        share = self.exact_share
        if share is None:
            return text + f"; the vendor ({STOCK_TABLE}) has no bars of that day"
        return text + f"; {share:.1%} of bars match the vendor exactly"


# ---------------------------------------------------------------- the checks


def _label_positions(minute: np.ndarray, profile: str) -> np.ndarray:
    labels = PROFILE_LABELS[profile]
    pos_of = np.full(1441, -1, dtype=np.int64)
    pos_of[labels] = np.arange(len(labels))
    return pos_of[minute]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def integrity(bars: Bars, profile: str = "end") -> pd.DataFrame:
    """Per symbol: bars, the session minutes from its first to its last bar (span), the
    minutes without a bar inside the span (missing) and those minutes as ranges (gaps)."""
    cols = ["symbol", "bars", "first", "last", "span", "missing", "gaps"]
    if len(bars) == 0:
        return pd.DataFrame(columns=cols)
    labels = PROFILE_LABELS[profile]
    minute = (bars.frame.view(np.int64) % 86_400) // 60
    pos = _label_positions(minute, profile)
    rows = []
    starts = np.flatnonzero(np.r_[True, bars.symbol[1:] != bars.symbol[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], len(bars)], strict=True):
        p = pos[lo:hi]
        p = p[p >= 0]
        first, last = (int(p.min()), int(p.max())) if len(p) else (0, -1)
        present = np.zeros(max(last - first + 1, 0), dtype=bool)
        present[p - first] = True
        holes = np.flatnonzero(~present) + first
        ranges = []
        if len(holes):
            breaks = np.flatnonzero(np.diff(holes) != 1)
            for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(holes) - 1], strict=True):
                lo_m, hi_m = labels[holes[a]], labels[holes[b]]
                ranges.append(_hhmm(lo_m) if a == b else f"{_hhmm(lo_m)}–{_hhmm(hi_m)}")
        rows.append({"symbol": str(bars.symbol[lo]), "bars": int(hi - lo),
                     "first": _hhmm(labels[first]) if len(p) else "",
                     "last": _hhmm(labels[last]) if len(p) else "",
                     "span": len(present), "missing": len(holes),
                     "gaps": ", ".join(ranges[:20]) + (" …" if len(ranges) > 20 else "")})
    return pd.DataFrame(rows, columns=cols)


def _frame(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame({"symbol": bars.symbol.astype(str), "frame": bars.frame,
                         **{c: getattr(bars, c) for c in Bars.COLUMNS}})


def accuracy(synth: Bars, vendor: Bars) -> pd.DataFrame:
    """Per symbol the vendor has: frames on either side, exact matches (OHLC within
    PRICE_TOLERANCE and the same volume), their share, the largest absolute OHLC and volume
    differences over common frames, frames only the vendor has (missing) and only we have
    (extra)."""
    cols = ["symbol", "vendor_bars", "synth_bars", "frames", "exact", "exact_share",
            *(f"max_abs_{c}" for c in (*_OHLC, "volume")), "missing", "extra"]
    if len(vendor) == 0:
        return pd.DataFrame(columns=cols)
    v, s = _frame(vendor), _frame(synth)
    s = s[s["symbol"].isin(set(v["symbol"]))]
    m = v.merge(s, on=["symbol", "frame"], how="outer", suffixes=("_v", "_s"), indicator=True)
    both = m["_merge"] == "both"
    diffs = {c: (m[f"{c}_s"] - m[f"{c}_v"]).abs().where(both) for c in (*_OHLC, "volume")}
    exact = both.copy()
    for c in _OHLC:
        exact &= diffs[c] <= PRICE_TOLERANCE
    exact &= diffs["volume"] < 0.5
    m = m.assign(exact=exact, missing=m["_merge"] == "left_only",
                 extra=m["_merge"] == "right_only", vb=m["_merge"] != "right_only",
                 sb=m["_merge"] != "left_only",
                 **{f"max_abs_{c}": d for c, d in diffs.items()})
    g = m.groupby("symbol", sort=True)
    out = pd.DataFrame({
        "vendor_bars": g["vb"].sum(), "synth_bars": g["sb"].sum(), "frames": g.size(),
        "exact": g["exact"].sum(),
        **{f"max_abs_{c}": g[f"max_abs_{c}"].max() for c in (*_OHLC, "volume")},
        "missing": g["missing"].sum(), "extra": g["extra"].sum(),
    }).reset_index()
    out["exact_share"] = out["exact"] / out["frames"]
    return out[cols].fillna({f"max_abs_{c}": 0.0 for c in (*_OHLC, "volume")})


def accuracy_markdown(table: pd.DataFrame, limit: int = 50) -> str:
    """The per-symbol accuracy as a markdown table, worst symbols first."""
    if table is None or table.empty:
        return "_no vendor bars for this day_"
    worst = table.sort_values(["exact_share", "symbol"]).head(limit)
    head = ("| symbol | vendor | synth | exact | share | Δopen | Δhigh | Δlow | Δclose | Δvolume "
            "| missing | extra |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in worst.itertuples(index=False):
        lines.append(f"| {r.symbol} | {r.vendor_bars} | {r.synth_bars} | {r.exact} | "
                     f"{r.exact_share:.1%} | {r.max_abs_open:.4g} | {r.max_abs_high:.4g} | "
                     f"{r.max_abs_low:.4g} | {r.max_abs_close:.4g} | {r.max_abs_volume:.6g} | "
                     f"{r.missing} | {r.extra} |")
    if len(table) > limit:
        lines.append(f"\n{len(table) - limit} more symbols not shown")
    return "\n".join(lines)


# ---------------------------------------------------------------- the hand-over


def _archive_table(bars: Bars) -> pa.Table:
    return pa.table({
        "time": pa.array(bars.frame.astype("datetime64[us]"), pa.timestamp("us")),
        "code": pa.array(bars.symbol.astype(str)),
        **{c: pa.array(getattr(bars, c)) for c in Bars.COLUMNS},
    })


def archive(postgres: PostgresResource, day: date, bars: Bars) -> int:
    """Replace `day` of stock_1min_synth with `bars` in one transaction; returns rows."""
    start = datetime.combine(day, datetime.min.time())
    with postgres.connect() as conn:
        postgres.execute_file(SYNTH_SQL, conn)
        ensure_hypertable(conn, STOCK_SYNTH_TABLE, "time")
        _, written = replace_time_window(conn, STOCK_SYNTH_TABLE, "time", start,
                                         start + timedelta(days=1), [_archive_table(bars)])
    return written


def handover(postgres: PostgresResource, client, keys: LiveKeys, day: date | str, *,
             profile: str = "end", delete: bool = True) -> HandoverReport:
    """Hand `day` over (see the module docstring); a non-trading day touches nothing."""
    clock = datetime.now(UTC)
    d = pd.Timestamp(day).date()
    text = d.isoformat()
    if not is_trading_day(d):
        return HandoverReport(text, trading_day=False)
    # A symbol no table could index (one that got into Redis before the rule, or by hand) is
    # left out and listed: it must never hold back the day of every other symbol.
    names = day_symbols(client, keys, text)
    ok = rules.symbol_ok(names)
    live = read_day(client, keys, text, [n for n, good in zip(names, ok, strict=True) if good])
    report = HandoverReport(text, trading_day=True, in_redis=len(live),
                            refused_symbols=[n for n, good in zip(names, ok, strict=True)
                                             if not good])
    if len(live):
        report.archived = archive(postgres, d, live)
    archived = minute_bars(postgres, STOCK_SYNTH_TABLE, d, d)
    report.integrity = integrity(archived, profile)
    report.accuracy = accuracy(archived, minute_bars(postgres, STOCK_TABLE, d, d))
    if (len(live) or report.refused_symbols) and delete:
        report.deleted_keys = delete_day(client, keys, text)
    report.seconds = (datetime.now(UTC) - clock).total_seconds()
    share = report.exact_share
    client.hset(keys.handover, mapping={
        "day": text, "archived": report.archived, "symbols": len(report.integrity),
        "missing_minutes": report.gaps, "deleted_keys": report.deleted_keys,
        "refused_symbols": len(report.refused_symbols),
        "exact_share": "" if share is None else f"{share:.6f}",
        "at": clock.isoformat(timespec="seconds"),
    })
    return report
