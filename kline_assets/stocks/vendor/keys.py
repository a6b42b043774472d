"""Where the vendor feed lives in Redis: the one definition of its key names.

    {prefix}:vendor:bars                      the stream (default), one entry per bar
    {stream}:dead                             rejected entries, under their own ids, with the
                                              reason and the raw fields
    {prefix}:vendor:status:{stream}:{group}   hash: the group's counters and last report
    {prefix}:vendor:consumers:{stream}:{group}  hash consumer → its last report (JSON)
    {prefix}:vendor:rate:{stream}:{group}     list of "unix_s consumer bars_per_s" samples
                                              (newest first, capped), for the sparkline
    {prefix}:vendor:last:{stream}             hash symbol → the newest 1-minute frame ingested
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_GROUP = "history"
RATE_SAMPLES = 720  # an hour of 5-second reports


@dataclass(frozen=True)
class VendorKeys:
    """Key names under one prefix (RedisResource.key_prefix)."""

    prefix: str = "kline"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:vendor:bars"

    @staticmethod
    def dead(stream: str) -> str:
        return f"{stream}:dead"

    def status(self, stream: str, group: str) -> str:
        return f"{self.prefix}:vendor:status:{stream}:{group}"

    def consumers(self, stream: str, group: str) -> str:
        return f"{self.prefix}:vendor:consumers:{stream}:{group}"

    def rate(self, stream: str, group: str) -> str:
        return f"{self.prefix}:vendor:rate:{stream}:{group}"

    def last_frames(self, stream: str) -> str:
        return f"{self.prefix}:vendor:last:{stream}"
