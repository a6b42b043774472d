"""The one PostgreSQL binary COPY encoder: an Arrow table in, COPY BINARY bytes out, built with
NumPy record arrays — no per-row Python loop.

Binary COPY spares the server from parsing timestamps and floats from text, which is most of
what COPY costs (measured on 1-minute bars: 4x less server time than CSV). A row is an int16
field count, then per field an int32 length (-1 = NULL) and the bytes, big-endian: timestamps
as int64 microseconds since 2000-01-01, integers, float8, bool, text as UTF-8.

Rows that share a layout (NULL pattern, text byte lengths) are packed together into one record
array filled column by column; real tables have a handful of layouts. COPY does not care about
row order, and rows keep their order within a layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from kline_assets.resources.postgres import table_ident

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 in Unix microseconds
ROWS_PER_PART = 1 << 20  # bounds the memory of one encoded part
WRITE_CHUNK = 1 << 22

# PostgreSQL type → (big-endian NumPy dtype, the Arrow type values are cast to first).
FIXED: dict[str, tuple[str, pa.DataType]] = {
    "int2": (">i2", pa.int16()),
    "int4": (">i4", pa.int32()),
    "int8": (">i8", pa.int64()),
    "float4": (">f4", pa.float32()),
    "float8": (">f8", pa.float64()),
    "bool": ("u1", pa.uint8()),
    "timestamp": (">i8", pa.int64()),
    "timestamptz": (">i8", pa.int64()),
}
TEXT = {"text", "varchar", "bpchar", "name"}


class CopyTypeError(TypeError):
    """A column cannot be sent as the table's PostgreSQL type."""


def table_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Column name → PostgreSQL type name of `table` ('schema.table' allowed)."""
    regclass = ".".join('"' + p.replace('"', '""') + '"' for p in table.split("."))
    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (regclass,),
    ).fetchall()
    return dict(rows)


def _timestamp_values(name: str, col: pa.Array, pg_type: str) -> np.ndarray:
    if not pa.types.is_timestamp(col.type):
        raise CopyTypeError(f"column {name!r}: {col.type} cannot be sent as {pg_type}")
    aware = col.type.tz is not None
    if aware != (pg_type == "timestamptz"):
        want = "tz-aware" if pg_type == "timestamptz" else "naive (wall clock)"
        raise CopyTypeError(f"column {name!r}: {pg_type} needs {want} timestamps, got {col.type}")
    # The stored integer is UTC for tz-aware values and the wall clock for naive ones.
    micros = pc.cast(col, pa.timestamp("us", col.type.tz)).cast(pa.int64())
    return pc.fill_null(micros, 0).to_numpy(zero_copy_only=False) - PG_EPOCH_US


def _fixed_values(name: str, col: pa.Array, pg_type: str) -> np.ndarray:
    if pg_type in ("timestamp", "timestamptz"):
        return _timestamp_values(name, col, pg_type)
    arrow = FIXED[pg_type][1]
    try:
        cast = pc.cast(col, arrow)  # safe cast: an overflow raises instead of wrapping
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CopyTypeError(f"column {name!r}: {col.type} cannot be sent as {pg_type}: {exc}") \
            from exc
    filler = 0.0 if pa.types.is_floating(arrow) else 0
    return pc.fill_null(cast, filler).to_numpy(zero_copy_only=False)


def encode(data: pa.Table, types: Mapping[str, str],
           rows_per_part: int = ROWS_PER_PART) -> Iterator[memoryview]:
    """COPY BINARY bytes of `data`'s columns (in order) as the PostgreSQL `types` name them."""
    names = list(data.column_names)
    unknown = [c for c in names if types.get(c) not in FIXED and types.get(c) not in TEXT]
    if unknown:
        raise CopyTypeError(
            "no binary encoding for " + ", ".join(f"{c} ({types.get(c)})" for c in unknown)
        )
    n = data.num_rows
    cols = {c: data[c].combine_chunks() for c in names}
    texts = {c: pc.cast(pc.fill_null(cols[c], ""), pa.binary()) for c in names
             if types[c] in TEXT}
    values = {c: _fixed_values(c, cols[c], types[c]) for c in names if c not in texts}
    layout = np.zeros((n, 1 + len(texts)), dtype=np.int64)
    for i, c in enumerate(names):
        if cols[c].null_count:
            layout[:, 0] |= (~pc.is_valid(cols[c]).to_numpy(zero_copy_only=False)).astype(
                np.int64) << i
    for j, c in enumerate(texts, start=1):
        layout[:, j] = pc.binary_length(texts[c]).to_numpy(zero_copy_only=False)
    yield memoryview(HEADER)
    if n and (layout == layout[0]).all():
        # One layout (the usual batch: no NULL pattern changes, codes of one width): no
        # grouping, whose row-wise sort costs more than packing the rows.
        for lo in range(0, n, rows_per_part):
            yield _pack(names, types, values, texts, layout[0],
                        np.arange(lo, min(n, lo + rows_per_part)))
    elif n:
        keys, inverse = np.unique(layout, axis=0, return_inverse=True)
        order = np.argsort(inverse.ravel(), kind="stable")
        bounds = np.searchsorted(inverse.ravel()[order], np.arange(len(keys) + 1))
        for k, key in enumerate(keys):
            group = order[bounds[k]:bounds[k + 1]]
            for lo in range(0, len(group), rows_per_part):
                yield _pack(names, types, values, texts, key, group[lo:lo + rows_per_part])
    yield memoryview(TRAILER)


def _pack(names: Sequence[str], types: Mapping[str, str], values: dict[str, np.ndarray],
          texts: dict[str, pa.Array], key: np.ndarray, rows: np.ndarray) -> memoryview:
    null = {c: bool((int(key[0]) >> i) & 1) for i, c in enumerate(names)}
    width = {c: int(key[j]) for j, c in enumerate(texts, start=1)}
    spec: list[tuple] = [("count", ">i2")]
    for i, c in enumerate(names):
        spec.append((f"l{i}", ">i4"))
        if null[c]:
            continue
        if c in texts:
            if width[c]:
                spec.append((f"v{i}", "u1", (width[c],)))
        else:
            spec.append((f"v{i}", FIXED[types[c]][0]))
    record = np.empty(len(rows), dtype=np.dtype(spec))
    record["count"] = len(names)
    for i, c in enumerate(names):
        if null[c]:
            record[f"l{i}"] = -1
        elif c in texts:
            record[f"l{i}"] = width[c]
            if width[c]:
                taken = pc.take(texts[c], pa.array(rows))
                raw = np.frombuffer(taken.buffers()[2], dtype=np.uint8)
                record[f"v{i}"] = raw[: len(rows) * width[c]].reshape(len(rows), width[c])
        else:
            record[f"l{i}"] = np.dtype(FIXED[types[c]][0]).itemsize
            record[f"v{i}"] = values[c][rows]
    return memoryview(record).cast("B")


def copy_table(conn: psycopg.Connection, table: str, data: pa.Table,
               types: Mapping[str, str] | None = None) -> int:
    """COPY `data` into `table` (binary format) on the caller's transaction; returns rows.

    `types` defaults to the table's own column types, read from the catalogue.
    """
    if data.num_rows == 0:
        return 0
    types = types or table_types(conn, table)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
        table_ident(table),
        sql.SQL(", ").join(map(sql.Identifier, data.column_names)),
    )
    with conn.cursor().copy(stmt) as copy:
        for part in encode(data, types):
            for start in range(0, len(part), WRITE_CHUNK):
                copy.write(part[start:start + WRITE_CHUNK])
    return data.num_rows
