"""Ticks on the stream: one entry per tick, one field `t` holding a CSV line

    symbol,time_us,price,volume,amount,tick_id,high,low

time_us is the Beijing wall clock as microseconds since 1970-01-01 (naive, like the kernel's
datetime64[us]); tick_id, high and low may be empty. One packed field keeps both sides cheap:
a batch of entries is joined and parsed by Arrow's CSV reader in one call instead of
converting fields one by one. Other tools may instead send the fields by name (symbol, time as
ISO-8601 or µs, price, volume, amount, optional tick_id, high, low); those go through the slow
per-entry path. An entry that parses neither way is malformed: it is dead-lettered, never
retried, never blocking the stream.

Today's bars in Redis have one value format too, written by the consumer and read by the
merged query and the hand-over: a hash per symbol and day, field `HH:MM` (the bar's end
label) → `open,high,low,close,volume,amount` (floats as Python's repr, which round-trips);
and the consumer's carried state per symbol (cursor, cumulative volume/amount, day high/low).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from kline_assets.kernels.bars import Bars, SymbolState, Ticks
from kline_assets.lib.settings import STOCK_TZ

from .. import rules

FIELD = b"t"
COLUMNS = ("symbol", "time_us", "price", "volume", "amount", "tick_id", "high", "low")
_TYPES = {"symbol": pa.string(), "time_us": pa.int64(), "price": pa.float64(),
          "volume": pa.float64(), "amount": pa.float64(), "tick_id": pa.int64(),
          "high": pa.float64(), "low": pa.float64()}
_READ = pacsv.ReadOptions(column_names=list(COLUMNS))
_PARSE = pacsv.ParseOptions(quote_char=False, newlines_in_values=False)  # a quote is data
_CONVERT = pacsv.ConvertOptions(column_types=_TYPES, strings_can_be_null=False,
                                null_values=[""], quoted_strings_can_be_null=False)


def encode(ticks: Ticks) -> list[bytes]:
    """One packed line per tick, in the ticks' order."""
    def opt(a: np.ndarray | None, typ: pa.DataType) -> pa.Array:
        return pa.nulls(len(ticks), typ) if a is None else pa.array(a, typ)

    table = pa.table({
        "symbol": pa.array(ticks.names[ticks.symbol].astype(str)),
        "time_us": pa.array(ticks.time.astype("datetime64[us]").view(np.int64)),
        "price": pa.array(ticks.price), "volume": pa.array(ticks.volume),
        "amount": pa.array(ticks.amount),
        "tick_id": opt(ticks.tick_id, pa.int64()), "high": opt(ticks.high, pa.float64()),
        "low": opt(ticks.low, pa.float64()),
    })
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False,
                                                   quoting_style="none"))
    return buf.getvalue().splitlines()


@dataclass
class Decoded:
    """A batch of entries as ticks; `entry[i]` is the batch position of tick i, and `bad`
    maps batch positions of malformed entries to the reason."""

    ticks: Ticks
    entry: np.ndarray
    bad: dict[int, str]


def _named_line(fields: dict[bytes, bytes]) -> bytes:
    """A packed line from an entry with named fields; ValueError when it is not a tick."""
    get = {k.decode(errors="replace").strip().lower(): v.decode(errors="replace").strip()
           for k, v in fields.items()}
    missing = [c for c in ("symbol", "time", "price", "volume", "amount") if c not in get]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    text = get["time"]
    if text.lstrip("-").isdigit():
        us = int(text)
    else:
        ts = pd.Timestamp(text)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(STOCK_TZ).tz_localize(None)
        us = ts.value // 1000
    values = [get["symbol"], str(us)] + [
        repr(float(get[c])) for c in ("price", "volume", "amount")]
    values.append(str(int(get["tick_id"])) if get.get("tick_id") else "")
    values += [repr(float(get[c])) if get.get(c) else "" for c in ("high", "low")]
    if any("," in v or "\n" in v for v in values) or not values[0]:
        raise ValueError("symbol must be non-empty, without commas")
    return ",".join(values).encode()


