"""Where today's bars live in Redis: the one definition of the key layout.

Everything of a trading day hangs under `{prefix}:live:{YYYY-MM-DD}`, so the hand-over can
delete exactly that day once it is archived:

    {prefix}:live:days                   set of days with live bars (not yet handed over)
    {prefix}:live:closed                 hash day → when it was handed over; the consumer
                                         dead-letters late ticks of those days instead of
                                         starting the day afresh
    {prefix}:live:{day}:symbols          set of symbols with bars that day
    {prefix}:live:{day}:bars:{symbol}    hash HH:MM (the bar's end label) → "o,h,l,c,v,a"
    {prefix}:live:{day}:state            hash symbol → the consumer's cursor and carried
                                         cumulative volume/amount, day high/low; field
                                         "__v" counts writes (optimistic concurrency)
    {prefix}:live:{day}:report           hash of tick counters: received, kept, duplicates,
                                         rejected:<reason>, resets
    {prefix}:ticks:status:{stream}:{group}  hash the consumers update: throughput, lag, pending
    {prefix}:ticks:handover              hash of the last hand-over and its accuracy
    {stream}:dead                        dead-letter stream of malformed entries

Days are the ticks' own trading days, never the wall clock's, so replaying a past day builds
the same keys that day's live feed would have.

**Shards.** `kline ticks publish --shards N` routes each symbol to the stream `{stream}:{s}`
with s = crc32(symbol) mod N (stable across processes and machines), and the consumer of
shard s (`--shard s/N`) keeps that shard's bars under the prefix `{prefix}:{s}` — the same
layout as above, one level down. The braces are a Redis Cluster hash tag: a shard's stream,
dead-letter stream and every key its consumer's Lua script touches hash to one slot, so the
script stays legal on a cluster and shards spread over its nodes. Batches are applied in order
within a shard only, so consumers of different shards run in parallel. `{prefix}:ticks:shards`
records N; readers (the merged query, the hand-over, the pages) read the unsharded layout and
every shard's (`live.layouts`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from kline_assets.lib.errors import KlineError

DEFAULT_STREAM = "kline:ticks"
DEFAULT_GROUP = "bars"
VERSION_FIELD = "__v"


@dataclass(frozen=True)
class LiveKeys:
    """Key names under one prefix (RedisResource.key_prefix)."""

    prefix: str = "kline"

    @property
    def days(self) -> str:
        return f"{self.prefix}:live:days"

    @property
    def closed(self) -> str:
        return f"{self.prefix}:live:closed"

    def day(self, day: str) -> str:
        return f"{self.prefix}:live:{day}"

    def symbols(self, day: str) -> str:
        return f"{self.day(day)}:symbols"

    def bars(self, day: str, symbol: str) -> str:
        return f"{self.day(day)}:bars:{symbol}"

    def state(self, day: str) -> str:
        return f"{self.day(day)}:state"

    def report(self, day: str) -> str:
        return f"{self.day(day)}:report"

    def status(self, stream: str, group: str) -> str:
        return f"{self.prefix}:ticks:status:{stream}:{group}"

    @property
    def handover(self) -> str:
        return f"{self.prefix}:ticks:handover"

    @staticmethod
    def dead(stream: str) -> str:
        return f"{stream}:dead"

    @property
    def shards(self) -> str:
        """The number of shards the feed is split into (absent: one unsharded stream)."""
        return f"{self.prefix}:ticks:shards"

    @property
    def sharded(self) -> bool:
        return "{" in self.prefix

    def shard(self, s: int) -> LiveKeys:
        """The layout of shard `s`: every key under `{prefix}:{s}` (one Redis Cluster slot)."""
        return LiveKeys(f"{self.prefix}:{{{s}}}")


def shard_stream(stream: str, s: int) -> str:
    """Shard `s`'s stream: `kline:ticks` → `kline:ticks:{s}` (hash tag as the shard's keys)."""
    return f"{stream}:{{{s}}}"


def shard_of(symbols: Iterable[str], n: int) -> list[int]:
    """Each symbol's shard: crc32 of its text mod n — the same in every process (Python's
    own hash() is salted per process)."""
    return [zlib.crc32(s.encode()) % n for s in symbols]


def parse_shard(text: str) -> tuple[int, int]:
    """`s/N` (e.g. `0/2`) → (s, N), 0 ≤ s < N."""
    try:
        s, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise KlineError(f"--shard {text!r}: expected s/N, e.g. 0/2") from None
    if not 0 <= s < n or n > 1024:
        raise KlineError(f"--shard {text!r}: need 0 ≤ s < N ≤ 1024")
    return s, n
