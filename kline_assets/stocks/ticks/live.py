"""Reading today's bars back out of Redis (the merged query, the hand-over, the page), and
removing a day once it is archived. The key layout is `keys.LiveKeys`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import redis

from kline_assets.kernels.bars import Bars

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
    hashes = pipe.execute()
    sym: list[str] = []
    minutes: list[int] = []
    values: list[bytes] = []
    for s, h in zip(names, hashes, strict=True):
        for label, packed in h.items():
            sym.append(s)
            hh, mm = label.split(b":")
            minutes.append(int(hh) * 60 + int(mm))
            values.append(packed)
    if not sym:
        return Bars.empty(1)
    cols = np.array([v.split(b",") for v in values], dtype=np.float64).reshape(-1, 6)
    base = np.datetime64(day, "m").astype(np.int64)
    frame = ((base + np.asarray(minutes, dtype=np.int64)) * 60).astype("datetime64[s]")
    symbol = np.asarray(sym, dtype=object)
    order = np.lexsort((frame, symbol.astype(str)))
    return Bars(1, symbol, frame, *(cols[:, j] for j in range(6))).take(order)


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
