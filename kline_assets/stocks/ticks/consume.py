"""The stream consumer: ticks from a Redis stream → today's 1-minute bars in Redis, crash-safe.

Per batch of entries (XREADGROUP), in this order:

1. decode the batch into arrays (`codec.decode`); malformed entries are set aside;
2. per trading day of the ticks: read the symbols' carried state (cursor, cumulative
   volume/amount, day high/low) from Redis, run the incremental kernel
   (`kernels.bars.continue_bars`) over the whole batch, and write the bars, the new state
   and the tick counters in ONE Lua script, which refuses the write if another consumer
   changed that day's state in between (the batch is then recomputed);
3. park malformed entries in the dead-letter stream (once, keyed by their entry id);
4. XACK.

A kill -9 anywhere loses nothing: before step 2 the entries are still pending and are
delivered again; after it, the cursor makes their ticks "already seen", so a redelivery adds
nothing. Bars depend on tick order (cumulative volumes, open/close), so batches are applied in
stream order across the group: a consumer waits until no other consumer holds an older pending
entry, and claims (XAUTOCLAIM) the entries of consumers idle longer than `claim_idle_ms` —
dead ones — so their work is never stranded. Several consumers then share decoding and
parsing, and the result is the same as with one.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import redis

from kline_assets.kernels.bars import REASONS, Bars, SymbolState, Ticks, continue_bars
from kline_assets.lib.errors import CalendarRangeError

from .. import rules
from ..sessions import trading_days
from .codec import as_dict, decode, decode_state, encode_bars, encode_state
from .keys import DEFAULT_GROUP, DEFAULT_STREAM, VERSION_FIELD, LiveKeys

_DAY_US = 86_400_000_000

# KEYS: days, symbols, state, report, closed days, then one bars hash per symbol with bars.
# Returns 1 (written), 0 (another consumer changed the day's state first: recompute) or -1
# (the day was handed over already: its ticks are refused).
# ARGV: expected state version, day, and four blobs of lines (one argument each, so that
# packing a batch costs a few joins instead of tens of thousands of arguments):
#   state     "symbol<TAB>state"
#   bars      "key index<TAB>HH:MM<TAB>o,h,l,c,v,a"   folded into an existing bar: open kept,
#             high max, low min, close replaced, volume and amount added
#   counters  "name<TAB>increment"
#   symbols   "symbol" (those with bars)
_APPLY = r"""
if redis.call('HEXISTS', KEYS[5], ARGV[2]) == 1 then return -1 end
local v = redis.call('HGET', KEYS[3], '__v') or ''
if v ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[3], '__v', 1)
for sym, st in string.gmatch(ARGV[3], '([^\t\n]+)\t([^\n]+)\n') do
  redis.call('HSET', KEYS[3], sym, st)
end
local pattern = '(%d+)\t([^\t]+)\t([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^\n]+)\n'
for ki, fld, o, h, l, c, vol, amt in string.gmatch(ARGV[4], pattern) do
  local key = KEYS[tonumber(ki)]
  local cur = redis.call('HGET', key, fld)
  if cur then
    local po, ph, pl, _, pv, pa = string.match(cur,
      '^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$')
    h = string.format('%.17g', math.max(tonumber(ph), tonumber(h)))
    l = string.format('%.17g', math.min(tonumber(pl), tonumber(l)))
    vol = string.format('%.17g', tonumber(pv) + tonumber(vol))
    amt = string.format('%.17g', tonumber(pa) + tonumber(amt))
    o = po
  end
  redis.call('HSET', key, fld, o .. ',' .. h .. ',' .. l .. ',' .. c .. ',' .. vol .. ',' .. amt)
end
for name, n in string.gmatch(ARGV[5], '([^\t\n]+)\t(%-?%d+)\n') do
  redis.call('HINCRBY', KEYS[4], name, n)
end
local any = false
for sym in string.gmatch(ARGV[6], '([^\n]+)\n') do
  redis.call('SADD', KEYS[2], sym)
  any = true
