"""Reading today's bars back out of Redis (the merged query, the hand-over, the page), and
removing a day once it is archived. The key layout is `keys.LiveKeys`, the value format
`codec.decode_bars`; every reader here reads the unsharded layout and each shard's
(`layouts`), so a sharded feed needs nothing else from its readers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import redis

from kline_assets.kernels.bars import Bars

from .codec import decode_bars
from .keys import LiveKeys


def layouts(client: redis.Redis, keys: LiveKeys) -> list[LiveKeys]:
    """The unsharded layout and every shard's, as `{prefix}:ticks:shards` records them (a
    shard's own layout is just itself)."""
    if keys.sharded:
        return [keys]
    n = client.get(keys.shards)
    return [keys, *(keys.shard(s) for s in range(int(n or 0)))]


def live_days(client: redis.Redis, keys: LiveKeys) -> list[str]:
    """Days (YYYY-MM-DD) with bars in Redis, sorted."""
    return sorted({d.decode() for k in layouts(client, keys) for d in client.smembers(k.days)})


def day_symbols(client: redis.Redis, keys: LiveKeys, day: str) -> list[str]:
    return sorted({s.decode() for k in layouts(client, keys)
                   for s in client.smembers(k.symbols(day))})


def read_day(client: redis.Redis, keys: LiveKeys, day: str,
             symbols: Iterable[str] | None = None) -> Bars:
    """1-minute bars of `day` (all symbols, or the given ones), sorted by (symbol, frame),
    from every layout."""
    wanted = None if symbols is None else set(symbols)
    parts = []
    for k in layouts(client, keys):
        there = {s.decode() for s in client.smembers(k.symbols(day))}
        names = sorted(there if wanted is None else there & wanted)
        if names:
            parts.append(_read_layout(client, k, day, names))
    if len(parts) <= 1:
        return parts[0] if parts else Bars.empty(1)
    both = Bars.concat(parts, 1)
    return both.take(np.lexsort((both.frame, both.symbol.astype(str))))


def _read_layout(client: redis.Redis, keys: LiveKeys, day: str, names: list[str]) -> Bars:
    """The bars of `names` in one layout, sorted by (symbol, frame)."""
    if not names:
        return Bars.empty(1)
    pipe = client.pipeline(transaction=False)
    for s in names:
        pipe.hgetall(keys.bars(day, s))
    return decode_bars(day, list(zip(names, pipe.execute(), strict=True)))


def day_keys(client: redis.Redis, keys: LiveKeys, day: str) -> list[str]:
    """Every key of `day` (bars, symbols, state, report), in every layout."""
    return sorted(k.decode() for layout in layouts(client, keys)
                  for k in client.scan_iter(match=_glob(layout.day(day)) + ":*", count=1000))


def _glob(text: str) -> str:
    """`text` as a literal SCAN pattern: a key prefix is text, and a star or bracket in it
    would otherwise match other keys."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def delete_day(client: redis.Redis, keys: LiveKeys, day: str) -> int:
    """Remove `day` from Redis and mark it handed over, one transaction per layout (a shard's
    keys share one slot; so a late tick of that day is refused rather than starting a
    partial day); returns the keys deleted."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    deleted = 0
    for layout in layouts(client, keys):
        doomed = sorted(k.decode() for k in client.scan_iter(
            match=_glob(layout.day(day)) + ":*", count=1000))
        pipe = client.pipeline(transaction=True)
        for lo in range(0, len(doomed), 1000):
            pipe.unlink(*doomed[lo:lo + 1000])
        pipe.srem(layout.days, day)
        pipe.hset(layout.closed, day, stamp)
        pipe.execute()
        deleted += len(doomed)
    return deleted


def status(client: redis.Redis, keys: LiveKeys) -> dict:
    """What the status page shows: every consumer group's last report and the last
    hand-over, as strings."""
    def text(h: dict) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in h.items()}

    groups = [text(client.hgetall(k)) for layout in layouts(client, keys)
              for k in sorted(client.scan_iter(match=layout.status("*", "*"), count=1000))]
    return {"consumers": groups, "handover": text(client.hgetall(keys.handover)),
            "live_days": live_days(client, keys)}
