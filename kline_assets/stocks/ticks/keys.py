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
"""

from __future__ import annotations

from dataclasses import dataclass

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
