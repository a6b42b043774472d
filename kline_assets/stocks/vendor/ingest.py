"""`kline bars ingest`: vendor bars from the stream → PostgreSQL, one consumer of a group.

Per batch (XREADGROUP, default 5,000 entries):

1. parse and screen it (`codec`, `screen`); rejected entries are parked in `<stream>:dead`
   under their own ids (once, whatever the redeliveries), with the reason and the raw fields;
2. commit it in one PostgreSQL transaction with the group's stream position (`store`);
3. XACK every entry of the batch.

A kill -9 anywhere loses nothing (before 3 the entries stay pending and are delivered again)
and adds nothing (after 2 the position makes them "already committed"). Batches of a group are
committed in stream order, which is what makes one position per group exact and "the later
wins" well defined for corrections: a consumer waits while another holds an older pending
entry, and claims (XAUTOCLAIM) the entries of consumers idle longer than `claim_idle_ms` —
dead ones — so their work is never stranded. While a batch commits, the next one is read and
screened (a thread does the database write; psycopg releases the GIL while the server works).

PostgreSQL down: the batch in hand is not acknowledged; the consumer stops with the store and
its address (exit 2), and the next start writes the pending entries. SIGTERM/SIGINT finish
the batch in hand. Every `report_every` seconds the consumer prints and stores in Redis its
throughput, the backlog (entries not yet acknowledged: undelivered + pending), pending per
consumer, the group's committed counters and the last 1-minute frame per symbol.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
import redis

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources.postgres import PostgresResource

from .events import MonthEvents
from .keys import DEFAULT_GROUP, RATE_SAMPLES, VendorKeys
from .reader import StreamReader
from .screen import DayCache, screen
from .store import Batch, Written, ensure_schema, write_batch

# KEYS: dead-letter stream. ARGV: (entry id, reason, detail, raw)… An entry is parked under its
# own id, so a redelivered rejected entry is parked once; an id the dead stream cannot take
# any more (older than its newest) is parked under a new id with the original in `id`.
_PARK = """
local parked = 0
for i = 1, #ARGV, 4 do
  if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    local ok = redis.pcall('XADD', KEYS[1], ARGV[i], 'reason', ARGV[i + 1], 'detail',
                           ARGV[i + 2], 'raw', ARGV[i + 3])
    if type(ok) == 'table' and ok.err then
      redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'reason', ARGV[i + 1], 'detail',
                 ARGV[i + 2], 'raw', ARGV[i + 3])
    end
    parked = parked + 1
  end