def _parse(lines: list[bytes]) -> pa.Table:
    return pacsv.read_csv(io.BytesIO(b"\n".join(lines)), read_options=_READ,
                          parse_options=_PARSE, convert_options=_CONVERT)


def _check_line(line: bytes) -> str | None:
    """Why one line is not a tick (None when it is one)."""
    if not line:
        return "empty entry"
    try:
        table = _parse([line])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return str(exc).splitlines()[0][:200]
    if table.num_rows != 1:
        return "not one line"
    if table.column("symbol").null_count or table.column("time_us").null_count:
        return "symbol or time missing"
    if not table.column("symbol")[0].as_py():
        return "symbol is empty"
    return None


def _refused(table: pa.Table, names: np.ndarray, codes: np.ndarray) -> dict[int, str]:
    """Rows of a parsed batch that break a rule of `kline_assets.stocks.rules`, with the
    reason: every field is checked here, before the calendar, the kernel or Redis sees it, so
    a value they cannot hold is parked instead of stopping the consumer. The checks are
    vectorised; only refused rows are visited one by one, to word their reason."""
    unusable = ~rules.symbol_ok(names)  # per distinct symbol, then per row
    us = table.column("time_us").to_numpy()
    checks = [
        (unusable[codes], lambda row: rules.symbol_reason(names[codes[row]])),
        (rules.time_outside(us), lambda row: rules.time_reason(int(us[row]))),
    ]
    refused: dict[int, str] = {}
    for mask, reason in reversed(checks):  # the first rule broken is the one reported
        for row in np.flatnonzero(mask).tolist():
            refused[row] = reason(row)
    return refused


