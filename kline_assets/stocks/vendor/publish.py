"""`kline bars publish-vendor`: replay a file of vendor bars into the stream, as the users'
subscriber would send them — for demos, tests and backfills.

The file is a landing file (CSV or Parquet: time, code, name, open, high, low, close, volume,
amount; read and checked by the landing reader, so a bad cell stops with the file and line)
plus an optional `period` column (minutes, default 1). Bars go out in time order (a feed's
order), one entry each, appended in chunks by a Lua script (one round trip per chunk);
`rate` paces the replay in bars per second.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import redis

from kline_assets.kernels.bars import PERIODS

from ..landing import LandingFile, LandingFileError, ReadOptions, read_file
from .codec import PUBLISH, encode

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


def publish_lines(client: redis.Redis, stream: str, lines: list[bytes],
                  rate: float | None = None, chunk: int = CHUNK) -> float:
    """Append encoded bars to `stream`; returns the seconds it took."""
    script = client.register_script(PUBLISH)
    start = time.monotonic()
    for lo in range(0, len(lines), chunk):
        if rate:
            wait = start + lo / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        script(keys=[stream], args=lines[lo:lo + chunk])
    return time.monotonic() - start


def publish_file(client: redis.Redis, path: Path | str, stream: str,
                 rate: float | None = None) -> tuple[int, float]:
    """Replay a vendor bar file into `stream`; returns (bars, seconds)."""
    lines = encode(read_vendor_file(path))
    return len(lines), publish_lines(client, stream, lines, rate)
