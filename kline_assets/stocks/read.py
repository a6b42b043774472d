"""The read side of the stock domain, for people: the merged bar query, the symbols the
stores hold, and the live status (stream consumers, the last hand-over). `kline bars query`
and the HTTP service call these and nothing below them.

One query runs over both worlds of bars: the vendors' history, our archive, and today in Redis.

`bars(symbol, period, start, end)` reads, for every day in the range, the vendor's 1-minute
bars (`stock_1min_qfq`), the synthesised archive (`stock_1min_synth`, days the vendor lacks)
and the live bars in Redis (days not handed over yet), keeps each (symbol, frame) once in
that order of preference, and only then builds N-minute bars with the kernel — so history
and today follow one labelling convention. Every row says where it came from (`source`:
vendor | synth | live; an N-minute bar built from several sources carries the least final
one). Nothing depends on the wall clock: a day still in Redis is read from Redis whatever
today is. Frames leave as ISO-8601 with +08:00.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import redis as redislib
from psycopg import sql

from kline_assets.kernels.bars import PERIODS, Bars, block_end_minutes, resample_bars
from kline_assets.lib.errors import InvalidQueryError, NotFoundError, ServiceUnavailableError
from kline_assets.lib.settings import STOCK_TZ
from kline_assets.resources.dsn import redact
from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.resources.redis import RedisResource

from . import STOCK_SYNTH_TABLE, STOCK_TABLE, rules
from .history import minute_bars
from .sessions import provisional_note
from .ticks.keys import LiveKeys
from .ticks.live import day_symbols, live_days, read_day, status
from .vendor.keys import VendorKeys
from .vendor.status import vendor_status

__all__ = ["PERIODS", "SOURCES", "BarsQueryError", "UnknownSymbolError", "bars",
           "known_symbols", "live_status", "merge_minutes", "parse_clock", "provisional_note",
           "transfer_status"]

SOURCES = ("vendor", "synth", "live")  # order of preference


class BarsQueryError(InvalidQueryError):
    """A bar query that cannot be answered as asked (period, range, symbol); HTTP 400."""


class UnknownSymbolError(NotFoundError):
    """No store knows the symbol; HTTP 404."""


def parse_clock(value: datetime | str, name: str) -> datetime:
    """Naive Beijing wall clock from a datetime or text (an offset is converted), within the
    times any bar can have (`rules.TIME_RULE`): pandas reads `-1` as the year -1, which no
    datetime — and no store — holds."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BarsQueryError(f"{name} {value!r} is not a date and time "
                             "(YYYY-MM-DD HH:MM, Asia/Shanghai)") from exc
    if ts is pd.NaT:
        raise BarsQueryError(f"{name} is missing")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(STOCK_TZ).tz_localize(None)
    if rules.time_outside(np.array([ts.to_datetime64()]))[0]:
        raise BarsQueryError(f"{name} {value!r} is outside {rules.TIME_RULE} "
                             "(YYYY-MM-DD HH:MM, Asia/Shanghai)")
    return ts.to_pydatetime()


def _live(client: redislib.Redis, keys: LiveKeys, symbol: str, first: date, last: date,
          address: str) -> Bars:
    try:
        days = [d for d in live_days(client, keys) if first.isoformat() <= d <= last.isoformat()]
        return Bars.concat([read_day(client, keys, d, [symbol]) for d in days], 1)
    except redislib.RedisError as exc:
        raise ServiceUnavailableError(
            f"Redis unreachable at {address} (KLINE_REDIS_URL): {redact(str(exc))}",
            store="Redis", address=address) from exc


def _known(postgres: PostgresResource, client: redislib.Redis, keys: LiveKeys,
           symbol: str) -> bool:
    with postgres.connect() as conn:
        for table in (STOCK_TABLE, STOCK_SYNTH_TABLE):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                continue
            probe = sql.SQL("SELECT 1 FROM {} WHERE code = %s LIMIT 1").format(
                table_ident(table))
            if conn.execute(probe, (symbol,)).fetchone():
                return True
    return any(symbol in day_symbols(client, keys, d) for d in live_days(client, keys))


def merge_minutes(parts: dict[str, Bars]) -> tuple[Bars, np.ndarray]:
    """1-minute bars of one symbol from several sources, each frame once from the most
    preferred source (SOURCES order), sorted by frame; and each bar's source rank."""
    named = [(SOURCES.index(name), b) for name, b in parts.items() if len(b)]
    if not named:
        return Bars.empty(1), np.zeros(0, dtype=np.int64)
    rank = np.concatenate([np.full(len(b), r) for r, b in named])
    both = Bars(1, *(np.concatenate([getattr(b, c) for _, b in named])
                     for c in ("symbol", "frame", *Bars.COLUMNS)))
    order = np.lexsort((rank, both.frame))
    frame = both.frame[order]
    first = np.r_[True, frame[1:] != frame[:-1]]
    keep = order[first]
    return both.take(keep), rank[keep]


def _block_ranks(minutes: Bars, rank: np.ndarray, period: int) -> np.ndarray:
    """The least final source rank of each N-minute block (resample_bars' blocks)."""
    if period == 1 or len(minutes) == 0:
        return rank
    s = minutes.frame.view(np.int64)
    day, minute = s // 86_400, (s % 86_400) // 60
    key = day * 1440 + block_end_minutes(minute, period)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return np.maximum.reduceat(rank, starts)


