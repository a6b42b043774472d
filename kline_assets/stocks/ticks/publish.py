"""`kline ticks publish`: replay a tick file into a Redis stream, as a live feed would send it.

The file is read like `kline bars synth` reads it, put in time order (a feed's order), and
appended in chunks by a Lua script (one round trip per chunk instead of one per tick).
`rate` paces the replay in ticks per second; without it the file goes in as fast as Redis
takes it. With `shards`, each tick goes to its symbol's shard stream (`keys.shard_stream`),
in the same order within a shard, and the number of shards is recorded for the readers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import redis

from kline_assets.lib.errors import KlineError

from ..tickfiles import read_ticks
from .codec import FIELD, encode
from .keys import DEFAULT_STREAM, LiveKeys, shard_of, shard_stream
from .live import live_days

_XADD = f"""
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', '{FIELD.decode()}', ARGV[i]) end
return #ARGV
"""

CHUNK = 2000


def publish_lines(client: redis.Redis, lines: list[bytes], stream: str = DEFAULT_STREAM,
                  rate: float | None = None, chunk: int = CHUNK,
                  route: Sequence[int] | None = None) -> float:
    """Append packed tick lines to `stream` — or, with `route` (each line's shard), to the
    shard streams, each in the lines' order; returns the seconds it took."""
    script = client.register_script(_XADD)
    start = time.monotonic()
    shard = None if route is None else np.asarray(route)
    for lo in range(0, len(lines), chunk):
        part = lines[lo:lo + chunk]
        if rate:
            wait = start + lo / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if shard is None:
            script(keys=[stream], args=part)
            continue
        ids = shard[lo:lo + chunk]
        for s in np.unique(ids):
            script(keys=[shard_stream(stream, int(s))],
                   args=[part[i] for i in np.flatnonzero(ids == s)])
    return time.monotonic() - start


def register_shards(client: redis.Redis, keys: LiveKeys, n: int) -> None:
    """Record that the feed is split into `n` shards (0: one unsharded stream). Another
    split while a day is still live is refused: a symbol's bars of that day would be in two
    layouts, and the hand-over would archive both."""
    current = int(client.get(keys.shards) or 0)
    if current != n and live_days(client, keys):
        raise KlineError(
            f"the tick feed is split into {current or 'no'} shards and "
            f"{', '.join(live_days(client, keys))} still in Redis; hand those days over "
            f"(`kline ticks handover`) before publishing with "
            f"{f'--shards {n}' if n else 'no --shards'}")
    if n:
        client.set(keys.shards, n)
    else:
        client.delete(keys.shards)


def publish_file(client: redis.Redis, path: Path | str, stream: str = DEFAULT_STREAM,
                 rate: float | None = None, shards: int | None = None,
                 keys: LiveKeys | None = None) -> tuple[int, float]:
    """Replay a tick file (CSV or Parquet, as for `kline bars synth`) in time order, to one
    stream or split into `shards` by symbol; returns (ticks, seconds)."""
    ticks = read_ticks(path)
    order = np.argsort(ticks.time, kind="stable")
    ordered = ticks.take(order)
    lines = encode(ordered)
    route = None
    if shards:
        register_shards(client, keys or LiveKeys(), shards)
        # Ticks carry integer codes into `names`: each name's shard, then each tick's.
        route = np.asarray(shard_of((str(s) for s in ordered.names), shards))[ordered.symbol]
    seconds = publish_lines(client, lines, stream, rate, route=route)
    return len(lines), seconds