end
return parked
"""


@dataclass
class IngestOptions:
    stream: str | None = None  # default: VendorKeys.stream
    group: str = DEFAULT_GROUP
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch: int = 5000
    block_ms: int = 500
    claim_idle_ms: int = 30_000
    until_idle: float | None = None
    report_every: float = 5.0
    volume_unit: str = "shares"
    events_every: float = 5.0


@dataclass
class IngestStats:
    entries: int = 0
    bars: int = 0
    inserted: int = 0
    duplicates: int = 0
    corrections: int = 0
    rejected: int = 0
    redelivered: int = 0
    claimed: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _InHand:
    ids: list[str]
    batch: Batch


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Ingestor:
    """One consumer of a group; `run` until stopped (`stop()`, a signal) or idle."""

    def __init__(self, client: redis.Redis, postgres: PostgresResource,
                 options: IngestOptions, keys: VendorKeys | None = None,
                 echo: Callable[[str], None] | None = None,
                 events: MonthEvents | None = None) -> None:
        self.r, self.pg, self.o = client, postgres, options
        self.keys = keys or VendorKeys()
        self.stream = options.stream or self.keys.stream
        self.echo = echo or (lambda _line: None)
        self.events = events
        self.stats = IngestStats()
        self.stopping = False
        self._reader = StreamReader(client)
        self._park = client.register_script(_PARK)
        self._days = DayCache()
        self._window = (time.monotonic(), 0)
        self._totals: dict = {}
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []  # stored with each report

    # ------------------------------------------------------------------ the loop

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, then return from `run` (signal handler)."""
        self.stopping = True

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.stream, self.o.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self) -> IngestStats:
        self.ensure_group()
        ensure_schema(self.pg)
        try:
            with self.pg.connect(autocommit=True) as conn, \
                    ThreadPoolExecutor(1, thread_name_prefix="vendor-commit") as pool:
                self._loop(conn, pool)
        finally:
            self._reader.close()
        self.report()
        self._report_events(final=True)
        return self.stats

    def _report_events(self, final: bool = False) -> None:
        """Observations to Dagster: informational (the bars are committed already), so a
        Dagster instance that cannot take them is said once per failure, never fatal; the
        months stay gathered for the next try."""
        if self.events is None:
            return
        try:
            self.events.flush() if final else self.events.maybe_flush()
        except Exception as exc:
            self.echo(f"{self.o.consumer}: could not report to the Dagster instance "
                      f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''});"
                      " the months are reported with the next batch")

    def _loop(self, conn: psycopg.Connection, pool: ThreadPoolExecutor) -> None:
        o = self.o
        idle_since: float | None = None
        last_claim = last_report = time.monotonic()
        ahead: _InHand | None = None       # read, not yet committed
        inflight: tuple[_InHand, Future] | None = None
        while True:
            if inflight is not None:
                if ahead is None and not self.stopping:
                    ahead = self._next(">")  # prefetch while the commit runs
                hand, future = inflight
                self._finish(hand, future.result())
                inflight = None
            if self.stopping:
                break  # the batch in hand is done; a prefetched one stays pending
            now = time.monotonic()
            if ahead is None:
                if now - last_claim >= o.claim_idle_ms / 2000:
                    self.claim()
                    last_claim = now
                ahead = self._next("0") or self._next(">")
            if ahead is not None:
                idle_since = None
                if self._wait_turn(ahead.ids[0]):
                    inflight = (ahead, pool.submit(self._commit, conn, ahead))
                ahead = None  # not our turn: older entries were claimed; read them first
            else:
                lag, pending = self._backlog()
                if o.until_idle is not None and lag == 0 and pending == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= o.until_idle:
                        break
                else:
                    idle_since = None
                if pending and not lag:
                    self.claim()
                self._block()
            if time.monotonic() - last_report >= o.report_every:
                self.report()
                last_report = time.monotonic()
            self._report_events()

    def _next(self, start: str) -> _InHand | None:
        """The next batch (own pending with "0", new entries with ">"), parsed and screened."""
        table = self._reader.read(self.o.group, self.o.consumer, self.o.batch, self.stream,
                                  start)
        if table is None:
            return None
        ids = table.column("id").to_pylist()
        screened = screen(table, self._days, self.o.volume_unit)
        if screened.rejected:
            self._park_rejected(ids, screened.rejected)
        return _InHand(ids, Batch(ids, screened.rows, screened.rejected))

    def _block(self) -> None:
        """Wait up to block_ms for an entry after the group's last delivered one."""
        try:
            last = self._group_info().get("last-delivered-id", "0-0")
            self.r.xread({self.stream: _text(last)}, count=1, block=self.o.block_ms)
        except redis.ResponseError:
            time.sleep(self.o.block_ms / 1000)

    def _commit(self, conn: psycopg.Connection, hand: _InHand) -> Written:
        try:
            return write_batch(conn, self.stream, self.o.group, hand.batch)
        except psycopg.OperationalError as exc:
            raise ServiceUnavailableError(
                f"PostgreSQL at {self.pg.address} (KLINE_PG_DSN) failed while writing a batch "
                f"of {len(hand.ids)} entries, which stay pending for the next start: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}",
                store="PostgreSQL", address=self.pg.address) from exc

    def _finish(self, hand: _InHand, written: Written) -> None:
        """After COMMIT: acknowledge, then count, mirror the counters and the last frames."""
        self.r.xack(self.stream, self.o.group, *hand.ids)
        s = self.stats
        s.batches += 1
        s.entries += len(hand.ids)
        s.redelivered += written.redelivered
        s.inserted += written.inserted
        s.duplicates += written.duplicates
        s.corrections += written.corrections
        s.rejected += sum(written.rejected.values())
        s.bars += written.bars
        if written.totals:
            self._totals = written.totals
            t = written.totals
            self.r.hset(self.keys.status(self.stream, self.o.group), mapping={
                "entries": t["entries"], "inserted": t["inserted"],
                "duplicates": t["duplicates"], "corrections": t["corrections"],
                "rejected": json.dumps(t["rejected"] or {}),
                "last_commit_at": datetime.now(UTC).isoformat(timespec="seconds")})
        if written.last_frames is not None:
            self._frames.append(written.last_frames)
        if self.events is not None:
            self.events.add(written)

    def _store_last_frames(self) -> None:
        """symbol → newest 1-minute frame of the batches since the last report, never moved
        backwards (a correction of an old bar leaves it); ISO text compares like time. Once per
        report rather than per batch: one HMGET/HSET of the symbols instead of one per batch."""
        if not self._frames:
            return
        symbols = np.concatenate([f[0] for f in self._frames])
        frames = np.concatenate([f[1] for f in self._frames])
        self._frames = []
        newest = pd.Series(frames).groupby(symbols, sort=False).max()
        symbols, frames = newest.index.to_numpy(dtype=object), newest.to_numpy(dtype=object)
        key = self.keys.last_frames(self.stream)
        known = np.array([b"" if v is None else v for v in self.r.hmget(key, symbols.tolist())],
                         dtype=object)
        text = np.char.encode(frames.astype(str), "ascii").astype(object)
        newer = known < text
        if newer.any():
            self.r.hset(key, mapping=dict(zip(symbols[newer].tolist(), text[newer].tolist(),
                                              strict=True)))

    def _park_rejected(self, ids: list[str], rejected: dict[int, tuple[str, str]]) -> None:
        pipe = self.r.pipeline(transaction=False)
        positions = sorted(rejected)
        for pos in positions:
            pipe.xrange(self.stream, ids[pos], ids[pos])
        raws = pipe.execute()
        args: list[str | bytes] = []
        for pos, found in zip(positions, raws, strict=True):
            fields = found[0][1] if found else {}
            raw = b";".join(k + b"=" + v for k, v in fields.items())
            reason, detail = rejected[pos]
            args += [ids[pos], reason, detail, raw]
        self._park(keys=[VendorKeys.dead(self.stream)], args=args)

    # ------------------------------------------------------------------ the group

    def claim(self) -> int:
        """Take over entries pending longer than claim_idle_ms with other (dead) consumers."""
        reply = self.r.xautoclaim(self.stream, self.o.group, self.o.consumer,
                                  min_idle_time=self.o.claim_idle_ms, start_id="0-0",
                                  count=self.o.batch, justid=True)
        claimed = len(reply or [])
        self.stats.claimed += claimed
        return claimed

    def _wait_turn(self, first: str) -> bool:
        """Wait until no other consumer holds a pending entry older than `first`; False when
        this consumer should re-read instead (it holds or claimed older entries, or stops)."""
        bound = "(" + first
        waited = time.monotonic()
        while True:
            older = self.r.xpending_range(self.stream, self.o.group, min="-", max=bound,
                                          count=1)
            if not older:
                return True
            if _text(older[0]["consumer"]) == self.o.consumer or self.stopping:
                return False
            time.sleep(0.005)
            if time.monotonic() - waited >= self.o.claim_idle_ms / 2000:
                waited = time.monotonic()
                if self.claim():
                    return False

    def _group_info(self) -> dict:
        for g in self.r.xinfo_groups(self.stream):
            if _text(g["name"]) == self.o.group:
                return g
        return {}

    def _backlog(self) -> tuple[int, int]:
        """(entries not yet delivered to the group, entries delivered but not acknowledged)."""
        g = self._group_info()
        return int(g.get("lag") or 0), int(g.get("pending") or 0)

    # ------------------------------------------------------------------ status

    def report(self) -> None:
        """Print and store throughput, backlog, pending, the committed counters and the last
        frames."""
        self._store_last_frames()
        now = time.monotonic()
        since, bars0 = self._window
        rate = (self.stats.bars - bars0) / max(now - since, 1e-9)
        self._window = (now, self.stats.bars)
        try:
            lag, pending = self._backlog()
        except redis.ResponseError:
            lag, pending = 0, 0
        wall = time.time()
        mine = {"consumer": self.o.consumer, "bars_per_s": round(rate, 1),
                "bars": self.stats.bars, "entries": self.stats.entries,
                "redelivered": self.stats.redelivered, "claimed": self.stats.claimed,
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.keys.status(self.stream, self.o.group), mapping={
            "stream": self.stream, "group": self.o.group, "lag": lag, "pending": pending,
            "backlog": lag + pending, "updated_at": mine["updated_at"]})
        pipe.hset(self.keys.consumers(self.stream, self.o.group), self.o.consumer,
                  json.dumps(mine))
        rate_key = self.keys.rate(self.stream, self.o.group)
        pipe.lpush(rate_key, f"{wall:.3f} {self.o.consumer} {rate:.1f}")
        pipe.ltrim(rate_key, 0, RATE_SAMPLES - 1)
        pipe.execute()
        t = self._totals
        self.echo(f"{self.o.consumer}: {self.stats.bars} bars, {rate:,.0f}/s, backlog "
                  f"{lag + pending} ({lag} undelivered, {pending} pending); group totals "
                  f"{t.get('inserted', 0)} inserted, {t.get('duplicates', 0)} duplicates, "
                  f"{t.get('corrections', 0)} corrections, "
                  f"{sum((t.get('rejected') or {}).values())} rejected")