end
if any then redis.call('SADD', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: dead-letter stream, status hash. ARGV: (entry id, reason, raw)…
# An entry is parked under its own id, so a redelivered malformed entry is parked once.
_DEAD = """
local parked = 0
for i = 1, #ARGV, 3 do
  if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    local ok = redis.pcall('XADD', KEYS[1], ARGV[i], 'reason', ARGV[i + 1], 'raw', ARGV[i + 2])
    if type(ok) ~= 'table' or not ok.err then
      parked = parked + 1
    else
      redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'reason', ARGV[i + 1], 'raw', ARGV[i + 2])
      parked = parked + 1
    end
  end
end
if parked > 0 then redis.call('HINCRBY', KEYS[2], 'malformed', parked) end
return parked
"""


@dataclass
class ConsumerOptions:
    stream: str = DEFAULT_STREAM
    group: str = DEFAULT_GROUP
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    batch: int = 5000
    block_ms: int = 500
    claim_idle_ms: int = 30_000
    until_idle: float | None = None
    report_every: float = 5.0
    profile: str = "end"
    cumulative: bool = False
    volume_unit: str = "shares"


@dataclass
class ConsumerStats:
    ticks: int = 0
    entries: int = 0
    malformed: int = 0
    conflicts: int = 0
    claimed: int = 0
    last_entry_ms: int = 0
    started: float = field(default_factory=time.monotonic)


class Consumer:
    """One consumer of a group; `run` until stopped (`stop()`, a signal) or idle."""

    def __init__(self, client: redis.Redis, options: ConsumerOptions,
                 keys: LiveKeys | None = None, echo: Callable[[str], None] | None = None
                 ) -> None:
        self.r, self.o = client, options
        self.keys = keys or LiveKeys()
        self.echo = echo or (lambda _line: None)
        self.stats = ConsumerStats()
        self.stopping = False
        # Stream replies are used as Redis sends them: redis-py's per-entry dict building costs
        # more than the bar math.
        self._raw = redis.Redis(connection_pool=client.connection_pool)
        self._raw.set_response_callback("XREADGROUP", lambda reply, **_kw: reply)
        self._apply = client.register_script(_APPLY)
        self._dead = client.register_script(_DEAD)
        self._days: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ the loop

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, then return from `run` (signal handler)."""
        self.stopping = True

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.o.stream, self.o.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self) -> ConsumerStats:
        self.ensure_group()
        o = self.o
        idle_since: float | None = None
        last_claim = last_report = time.monotonic()
        window = (time.monotonic(), 0)
        while not self.stopping:
            now = time.monotonic()
            if now - last_claim >= o.claim_idle_ms / 2000:
                self.claim()
                last_claim = now
            entries = self._read("0")
            if not entries:
                entries = self._read(">", block=o.block_ms)
            if entries:
                idle_since = None
                if self._wait_turn(entries[0][0]):
                    self.process(entries)
            elif o.until_idle is not None:
                if self._drained():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= o.until_idle:
                        break
                else:
                    idle_since = None
                    self.claim()
            if time.monotonic() - last_report >= o.report_every:
                window = self.report(window)
                last_report = time.monotonic()
        self.report(window)
        return self.stats

    def _read(self, start: str, block: int | None = None) -> list:
        """Entries as Redis sends them: [id, [field, value, …]], or [id, None] for an entry
        deleted while pending."""
        args: list = ["XREADGROUP", "GROUP", self.o.group, self.o.consumer, "COUNT",
                      self.o.batch]
        if block is not None:
            args += ["BLOCK", block]
        reply = self._raw.execute_command(*args, "STREAMS", self.o.stream, start)
        if not reply:
            return []
        return next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]

    def claim(self) -> int:
        """Take over entries pending longer than claim_idle_ms with other (dead) consumers."""
        reply = self.r.xautoclaim(self.o.stream, self.o.group, self.o.consumer,
                                  min_idle_time=self.o.claim_idle_ms, start_id="0-0",
                                  count=self.o.batch, justid=True)
        claimed = len(reply or [])  # with JUSTID, redis-py returns the claimed ids alone
        self.stats.claimed += claimed
        return claimed

    def _wait_turn(self, first: bytes) -> bool:
        """Wait until no other consumer holds a pending entry older than `first`; False when
        this consumer should re-read instead (it claimed older entries, or is stopping)."""
        bound = "(" + (first.decode() if isinstance(first, bytes) else first)
        waited = time.monotonic()
        while True:
            older = self.r.xpending_range(self.o.stream, self.o.group, min="-", max=bound,
                                          count=1)
            if not older:
                return True
            owner = older[0]["consumer"]
            owner = owner.decode() if isinstance(owner, bytes) else owner
            if owner == self.o.consumer or self.stopping:
                return False
            time.sleep(0.005)
            if time.monotonic() - waited >= self.o.claim_idle_ms / 2000:
                waited = time.monotonic()
                if self.claim():
                    return False

    def _drained(self) -> bool:
        """Nothing undelivered and nothing pending in the whole group."""
        pending = self.r.xpending(self.o.stream, self.o.group)["pending"]
        return pending == 0 and self._lag() == 0

    def _lag(self) -> int:
        for g in self.r.xinfo_groups(self.o.stream):
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == self.o.group:
                lag = g.get("lag")
                return int(lag) if lag is not None else 0
        return 0

    # ------------------------------------------------------------------ one batch

    def _trading(self, day: int) -> np.ndarray | CalendarRangeError:
        """The day's session (empty: not a trading day), or why the calendar cannot say. Only
        answers are kept: a day beyond the calendar is asked again with the next batch, so a
        year an operator adds to the closures file is accepted without a restart."""
        if day not in self._days:
            d = np.datetime64(day, "D")
            try:
                self._days[day] = trading_days(str(d), str(d)).values.astype("datetime64[D]")
            except CalendarRangeError as exc:
                return exc
        return self._days[day]

    def process(self, entries: list) -> None:
        """Apply one batch and acknowledge it (see the module docstring for the order)."""
        ids = [e[0] for e in entries]
        present = [e for e in entries if e[1]]  # deleted entries come back without fields
        dec = decode(present)
        bad = dict(dec.bad)
        t = dec.ticks
        # Ticks refused for their values: rejected and counted by the kernel, and parked too,
        # with the reason and their raw fields.
        t, refused = rules.screen_tick_values(t)
        for i, reason in refused.items():
            bad[int(dec.entry[i])] = reason
        if len(t):
            day_of = t.time.view(np.int64) // _DAY_US
            for day in np.unique(day_of):
                idx = np.flatnonzero(day_of == day)
                sessions = self._trading(int(day))
                if isinstance(sessions, CalendarRangeError):
                    for pos in np.unique(dec.entry[idx]):
                        bad[int(pos)] = str(sessions)
                    continue
                if len(sessions) == 0:
                    # An exchange holiday or weekend: no bars, and no keys of that day that no
                    # hand-over would ever clear; counted with the consumers' status.
                    self.r.hincrby(self._status_key, "rejected:non_trading_day", len(idx))
                    continue
                if not self._apply_day(int(day), t.take(idx), sessions):
                    reason = (f"{np.datetime64(int(day), 'D')} was handed over already; "
                              f"HDEL {self.keys.closed} <day> to accept its ticks again")
                    for pos in np.unique(dec.entry[idx]):
                        bad[int(pos)] = reason
        if bad:
            args: list[str | bytes] = []
            for pos, reason in sorted(bad.items()):
                entry_id, fields = present[pos]
                raw = b";".join(k + b"=" + v for k, v in as_dict(fields).items())
                args += [entry_id, reason, raw]
            self.stats.malformed += int(self._dead(
                keys=[LiveKeys.dead(self.o.stream), self._status_key], args=args))
        self.acknowledge(ids)
        self.stats.ticks += len(t)
        self.stats.entries += len(ids)
        last = ids[-1].decode() if isinstance(ids[-1], bytes) else ids[-1]
        self.stats.last_entry_ms = int(last.split("-")[0])

    def acknowledge(self, ids: list[bytes]) -> None:
        """XACK, strictly after the batch's bars and cursor are written."""
        self.r.xack(self.o.stream, self.o.group, *ids)

    def _apply_day(self, day: int, ticks: Ticks, sessions: np.ndarray) -> bool:
        """Fold one day's ticks into its bars; False when the day was handed over."""
        day_text = str(np.datetime64(day, "D"))
        k = self.keys
        state_key = k.state(day_text)
        # Only the symbols of this day's ticks: codes re-packed densely.
        used, codes = np.unique(ticks.symbol, return_inverse=True)
        names = ticks.names[used]
        ticks = Ticks(codes.astype(np.int64), names, ticks.time, ticks.price, ticks.volume,
                      ticks.amount, ticks.tick_id, ticks.high, ticks.low)
        symbols = [str(s) for s in names]
        while True:
            pipe = self.r.pipeline(transaction=False)
            pipe.hget(state_key, VERSION_FIELD)
            pipe.hmget(state_key, symbols)
            version, texts = pipe.execute()
            state = decode_state(texts)
            bars, report = continue_bars(ticks, sessions, state, profile=self.o.profile,
                                         cumulative=self.o.cumulative,
                                         volume_unit=self.o.volume_unit)
            keys, args = self._apply_args(day_text, symbols, state, bars, report)
            args[0] = version or b""
            done = int(self._apply(keys=keys, args=args))
            if done:
                return done > 0
            self.stats.conflicts += 1

    def _apply_args(self, day: str, symbols: list[str], state: SymbolState, bars: Bars,
                    report) -> tuple[list[str], list]:
        k = self.keys
        keys = [k.days, k.symbols(day), k.state(day), k.report(day), k.closed]
        with_bars, inverse = np.unique(bars.symbol.astype(str), return_inverse=True)
        keys += [k.bars(day, s) for s in with_bars.tolist()]
        bar_blob = "".join(f"{ki}\t{field}\t{value}\n" for ki, (field, value) in zip(
            (inverse + 6).tolist(), encode_bars(bars), strict=True))
        counters = {"received": report.received, "kept": report.kept,
                    "duplicates": report.duplicates, "resets": report.resets,
                    **{f"rejected:{r}": report.rejected[r] for r in REASONS}}
        counter_blob = "".join(f"{name}\t{n}\n" for name, n in counters.items() if n)
        args = ["", day, encode_state(symbols, state), bar_blob, counter_blob,
                "".join(f"{s}\n" for s in with_bars.tolist())]
        return keys, args

    # ------------------------------------------------------------------ status

    @property
    def _status_key(self) -> str:
        return self.keys.status(self.o.stream, self.o.group)

    def report(self, window: tuple[float, int]) -> tuple[float, int]:
        """Print and store throughput, lag and pending; returns the next rate window."""
        now = time.monotonic()
        since, ticks0 = window
        rate = (self.stats.ticks - ticks0) / max(now - since, 1e-9)
        try:
            pending = int(self.r.xpending(self.o.stream, self.o.group)["pending"])
            lag = self._lag()
        except redis.ResponseError:
            pending, lag = 0, 0
        # How old the newest applied entry is, while entries wait; nothing waits: no lag.
        waiting = lag > 0 or pending > 0
        lag_ms = (max(int(time.time() * 1000) - self.stats.last_entry_ms, 0)
                  if waiting and self.stats.last_entry_ms else 0)
        status = {
            "consumer": self.o.consumer, "stream": self.o.stream, "group": self.o.group,
            "ticks_per_s": f"{rate:.0f}", "ticks": self.stats.ticks,
            "entries": self.stats.entries, "lag_entries": lag, "pending": pending,
            "lag_ms": lag_ms, "conflicts": self.stats.conflicts,
            "claimed": self.stats.claimed,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.r.hset(self._status_key, mapping=status)
        malformed = self.r.hget(self._status_key, "malformed") or b"0"
        self.echo(f"{self.o.consumer}: {self.stats.ticks} ticks, {rate:,.0f}/s, lag "
                  f"{lag} entries ({lag_ms / 1000:.1f} s behind), "
                  f"{pending} pending, {int(malformed)} malformed (dead-lettered)")
        return now, self.stats.ticks