def bars(
    symbol: str,
    period: int,
    start: datetime | str,
    end: datetime | str,
    *,
    postgres: PostgresResource | None = None,
    redis: RedisResource | None = None,
) -> list[dict]:
    """`period`-minute bars of `symbol` with frames in [start, end] (Beijing wall clock; text
    or datetimes, an offset is converted), sorted by frame; see the module docstring.

    Whole days are read, so the blocks at the edges of the range are complete bars.
    Raises BarsQueryError (period, range), UnknownSymbolError, ServiceUnavailableError (which
    store, which address).
    """
    try:
        period = int(period)
    except (TypeError, ValueError):
        period = -1
    if period not in PERIODS:
        raise BarsQueryError(f"period must be one of {', '.join(map(str, PERIODS))} minutes")
    lo, hi = parse_clock(start, "start"), parse_clock(end, "end")
    if lo > hi:
        raise BarsQueryError(f"start {lo:%Y-%m-%d %H:%M} is after end {hi:%Y-%m-%d %H:%M}")
    symbol = str(symbol).strip()
    if not symbol or len(symbol) > 64 or any(ord(c) < 32 for c in symbol):
        raise BarsQueryError("symbol must be 1–64 printable characters, e.g. 600000.SH")
    if postgres is None or redis is None:
        from kline_assets.resources.build import store_resources

        resources = store_resources()
        postgres = postgres or resources["postgres"]
        redis = redis or resources["redis"]
    client = redis.client()
    keys = LiveKeys(redis.key_prefix)
    first, last = lo.date(), hi.date()
    parts = {
        "vendor": minute_bars(postgres, STOCK_TABLE, first, last, symbol),
        "synth": minute_bars(postgres, STOCK_SYNTH_TABLE, first, last, symbol),
        "live": _live(client, keys, symbol, first, last, redact(redis.url)),
    }
    minutes, rank = merge_minutes(parts)
    out = resample_bars(minutes, period)
    ranks = _block_ranks(minutes, rank, period)
    inside = np.flatnonzero((out.frame >= np.datetime64(lo, "s"))
                            & (out.frame <= np.datetime64(hi, "s")))
    if len(inside) == 0 and not _known(postgres, client, keys, symbol):
        raise UnknownSymbolError(
            f"unknown symbol {symbol!r}: not in {STOCK_TABLE}, {STOCK_SYNTH_TABLE} "
            f"(PostgreSQL {postgres.address}) nor among the live bars in Redis "
            f"({redact(redis.url)})")
    rows = out.take(inside).records()
    for row, r in zip(rows, ranks[inside], strict=True):
        row["source"] = SOURCES[int(r)]
    return rows



# Distinct codes by skipping along the (code, time) index, then each code's last bar by the
# same index: milliseconds however many bars a code has.
_SYMBOLS_SQL = """
WITH RECURSIVE codes(code) AS (
    (SELECT code FROM {t} WHERE code >= %(prefix)s ORDER BY code LIMIT 1)
    UNION ALL
    SELECT (SELECT t.code FROM {t} t WHERE t.code > codes.code ORDER BY t.code LIMIT 1)
    FROM codes WHERE codes.code IS NOT NULL AND starts_with(codes.code, %(prefix)s)
)
SELECT code, (SELECT max(time) FROM {t} WHERE {t}.code = codes.code)::date
FROM codes WHERE code IS NOT NULL AND starts_with(code, %(prefix)s) LIMIT %(limit)s
"""


def known_symbols(postgres: PostgresResource, redis: RedisResource, prefix: str = "",
                  limit: int = 200) -> list[dict[str, object]]:
    """The symbols some store holds bars of, sorted, with the stores (`vendor`, `synth`,
    `live`) and the last day each has: what a page offers to pick from, opening on a day that
    has data."""
    found: dict[str, dict[str, object]] = {}

    def note(symbol: str, source: str, day: str) -> None:
        entry = found.setdefault(symbol, {"symbol": symbol, "sources": [], "last_day": day})
        entry["sources"].append(source)
        entry["last_day"] = max(str(entry["last_day"]), day)

    with postgres.connect() as conn:
        for source, table in (("vendor", STOCK_TABLE), ("synth", STOCK_SYNTH_TABLE)):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                continue
            query = sql.SQL(_SYMBOLS_SQL).format(t=table_ident(table))
            for code, day in conn.execute(query, {"prefix": prefix, "limit": limit}):
                note(code, source, day.isoformat())
    client = redis.client()
    keys = LiveKeys(redis.key_prefix)
    try:
        for day in live_days(client, keys):
            for symbol in day_symbols(client, keys, day):  # every shard's
                if symbol.startswith(prefix):
                    note(symbol, "live", day)
    except redislib.RedisError as exc:
        raise ServiceUnavailableError(
            f"Redis unreachable at {redact(redis.url)} (KLINE_REDIS_URL): {redact(str(exc))}",
            store="Redis", address=redact(redis.url)) from exc
    for entry in found.values():
        entry["sources"] = sorted(set(entry["sources"]), key=SOURCES.index)
    return [found[s] for s in sorted(found)][:limit]


def live_status(redis: RedisResource, max_symbols: int = 200) -> dict:
    """What the status view shows: the stream consumers' last reports (ticks/s, lag, pending,
    malformed), the last hand-over and its accuracy, the days still in Redis and the latest
    day's symbols (the first `max_symbols`)."""
    client = redis.client()
    keys = LiveKeys(redis.key_prefix)
    out = status(client, keys)
    latest = out["live_days"][-1] if out["live_days"] else None
    out["symbols"] = day_symbols(client, keys, latest)[:max_symbols] if latest else []
    return out


def transfer_status(redis: RedisResource, postgres: PostgresResource,
                    stream: str | None = None) -> dict:
    """What the transfer monitor shows of the vendor feed (`vendor.status`): the stream named,
    or the default one under the Redis key prefix."""
    return vendor_status(redis.client(), postgres, VendorKeys(redis.key_prefix), stream)