def as_dict(fields: dict[bytes, bytes] | list[bytes]) -> dict[bytes, bytes]:
    """An entry's fields as a dict, from redis-py's dict or Redis' flat [field, value, …]."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=False))


def decode(entries: list) -> Decoded:
    """Ticks of a batch of stream entries, (id, fields) with fields a dict or Redis' flat
    [field, value, …] list; the fast path parses the whole batch at once and
    falls back to entry-by-entry checks only when something in it is malformed."""
    bad: dict[int, str] = {}
    lines: list[bytes] = []
    for i, (_, fields) in enumerate(entries):
        if type(fields) is list and len(fields) == 2 and fields[0] == FIELD:
            lines.append(fields[1])  # the packed form, as Redis sends it
            continue
        fields = as_dict(fields)
        line = fields.get(FIELD)
        if line is None:
            try:
                line = _named_line(fields)
            except (ValueError, TypeError, OverflowError) as exc:
                bad[i] = f"not a tick: {exc}"
                continue
        lines.append(line)
    good = [i for i in range(len(entries)) if i not in bad]
    table = None
    if lines:
        try:
            table = _parse(lines)
            if (table.num_rows != len(lines) or table.column("symbol").null_count
                    or table.column("time_us").null_count):
                table = None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is None:
            ok_lines, ok_pos = [], []
            for pos, line in zip(good, lines, strict=True):
                reason = _check_line(line)
                if reason is None:
                    ok_lines.append(line)
                    ok_pos.append(pos)
                else:
                    bad[pos] = reason
            good, lines = ok_pos, ok_lines
            table = _parse(lines) if lines else None
    if table is None or table.num_rows == 0:
        return Decoded(Ticks(np.zeros(0, np.int64), np.zeros(0, object),
                             np.zeros(0, "datetime64[us]"), np.zeros(0), np.zeros(0),
                             np.zeros(0)), np.zeros(0, np.int64), bad)
    encoded = table.column("symbol").combine_chunks().dictionary_encode()
    names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    refused = _refused(table, names, codes)
    if refused:
        at = np.asarray(good, dtype=np.int64)
        for row, reason in refused.items():
            bad[int(at[row])] = reason
        keep = np.setdiff1d(np.arange(table.num_rows), np.fromiter(refused, np.int64))
        table, codes, good = table.take(keep), codes[keep], list(at[keep])

    def col(name: str) -> np.ndarray | None:
        c = table.column(name)
        if name in ("tick_id", "high", "low") and c.null_count == len(c):
            return None
        if name == "tick_id":
            if c.null_count:
                return None
            return c.to_numpy().astype(np.int64)
        return c.to_numpy(zero_copy_only=False).astype(np.float64)

    ticks = Ticks(codes, names, table.column("time_us").to_numpy().view("datetime64[us]"),
                  col("price"), col("volume"), col("amount"), col("tick_id"), col("high"),
                  col("low"))  # type: ignore[arg-type]
    return Decoded(ticks, np.asarray(good, dtype=np.int64), bad)


# ---------------------------------------------------------------- bar values in Redis

BAR_LABELS = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))
"""The hash field of each minute of the day: its `HH:MM`."""


def encode_bars(bars: Bars) -> list[tuple[str, str]]:
    """(field, value) of each 1-minute bar, in the bars' order."""
    minutes = ((bars.frame.view(np.int64) % 86_400) // 60).tolist()
    labels = BAR_LABELS
    rows = zip(minutes, bars.open.tolist(), bars.high.tolist(), bars.low.tolist(),
               bars.close.tolist(), bars.volume.tolist(), bars.amount.tolist(), strict=True)
    return [(labels[m], f"{o!r},{h!r},{lo!r},{c!r},{v!r},{a!r}")
            for m, o, h, lo, c, v, a in rows]


def decode_bars(day: str, hashes: list[tuple[str, dict[bytes, bytes]]]) -> Bars:
    """1-minute bars of `day` from (symbol, its bars hash) pairs, sorted by (symbol, frame)."""
    sym: list[str] = []
    minutes: list[int] = []
    values: list[bytes] = []
    for s, h in hashes:
        for label, packed in h.items():
            sym.append(s)
            hh, mm = label.split(b":")
            minutes.append(int(hh) * 60 + int(mm))
            values.append(packed)
    if not sym:
        return Bars.empty(1)
    cols = np.array([v.split(b",") for v in values], dtype=np.float64).reshape(-1, 6)
    base = np.datetime64(day, "m").astype(np.int64)
    frame = ((base + np.asarray(minutes, dtype=np.int64)) * 60).astype("datetime64[s]")
    symbol = np.asarray(sym, dtype=object)
    order = np.lexsort((frame, symbol.astype(str)))
    return Bars(1, symbol, frame, *(cols[:, j] for j in range(6))).take(order)


# ---------------------------------------------------------------- carried state in Redis

_NO_STATE = ",".join(repr(v) for v in SymbolState.NONE).encode()


def encode_state(symbols: list[str], s: SymbolState) -> str:
    """`symbol<TAB>cursor and carried values` lines, one per symbol, for the apply script."""
    cols = zip(symbols, s.last_us.tolist(), s.last_tid.tolist(), s.day.tolist(),
               s.cum_volume.tolist(), s.cum_amount.tolist(), s.day_high.tolist(),
               s.day_low.tolist(), strict=True)
    return "".join(f"{sym}\t{a},{b},{c},{d!r},{e!r},{f!r},{g!r}\n"
                   for sym, a, b, c, d, e, f, g in cols)


def decode_state(texts: list[bytes | None]) -> SymbolState:
    """Parse the packed states (None = never seen) in a few array operations."""
    if not texts:
        return SymbolState.empty(0)
    parts = np.array(b",".join(_NO_STATE if t is None else t for t in texts).split(b","))
    parts = parts.reshape(len(texts), len(SymbolState.FIELDS))
    ints, floats = parts[:, :3].astype(np.int64), parts[:, 3:].astype(np.float64)
    return SymbolState(ints[:, 0].copy(), ints[:, 1].copy(), ints[:, 2].copy(),
                       *(floats[:, j].copy() for j in range(4)))
