"""Tick files on disk (CSV or Parquet) → ticks, and bars → files: what `kline bars synth`
and `kline ticks publish` read and write.

Other tools script these files, so their inputs are a contract: a malformed tick file stops
with one line naming the file and line, and nothing is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kline_assets.kernels.bars import Bars, SynthReport, Ticks, synthesize
from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import STOCK_TZ

from . import rules
from .csvfiles import BLOCK_BYTES, locate_bad_line
from .sessions import trading_days

REQUIRED = ("symbol", "time", "price", "volume", "amount")
OPTIONAL = ("tick_id", "high", "low")
OUTPUT = ("symbol", "period", "frame", "open", "high", "low", "close", "volume", "amount")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class TickFileError(KlineError):
    """A tick file that cannot be read as ticks; the message names the file and line."""


# ---------------------------------------------------------------- reading tick files

def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise TickFileError(f"{path}: unknown format {suffix!r} (expected .csv or .parquet)")


def _where(path: Path, fmt: str, row: int) -> str:
    """File and line (CSV, after the header line) or row (Parquet) of a 0-based data row."""
    return f"{path}:{row + 2}" if fmt == "csv" else f"{path}: row {row + 1}"


def _csv_header(path: Path) -> list[str]:
    """Column names from the first line, read as bytes: decoding the file as text would fail
    on bytes of a later line and blame line 1."""
    try:
        with path.open("rb") as fh:
            first = fh.readline(BLOCK_BYTES + 1)
    except OSError as exc:
        raise TickFileError(f"{path}:1: cannot read ({exc.strerror or exc})") from exc
    if len(first) > BLOCK_BYTES:
        raise TickFileError(f"{path}:1: a line of more than {BLOCK_BYTES:,} bytes")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TickFileError(f"{path}:1: byte {first[exc.start:exc.start + 1].hex()} at column "
                            f"{exc.start + 1} is not utf-8") from None
    return [name.strip() for name in text.rstrip("\r\n").split(",")]


def _read_csv(path: Path) -> pa.Table:
    """A tick CSV as text columns; a row with the wrong number of fields, an overlong line or
    bytes that are not UTF-8 are named by file and physical line."""
    types = {name: pa.string() for name in _csv_header(path)}
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    def read(use_threads: bool) -> pa.Table:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=use_threads, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )

    try:
        table = read(use_threads=True)
        if invalid and invalid[0].number is None:  # threaded parsing does not number rows
            invalid.clear()
            table = read(use_threads=False)
    except (pa.ArrowInvalid, OSError) as exc:
        located = locate_bad_line(path, "utf-8")
        if located is not None:
            raise TickFileError(f"{path}:{located[0]}: {located[1]}") from None
        raise TickFileError(f"{path}: not a readable CSV file "
                            f"({str(exc).strip().splitlines()[0][:200]})") from None
    if invalid:
        row = invalid[0]
        raise TickFileError(f"{path}:{row.number}: expected {row.expected_columns} fields, "
                            f"got {row.actual_columns}")
    return table


def _read_table(path: Path, fmt: str) -> pa.Table:
    if fmt == "parquet":
        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise TickFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    return _read_csv(path)


def _numbers(col: pa.ChunkedArray, name: str, path: Path, fmt: str) -> np.ndarray:
    """Float column; empty cells become NaN (rejected later as bad values), text is malformed."""
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan)
    text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & text.notna().to_numpy() & (text.astype(str).str.strip() != "")
    bad &= ~text.astype(str).str.strip().str.lower().isin(["nan", "inf", "-inf"]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TickFileError(f"{_where(path, fmt, row)}: {name} {text.iloc[row]!r} is not a number")
    return values


def _times(col: pa.ChunkedArray, path: Path, fmt: str) -> np.ndarray:
    """Naive Beijing wall clock (datetime64[us]) from naive or offset-carrying times."""
    if pa.types.is_timestamp(col.type):
        series = col.to_pandas()
        if series.dt.tz is not None:
            series = series.dt.tz_convert(STOCK_TZ).dt.tz_localize(None)
        values = series.to_numpy().astype("datetime64[us]")
        missing = np.isnat(values)
    else:
        text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object).astype(str)
        text = text.str.strip()
        offset = text.str.contains(_OFFSET).to_numpy()
        values = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
        naive = ~offset
        if naive.any():
            parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
            values[naive] = parsed.to_numpy().astype("datetime64[us]")
        if offset.any():
            parsed = pd.to_datetime(text[offset], format="ISO8601", errors="coerce", utc=True)
            local = parsed.dt.tz_convert(STOCK_TZ).dt.tz_localize(None)
            values[offset] = local.to_numpy().astype("datetime64[us]")
        missing = np.isnat(values)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        shown = col[row].as_py()
        raise TickFileError(f"{_where(path, fmt, row)}: time {shown!r} is not a date and time "
                            "(YYYY-MM-DD HH:MM:SS[.ffffff][+08:00])")
    return values


def read_ticks(path: Path | str) -> Ticks:
    """Ticks of a CSV or Parquet file with columns symbol, time, price, volume, amount and
    optionally tick_id, high, low."""
    path = Path(path)
    fmt = _file_format(path)
    table = _read_table(path, fmt)
    table = table.rename_columns([c.strip().lower() for c in table.column_names])
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        where = f"{path}:1" if fmt == "csv" else str(path)
        raise TickFileError(f"{where}: missing column(s) {', '.join(missing)} "
                            f"(needs {', '.join(REQUIRED)}; optional {', '.join(OPTIONAL)})")
    symbol = table.column("symbol").cast(pa.string())
    nulls = np.flatnonzero(symbol.is_null().to_numpy(zero_copy_only=False))
    if len(nulls):
        raise TickFileError(f"{_where(path, fmt, int(nulls[0]))}: symbol is empty")
    refused = np.flatnonzero(~rules.symbol_ok(symbol))
    if len(refused):
        row = int(refused[0])
        raise TickFileError(f"{_where(path, fmt, row)}: "
                            f"{rules.symbol_reason(symbol[row].as_py())}")
    encoded = symbol.combine_chunks().dictionary_encode()
    # Sorted names keep output ordered by symbol without sorting strings per tick.
    names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    rank = np.argsort(names.astype(str), kind="stable")
    inverse = np.empty_like(rank)
    inverse[rank] = np.arange(len(rank))
    codes = inverse[encoded.indices.to_numpy(zero_copy_only=False)]
    names = names[rank]
    time = _times(table.column("time"), path, fmt)
    cols = {c: _numbers(table.column(c), c, path, fmt)
            for c in ("price", "volume", "amount", "high", "low") if c in table.column_names}
    tick_id = None
    if "tick_id" in table.column_names:
        ids = _numbers(table.column("tick_id"), "tick_id", path, fmt)
        bad = ~np.isfinite(ids) | (ids != np.round(ids))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise TickFileError(f"{_where(path, fmt, row)}: tick_id must be an integer")
        tick_id = ids.astype(np.int64)
    return Ticks(codes, names, time, cols["price"], cols["volume"], cols["amount"], tick_id,
                 cols.get("high"), cols.get("low"))


# ---------------------------------------------------------------- writing bars

def bars_table(bars: dict[int, Bars]) -> pa.Table:
    """One table of every period, frames as ISO-8601 with +08:00."""
    parts = [b for b in bars.values() if len(b)]
    if not parts:
        return pa.table({c: pa.array([], type=pa.string() if c in ("symbol", "frame") else
                                     pa.int64() if c == "period" else pa.float64())
                         for c in OUTPUT})
    return pa.table({
        "symbol": pa.array(np.concatenate([b.symbol for b in parts]).astype(str)),
        "period": pa.array(np.concatenate([np.full(len(b), b.period) for b in parts])),
        "frame": pa.array(np.concatenate([b.iso_frames() for b in parts]).astype(str)),
        **{c: pa.array(np.concatenate([getattr(b, c) for b in parts])) for c in Bars.COLUMNS},
    })


def write_bars(table: pa.Table, out: Path, fmt: str) -> None:
    """Write through a temporary file in the same folder, so a failure leaves nothing behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(quoting_style="needed"))
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def synth_file(
    ticks_file: Path, out: Path, periods: tuple[int, ...], *, profile: str = "end",
    cumulative: bool = False, volume_unit: str = "shares", fill: bool = False,
) -> tuple[dict[int, Bars], SynthReport]:
    fmt = _file_format(ticks_file)
    ticks, _ = rules.screen_tick_values(read_ticks(ticks_file))  # as the stream: counted
    days = np.zeros(0, dtype="datetime64[D]")
    if len(ticks):
        first, last = ticks.time.min(), ticks.time.max()
        days = trading_days(str(first)[:10], str(last)[:10]).values.astype("datetime64[D]")
    bars, report = synthesize(ticks, days, periods, profile=profile, cumulative=cumulative,
                              volume_unit=volume_unit, fill=fill)
    write_bars(bars_table(bars), out, fmt)
    return bars, report
