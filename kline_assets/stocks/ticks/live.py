"""Reading today's bars back out of Redis (the merged query, the hand-over, the page), and
removing a day once it is archived. The key layout is `keys.LiveKeys`, the value format
`codec.decode_bars`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import redis

from kline_assets.kernels.bars import Bars

from .codec import decode_bars
from .keys import LiveKeys


def live_days(client: redis.Redis, keys: LiveKeys) -> list[str]:
    """Days (YYYY-MM-DD) with bars in Redis, sorted."""
    return sorted(d.decode() for d in client.smembers(keys.days))


def day_symbols(client: redis.Redis, keys: LiveKeys, day: str) -> list[str]:
    return sorted(s.decode() for s in client.smembers(keys.symbols(day)))


def read_day(client: redis.Redis, keys: LiveKeys, day: str,
             symbols: Iterable[str] | None = None) -> Bars:
    """1-minute bars of `day` (all symbols, or the given ones), sorted by (symbol, frame)."""
    names = day_symbols(client, keys, day) if symbols is None else sorted(set(symbols))
    if not names:
        return Bars.empty(1)
    pipe = client.pipeline(transaction=False)
    for s in names:
        pipe.hgetall(keys.bars(day, s))
    return decode_bars(day, list(zip(names, pipe.execute(), strict=True)))


def day_keys(client: redis.Redis, keys: LiveKeys, day: str) -> list[str]:
    """Every key of `day` (bars, symbols, state, report)."""
    return sorted(k.decode() for k in client.scan_iter(match=keys.day(day) + ":*", count=1000))


def delete_day(client: redis.Redis, keys: LiveKeys, day: str) -> int:
    """Remove `day` from Redis and mark it handed over, in one transaction (so a late tick
    of that day is refused rather than starting a partial day); returns the keys deleted."""
    doomed = day_keys(client, keys, day)
    pipe = client.pipeline(transaction=True)
    for lo in range(0, len(doomed), 1000):
        pipe.unlink(*doomed[lo:lo + 1000])
    pipe.srem(keys.days, day)
    pipe.hset(keys.closed, day, datetime.now(UTC).isoformat(timespec="seconds"))
    pipe.execute()
    return len(doomed)


def status(client: redis.Redis, keys: LiveKeys) -> dict:
    """What the status page shows: every consumer group's last report and the last
    hand-over, as strings."""
    def text(h: dict) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in h.items()}

    groups = [text(client.hgetall(k))
              for k in sorted(client.scan_iter(match=keys.status("*", "*"), count=1000))]
    return {"consumers": groups, "handover": text(client.hgetall(keys.handover)),
            "live_days": live_days(client, keys)}
