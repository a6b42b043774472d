"""`kline ticks publish`: replay a tick file into a Redis stream, as a live feed would send it.

The file is read like `kline bars synth` reads it, put in time order (a feed's order), and
appended in chunks by a Lua script (one round trip per chunk instead of one per tick).
`rate` paces the replay in ticks per second; without it the file goes in as fast as Redis
takes it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import redis

from ..tickfiles import read_ticks
from .codec import FIELD, encode
from .keys import DEFAULT_STREAM

_XADD = f"""
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', '{FIELD.decode()}', ARGV[i]) end
return #ARGV
"""

CHUNK = 2000


def publish_lines(client: redis.Redis, lines: list[bytes], stream: str = DEFAULT_STREAM,
                  rate: float | None = None, chunk: int = CHUNK) -> float:
    """Append packed tick lines to `stream`; returns the seconds it took."""
    script = client.register_script(_XADD)
    start = time.monotonic()
    for lo in range(0, len(lines), chunk):
        part = lines[lo:lo + chunk]
        if rate:
            wait = start + lo / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        script(keys=[stream], args=part)
    return time.monotonic() - start


def publish_file(client: redis.Redis, path: Path | str, stream: str = DEFAULT_STREAM,
                 rate: float | None = None) -> tuple[int, float]:
    """Replay a tick file (CSV or Parquet, as for `kline bars synth`) in time order; returns
    (ticks, seconds)."""
    ticks = read_ticks(path)
    order = np.argsort(ticks.time, kind="stable")
    lines = encode(ticks.take(order))
    seconds = publish_lines(client, lines, stream, rate)
    return len(lines), seconds
