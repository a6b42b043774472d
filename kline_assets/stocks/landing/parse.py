"""One landing file (CSV or Parquet) → the landing columns, typed, or an error naming the file
and the line (CSV) or row (Parquet).

Everything is vectorised with pyarrow. A file is all or nothing: any cell that cannot be read
as its column — a number that is not finite, a Parquet column of the wrong type, bytes that
are not in the configured encoding — fails the file, because a silently coerced bar is worse
than a missing one.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import STOCK_TZ

from .. import rules
from ..csvfiles import BLOCK_BYTES, locate_bad_line
from .discover import LandingFile

COLUMNS = ("time", "code", "name", "open", "high", "low", "close", "volume", "amount")
NUMERIC = ("open", "high", "low", "close", "volume", "amount")


class LandingFileError(KlineError):
    """A landing file that cannot be parsed; names the file and the line (or Parquet row)."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path, self.where, self.reason = path, where, reason


@dataclass(frozen=True)
class ReadOptions:
    """How vendor exports are read. `column_map` maps a vendor header to a landing column."""

    column_map: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"
    time_format: str | None = None  # strptime format; None: ISO 8601 (offsets allowed)


def _resolve_names(
    f: LandingFile, available: Sequence[str], options: ReadOptions
) -> dict[str, str]:
    """landing column → the file's column: a `column_map` source if the file has it, else the
    landing name itself (so one map serves vendor files and already-canonical files alike)."""
    unknown = set(options.column_map.values()) - set(COLUMNS)
    if unknown:
        raise KlineError(
            f"column_map targets {sorted(unknown)} are not landing columns {list(COLUMNS)}"
        )
    present = set(available)
    names, missing = {}, []
    for col in COLUMNS:
        sources = [src for src, dst in options.column_map.items() if dst == col and src in present]
        if sources:
            names[col] = sources[0]
        elif col in present:
            names[col] = col
        else:
            missing.append(col)
    if missing:
        where = "line 1" if f.is_csv else "schema"
        raise LandingFileError(
            f.rel, where, f"missing column(s) {missing} (has {sorted(present)}); "
            "map vendor headers with column_map"
        )
    return names


# --------------------------------------------------------------------------- CSV


