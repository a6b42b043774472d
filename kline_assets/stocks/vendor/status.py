"""What the transfer page shows (`GET /api/vendor/status`): the vendor stream's groups with
their backlog, pending per consumer, ingest rate over the last minutes, the committed counters
(rejections by reason, corrections), the last frame per symbol and how many symbols are
complete for the day.

Live state comes from Redis (the stream itself and what the consumers store, keys.py); the
counters the consumers mirror are the exactly-once ones committed in PostgreSQL; the recent
corrections and the symbols complete for the day are read from PostgreSQL.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import redis
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource

from .. import STOCK_TABLE
from .keys import VendorKeys
from .store import recent_corrections

FULL_DAY = 240
"""One-minute bars of a complete session day (09:31…11:30, 13:01…15:00)."""
RATE_WINDOW_S = 600
RATE_BUCKET_S = 5
LAGGING_SHOWN = 100


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stamp(dt: object) -> str | None:
    """A timestamp as the page shows it: ISO-8601, 24-hour."""
    if dt is None:
        return None
    if isinstance(dt, datetime):
        return dt.isoformat(timespec="seconds")
    return str(dt)


def rate_series(samples: list[bytes], now: float, window_s: int = RATE_WINDOW_S,
                bucket_s: int = RATE_BUCKET_S) -> list[dict]:
    """Bars/s of the whole group per `bucket_s` over the last `window_s`: per bucket, the sum
    over consumers of the mean of each one's reports in it; a bucket without reports is 0."""
    start = now - window_s
    buckets: dict[int, dict[str, list[float]]] = {}
    for raw in samples:
        ts_text, consumer, rate = _text(raw).split(" ")
        ts = float(ts_text)
        if ts < start:
            continue
        buckets.setdefault(int(ts // bucket_s), {}).setdefault(consumer, []).append(float(rate))

    def total(b: int) -> float:
        return round(sum(sum(v) / len(v) for v in buckets.get(b, {}).values()), 1)

    first, last = int(start // bucket_s) + 1, int(now // bucket_s)
    return [{"t": datetime.fromtimestamp(b * bucket_s).astimezone().isoformat(timespec="seconds"),
             "bars_per_s": total(b)} for b in range(first, last + 1)]


def _complete(postgres: PostgresResource, day: str) -> dict:
    start = datetime.fromisoformat(day)
    query = sql.SQL("SELECT count(*) FILTER (WHERE n >= %s), count(*) FROM (SELECT code, "
                    "count(*) AS n FROM {} WHERE time >= %s AND time < %s GROUP BY code) s"
                    ).format(sql.Identifier(STOCK_TABLE))
    with postgres.connect() as conn:
        complete, symbols = conn.execute(query, (FULL_DAY, start,
                                                 start + timedelta(days=1))).fetchone()
    return {"day": day, "complete": int(complete), "symbols": int(symbols),
            "bars_per_day": FULL_DAY}


def vendor_status(client: redis.Redis, postgres: PostgresResource, keys: VendorKeys,
                  stream: str | None = None) -> dict:
    """The page's JSON (see the module docstring)."""
    stream = stream or keys.stream
    now = time.time()
    groups = []
    exists = bool(client.exists(stream))
    for g in (client.xinfo_groups(stream) if exists else []):
        name = _text(g["name"])
        consumers = []
        reports = {_text(k): json.loads(v)
                   for k, v in client.hgetall(keys.consumers(stream, name)).items()}
        for c in client.xinfo_consumers(stream, name):
            cname = _text(c["name"])
            mine = reports.get(cname, {})
            consumers.append({"consumer": cname, "pending": int(c["pending"]),
                              "idle_s": round(int(c["idle"]) / 1000, 1),
                              "bars_per_s": mine.get("bars_per_s"),
                              "bars": mine.get("bars"), "updated_at": mine.get("updated_at")})
        status = {_text(k): _text(v) for k, v in
                  client.hgetall(keys.status(stream, name)).items()}
        lag, pending = int(g.get("lag") or 0), int(g.get("pending") or 0)
        series = rate_series(client.lrange(keys.rate(stream, name), 0, -1), now)
        groups.append({
            "group": name, "lag": lag, "pending": pending, "backlog": lag + pending,
            "consumers": consumers, "rate": series,
            "bars_per_s": series[-1]["bars_per_s"] if series else 0.0,
            "entries": int(status.get("entries", 0)),
            "inserted": int(status.get("inserted", 0)),
            "duplicates": int(status.get("duplicates", 0)),
            "corrections": int(status.get("corrections", 0)),
            "rejected": json.loads(status.get("rejected") or "{}"),
            "last_commit_at": status.get("last_commit_at"),
            "updated_at": status.get("updated_at"),
        })
    frames = {_text(k): _text(v) for k, v in client.hgetall(keys.last_frames(stream)).items()}
    lagging = sorted(frames.items(), key=lambda kv: (kv[1], kv[0]))[:LAGGING_SHOWN]
    newest = max(frames.values(), default=None)
    with postgres.connect() as conn:
        corrections = [{k: _stamp(v) if isinstance(v, datetime) else v for k, v in c.items()}
                       for c in recent_corrections(conn, stream, 20)]
    return {
        "stream": stream, "length": int(client.xlen(stream)) if exists else 0,
        "dead_letters": int(client.xlen(keys.dead(stream))),
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "groups": groups,
        "symbols": len(frames), "newest_frame": newest,
        "last_frames": [{"symbol": s, "frame": f} for s, f in lagging],
        "day": _complete(postgres, newest[:10]) if newest else None,
        "recent_corrections": corrections,
    }
