"""`kline bars publish-vendor`: replay a file of vendor bars into the stream, as the users'
subscriber would send them — for demos, tests and backfills.

The file is a landing file (CSV or Parquet: time, code, name, open, high, low, close, volume,
amount; read and checked by the landing reader, so a bad cell stops with the file and line)
plus an optional `period` column (minutes, default 1). Bars go out in time order (a feed's
order), one entry each, appended in chunks, one round trip per chunk; `rate` paces the
replay in bars per second.

A chunk goes as plain XADD commands whose bytes are built column by column in Arrow (the
chunk's lines split at once, in C): Redis spends less than half the time on them that it
spends running a Lua script that splits each line and calls XADD — Redis time that a
consumer on the same server waits for. Lines of different shapes go through the script
(`codec.PUBLISH`), which adds the same entries.
"""

from __future__ import annotations

import time
from pathlib import Path

import hiredis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import redis

from kline_assets.kernels.bars import PERIODS

from ..landing import LandingFile, LandingFileError, ReadOptions, read_file
from .codec import FIELDS, OPTIONAL, PUBLISH, encode
from .reader import raw_connection

CHUNK = 2000


def _periods(f: LandingFile, rows: int) -> np.ndarray:
    """The file's `period` column (1 where the file has none); a value that is not one of
    the periods names its line."""
    if f.is_csv:
        with pa.input_stream(str(f.path), compression="detect") as s:
            first = s.read(1 << 16).split(b"\n", 1)[0].decode(errors="replace")
        if "period" not in [c.strip().lstrip("\ufeff") for c in first.split(",")]:
            return np.ones(rows, dtype=np.int64)
        col = pacsv.read_csv(f.path, convert_options=pacsv.ConvertOptions(
            include_columns=["period"], column_types={"period": pa.string()})).column("period")
    else:
        if "period" not in pq.read_schema(f.path).names:
            return np.ones(rows, dtype=np.int64)
        col = pc.cast(pq.read_table(f.path, columns=["period"]).column("period"), pa.string())
    text = pc.utf8_trim_whitespace(pc.fill_null(col.combine_chunks(), ""))
    try:
        values = pc.cast(pc.if_else(pc.equal(text, ""), "1", text), pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        values = np.array([float(t) if _is_number(t) else np.nan for t in text.to_pylist()])
    bad = np.flatnonzero(~np.isin(values, PERIODS))
    if len(bad):
        i = int(bad[0])
        raise LandingFileError(f.rel, f.where(i), f"period {text[i].as_py()!r} is not one of "
                               f"{', '.join(map(str, PERIODS))}")
    return values.astype(np.int64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_vendor_file(path: Path | str) -> pa.Table:
    """A vendor bar file as the stream's columns (symbol, period, frame, OHLCV, name), in time
    order."""
    path = Path(path)
    f = LandingFile(path, path.name, None)
    bars = read_file(f, ReadOptions())
    period = _periods(f, bars.num_rows)
    table = pa.table({
        "symbol": bars["code"], "period": pa.array(period), "frame": bars["time"],
        **{c: bars[c] for c in ("open", "high", "low", "close", "volume", "amount")},
        "name": bars["name"],
    })
    order = np.lexsort((period, table["frame"].combine_chunks().to_numpy(
        zero_copy_only=False).astype("datetime64[us]").view(np.int64)))
    return table.take(pa.array(order))


def _columns(lines: list[bytes]) -> list[pa.Array | None] | None:
    """The lines' tab-separated fields (FIELDS, name) as columns, None for a field no line
    has; None when the lines differ in shape (or hold a carriage return)."""
    names = [f"f{i}" for i in range(len(FIELDS) + len(OPTIONAL))]
    text = b"\n".join(lines) + b"\n"
    try:
        table = pacsv.read_csv(
            pa.py_buffer(text),
            pacsv.ReadOptions(autogenerate_column_names=True, block_size=len(text) + 1),
            pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False,
                               escape_char=False, newlines_in_values=False,
                               ignore_empty_lines=False),
            pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()),
                                 include_columns=names, include_missing_columns=True,
                                 check_utf8=False, strings_can_be_null=False,
                                 quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(lines):
        return None
    return [None if col.null_count == len(col) else col.combine_chunks()
            for col in table.columns]


def _commands(stream: str, columns: list[pa.Array | None]) -> memoryview:
    """XADD stream * field value … of each row as RESP bytes; an empty name is left out, as
    the script does."""
    def bulk(value: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)

    pieces, pairs = [], 0
    rows = next(len(c) for c in columns if c is not None)
    for name, col in zip((*FIELDS, *OPTIONAL), columns, strict=True):
        if col is None:
            continue
        size = pc.cast(pc.cast(pc.binary_length(col), pa.string()), pa.binary())
        piece = pc.binary_join_element_wise(bulk(name.encode()), b"$", size, b"\r\n", col,
                                            b"\r\n", b"")
        if name in OPTIONAL:
            named = pc.not_equal(col, b"")
            pieces.append(pc.if_else(named, piece, b""))
        else:
            pairs += 1
            pieces.append(piece)
    head = bulk(b"XADD") + bulk(stream.encode()) + bulk(b"*")
    first = pa.array([b"*%d\r\n%s" % (3 + 2 * pairs, head)] * rows, pa.binary())
    if len(pieces) > pairs:
        first = pc.if_else(named, b"*%d\r\n%s" % (5 + 2 * pairs, head), first)
    joined = pc.binary_join_element_wise(first, *pieces, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    return memoryview(joined.buffers()[2])[offsets[joined.offset]:
                                            offsets[joined.offset + len(joined)]]


def _replies(conn: redis.Connection, count: int) -> None:
    """Read `count` replies; the first error, once all are read."""
    reader = hiredis.Reader()
    error = None
    while count:
        reply = reader.gets()
        if reply is False:
            data = conn._sock.recv(1 << 16)
            if not data:
                raise redis.ConnectionError("Connection closed by server.")
            reader.feed(data)
            continue
        count -= 1
        if isinstance(reply, hiredis.ReplyError) and error is None:
            error = redis.ResponseError(str(reply))
    if error is not None:
        raise error


def publish_lines(client: redis.Redis, stream: str, lines: list[bytes],
                  rate: float | None = None, chunk: int = CHUNK) -> float:
    """Append encoded bars to `stream`; returns the seconds it took."""
    script = client.register_script(PUBLISH)
    conn = raw_connection(client)
    start = time.monotonic()
    try:
        for lo in range(0, len(lines), chunk):
            if rate:
                wait = start + lo / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            part = lines[lo:lo + chunk]
            columns = _columns(part)
            if columns is None:
                script(keys=[stream], args=part)
                continue
            try:
                conn.send_packed_command([_commands(stream, columns)])
                _replies(conn, len(part))
            except OSError as exc:
                conn.disconnect()
                raise redis.ConnectionError(f"Error writing the vendor stream: {exc}") from exc
    finally:
        conn.disconnect()
    return time.monotonic() - start


def publish_file(client: redis.Redis, path: Path | str, stream: str,
                 rate: float | None = None) -> tuple[int, float]:
    """Replay a vendor bar file into `stream`; returns (bars, seconds)."""
    lines = encode(read_vendor_file(path))
    return len(lines), publish_lines(client, stream, lines, rate)