def _csv_header(f: LandingFile, options: ReadOptions) -> list[str]:
    with pa.input_stream(str(f.path), compression="detect") as stream:
        first = stream.read(1 << 16).split(b"\n", 1)[0]
    text = first.decode(options.encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
    return next(csv.reader([text]), [])


def _read_csv(f: LandingFile, options: ReadOptions) -> pa.Table:
    names = _resolve_names(f, _csv_header(f, options), options)
    invalid: list[tuple[int | None, str, int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    def read(use_threads: bool) -> pa.Table:
        return pacsv.read_csv(
            f.path,
            read_options=pacsv.ReadOptions(
                encoding=options.encoding, use_threads=use_threads, block_size=BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(names.values()),
                column_types={src: pa.string() for src in names.values()},
                strings_can_be_null=True,
            ),
        )

    try:
        table = read(use_threads=True)
        if invalid and invalid[0][0] is None:  # threaded parsing does not number rows
            invalid.clear()
            read(use_threads=False)
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        located = locate_bad_line(f.path, options.encoding)
        if located is not None:
            line, reason = located
            if reason.startswith("byte "):
                reason += "; set `encoding` (e.g. gbk) to the file's encoding"
            raise LandingFileError(f.rel, f"line {line}", reason) from exc
        raise LandingFileError(f.rel, "file", str(exc).splitlines()[0]) from exc
    if invalid:
        number, text, expected, actual = invalid[0]
        raise LandingFileError(
            f.rel, f"line {number}", f"expected {expected} fields, got {actual}: {text[:120]!r}"
        )
    return pa.table({col: table[src] for col, src in names.items()})


# --------------------------------------------------------------------------- Parquet


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


EXPECTED_TYPES = {
    "time": ("a timestamp, a date or a string", lambda t: (
        pa.types.is_timestamp(t) or pa.types.is_date(t) or _is_text(t))),
    "code": ("a string", _is_text),
    "name": ("a string", lambda t: _is_text(t) or pa.types.is_null(t)),
    **{c: ("a number (integer, floating point or decimal)",
           lambda t: _is_number(t) or pa.types.is_null(t)) for c in NUMERIC},
}


def check_schema(f: LandingFile, schema: pa.Schema, names: Mapping[str, str]) -> None:
    """Refuse a Parquet file whose columns have the wrong type instead of casting them: an
    int64 code has lost its exchange suffix and leading zeros, a bool volume is no volume."""
    problems = []
    for col, src in names.items():
        actual = schema.field(src).type
        value_type = actual.value_type if pa.types.is_dictionary(actual) else actual
        expected, accepts = EXPECTED_TYPES[col]
        if not accepts(value_type):
            label = col if src == col else f"{col} (file column {src!r})"
            problems.append(f"column {label} is {actual}, expected {expected}")
    if problems:
        raise LandingFileError(f.rel, "schema", "; ".join(problems))


def _read_parquet(f: LandingFile, options: ReadOptions) -> pa.Table:
    try:
        schema = pq.read_schema(f.path)
        names = _resolve_names(f, schema.names, options)
        check_schema(f, schema, names)
        table = pq.read_table(f.path, columns=list(set(names.values())))
    except (pa.ArrowInvalid, OSError) as exc:
        raise LandingFileError(f.rel, "file", str(exc).splitlines()[0]) from exc
    columns = {}
    for col, src in names.items():
        data = table[src]
        if pa.types.is_dictionary(data.type):
            data = pc.cast(data, data.type.value_type)
        columns[col] = data
    return pa.table(columns)


# --------------------------------------------------------------------------- coercion


def _first(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def _to_wall_clock(f: LandingFile, col: pa.ChunkedArray, options: ReadOptions) -> pa.Array:
    """Any time column → naive Beijing wall-clock timestamp[us]."""
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:  # an instant: show it on the Beijing clock
            col = pc.local_timestamp(pc.cast(col, pa.timestamp("us", STOCK_TZ)))
        return pc.cast(col, pa.timestamp("us")).combine_chunks()
    if pa.types.is_date(col.type):
        return pc.cast(pc.cast(col, pa.timestamp("s")), pa.timestamp("us")).combine_chunks()
    text = pc.cast(col, pa.string()).combine_chunks()
    if options.time_format is None:
        try:
            return pc.cast(text, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # offsets or a format arrow does not know: let pandas try ISO 8601
    series = pd.Series(text.to_pandas(), dtype=object)
    try:
        parsed = pd.to_datetime(series, format=options.time_format or "ISO8601", errors="coerce")
    except (ValueError, TypeError):  # mixed offsets
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(STOCK_TZ).dt.tz_localize(None)
    result = pa.array(parsed.astype("datetime64[us]"), type=pa.timestamp("us"))
    bad = pc.and_(pc.is_valid(text), pc.is_null(result))
    if pc.any(bad).as_py():
        i = _first(bad)
        fmt = options.time_format or "ISO 8601"
        raise LandingFileError(f.rel, f.where(i), f"time {text[i].as_py()!r} is not {fmt}")
    return result


_NAN_SPELLINGS = pa.array(["nan", "+nan", "-nan"])


def _to_float(f: LandingFile, name: str, col: pa.ChunkedArray) -> pa.Array:
    """Numbers as finite float64; NaN is read as missing (pandas' meaning of an empty cell),
    ±inf and overflowing text such as 1e400 fail the file."""
    source = pc.utf8_trim_whitespace(col) if _is_text(col.type) else col
    try:
        values = pc.cast(source, pa.float64())
    except pa.ArrowInvalid:
        if not _is_text(col.type):
            raise
        coerced = pd.to_numeric(source.to_pandas(), errors="coerce")
        values = pa.array(coerced, type=pa.float64(), from_pandas=False)
        unreadable = pc.and_(pc.is_valid(source), pc.is_nan(values))
        spelled_nan = pc.is_in(pc.utf8_lower(source), value_set=_NAN_SPELLINGS)
        unreadable = pc.and_(unreadable, pc.invert(spelled_nan))
        if pc.any(unreadable).as_py():
            i = _first(unreadable)
            raise LandingFileError(
                f.rel, f.where(i), f"{name} {source[i].as_py()!r} is not a number"
            ) from None
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    infinite = pc.fill_null(pc.is_inf(values), False)
    if pc.any(infinite).as_py():
        i = _first(infinite)
        raise LandingFileError(
            f.rel, f.where(i), f"{name} {source[i].as_py()!r} is not a finite number"
        )
    beyond = np.flatnonzero(rules.beyond_bound(
        values.to_numpy(zero_copy_only=False), name))  # NaN compares False: missing passes
    if len(beyond):
        i = int(beyond[0])
        raise LandingFileError(
            f.rel, f.where(i), f"{name} {source[i].as_py()!r} is beyond ±{rules.BOUNDS[name]:g}"
            " (no A-share bar comes near it)"
        )
    return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)


def _to_text(col: pa.ChunkedArray) -> pa.Array:
    text = pc.cast(col, pa.string()).combine_chunks()
    trimmed = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def read_file(f: LandingFile, options: ReadOptions) -> pa.Table:
    """Parse one file into the landing columns, typed; raises LandingFileError on bad input."""
    raw = _read_csv(f, options) if f.is_csv else _read_parquet(f, options)
    times = _to_wall_clock(f, raw["time"], options)
    code = _to_text(raw["code"])
    for label, arr in (("time", times), ("code", code)):
        missing = pc.is_null(arr)
        if pc.any(missing).as_py():
            raise LandingFileError(f.rel, f.where(_first(missing)), f"{label} is empty")
    refused = np.flatnonzero(~rules.symbol_ok(code))
    if len(refused):
        i = int(refused[0])
        raise LandingFileError(f.rel, f.where(i), f"code: {rules.symbol_reason(code[i].as_py())}")
    columns = {"time": times, "code": code, "name": _to_text(raw["name"])}
    columns |= {c: _to_float(f, c, raw[c]) for c in NUMERIC}
    return pa.table(columns)
