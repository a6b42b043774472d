"""Bench: Level-1 snapshots through publish → Redis stream → consumer → 1-minute bars in Redis.

1,000 symbols × the first `--waves` 3-second snapshot waves of bench/ticks.py's day (cumulative
volume/amount, day high/low), in feed order. A publisher process appends them to a stream
while one consumer (this process, `kline ticks consume`'s loop) folds them into bars in Redis,
both on loopback. Measured in the same run:

  pipeline   snapshots/s from the publisher's first entry to the consumer's last applied
             batch, and the lag at the end (how long after the publisher's last entry the
             consumer was done, and how many entries were unapplied at that moment)
  ceiling    the batch kernel (kernels.bars.ticks_to_bars) on the same snapshots in memory

Prints both and `ratio = pipeline / ceiling`. Target: pipeline ≥ 50,000 snapshots/s on 2 cores.
The bars in Redis are checked against the ceiling's bars.

With `--shards N`: the same snapshots published once to one stream and once split by symbol
into N shard streams (`kline ticks publish --shards N`), then drained by one consumer process
on the one stream vs N consumer processes, one per shard, started together — same ticks, same
run, `--rounds` alternations (best of each). Prints `ratio = sharded / single` (target ≥ 1.6×
for 2 shards on 2 cores) and the whole-market day (24M snapshots) projected from the measured
rates and the number of cores.

    python bench/consumer.py [--symbols 1000] [--waves 600] [--batch 5000] [--rate 50000]
    python bench/consumer.py --shards 2 [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ticks import DAY, make_ticks

from kline_assets.kernels.bars import Ticks, ticks_to_bars
from kline_assets.stocks.sessions import trading_days
from kline_assets.stocks.ticks.codec import encode
from kline_assets.stocks.ticks.consume import Consumer, ConsumerOptions
from kline_assets.stocks.ticks.keys import LiveKeys, shard_of, shard_stream
from kline_assets.stocks.ticks.live import read_day
from kline_assets.stocks.ticks.publish import publish_lines, register_shards

URL = os.environ.get("KLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEYS = LiveKeys("kline_bench")
STREAM = "kline_bench:ticks"
GROUP = "bench"


def clear(client: redis.Redis) -> None:
    doomed = list(client.scan_iter(match="kline_bench:*", count=1000))
    for lo in range(0, len(doomed), 1000):
        client.delete(*doomed[lo:lo + 1000])


def publisher(lines: list[bytes], done: mp.Queue, rate: float | None) -> None:
    client = redis.Redis.from_url(URL)
    t0 = time.time()
    publish_lines(client, lines, STREAM, rate=rate)
    t1 = time.time()
    group = client.xinfo_groups(STREAM)[0]
    behind = int(group.get("lag") or 0) + int(group["pending"])
    done.put((t0, t1, behind))


class TimedConsumer(Consumer):
    """Records when each batch was applied and stops once every entry is."""

    total = 0
    last_applied = 0.0

    def process(self, entries: list) -> None:
        super().process(entries)
        self.last_applied = time.time()
        if self.stats.entries >= self.total:
            self.stopping = True


def take_waves(ticks: Ticks, symbols: int, waves: int) -> Ticks:
    return ticks.take(np.arange(min(waves * symbols, len(ticks))))


WHOLE_MARKET = 24_000_000  # snapshots of a whole-market day (~5,000 symbols, 3-second waves)


def drain(stream: str, keys: LiveKeys, total: int, batch: int, go, out: mp.Queue) -> None:
    """One consumer process: wait for the start signal, drain `stream` of its `total`
    entries, report (start, last applied, ticks)."""
    client = redis.Redis.from_url(URL)
    consumer = TimedConsumer(client, ConsumerOptions(
        stream=stream, group=GROUP, consumer=f"bench-{os.getpid()}", batch=batch, block_ms=100,
        report_every=3600, cumulative=True), keys)
    consumer.total = total
    consumer.ensure_group()
    go.wait()
    start, cpu = time.time(), time.process_time()
    consumer.run()
    out.put((start, consumer.last_applied, consumer.stats.ticks, time.process_time() - cpu))


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_consumers(streams: list[tuple[str, LiveKeys, int]], batch: int
                  ) -> tuple[float, float, float]:
    """Start one consumer process per stream together; (seconds until the last is done,
    CPU seconds of the consumers, CPU seconds of the Redis server meanwhile)."""
    ctx = mp.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=drain, args=(stream, keys, total, batch, go, out))
             for stream, keys, total in streams]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every process connected and its group created
    server = redis.Redis.from_url(URL)
    before = redis_cpu(server)
    go.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    assert sum(r[2] for r in results) == sum(t for _, _, t in streams)
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return wall, sum(r[3] for r in results), redis_cpu(server) - before


def sharded_main(args: argparse.Namespace, ticks: Ticks, lines: list[bytes], want) -> None:
    n, shards = len(lines), args.shards
    client = redis.Redis.from_url(URL)
    route = np.asarray(shard_of((str(s) for s in ticks.names), shards))[ticks.symbol]
    single_s, sharded_s = [], []
    same = True
    for _ in range(args.rounds):
        clear(client)
        publish_lines(client, lines, STREAM)
        single_s.append(run_consumers([(STREAM, KEYS, n)], args.batch))
        got = read_day(client, KEYS, DAY)
        same &= len(got) == len(want) and np.array_equal(got.volume, want.volume)
        clear(client)
        register_shards(client, KEYS, shards)
        publish_lines(client, lines, STREAM, route=route)
        sharded_s.append(run_consumers(
            [(shard_stream(STREAM, s), KEYS.shard(s), int((route == s).sum()))
             for s in range(shards)], args.batch))
        got = read_day(client, KEYS, DAY)  # every shard's bars, as the readers see them
        same &= len(got) == len(want) and np.array_equal(got.volume, want.volume) \
            and np.array_equal(got.close, want.close)
    clear(client)
    (one_s, one_cpu, one_redis), (many_s, many_cpu, many_redis) = min(single_s), min(sharded_s)
    single, sharded = n / one_s, n / many_s
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    ratio = sharded / single
    # The projection counts CPU, not wall time (the machine is shared): snapshots per CPU
    # second of consumers + Redis in the sharded run, times the cores; and one Redis server is
    # one thread, so its own CPU per snapshot caps a single server whatever the cores.
    per_core = n / (many_cpu + many_redis)
    redis_cap = n / many_redis if many_redis else float("inf")
    print(f"{n:,} snapshots, {shards} shards, {cores} cores (load average {load:.1f}), "
          f"batch {args.batch}, best of {args.rounds}")
    print(f"one stream, one consumer   {one_s:7.2f} s  {single:11,.0f} snapshots/s   CPU: "
          f"consumer {one_cpu:.2f} s, Redis {one_redis:.2f} s")
    print(f"{shards} shards, {shards} consumers    {many_s:7.2f} s  {sharded:11,.0f} "
          f"snapshots/s   CPU: consumers {many_cpu:.2f} s, Redis {many_redis:.2f} s")
    # The work is CPU-bound: consumers + Redis need (one_cpu + one_redis) CPU seconds; on
    # `cores` cores they cannot take less wall time than that divided by the cores.
    bound = min(shards, cores) if not one_s else min(
        float(shards), one_s * min(shards, cores) / (one_cpu + one_redis))
    print(f"CPU bound of the ratio on {cores} cores: {bound:.2f}× (consumer + Redis CPU of the "
          "single run spread over the cores; other processes on the machine lower it further)")
    got_one, got_many = (one_cpu + one_redis) / one_s, (many_cpu + many_redis) / many_s
    print(f"cores obtained (consumers + Redis CPU / wall): single {got_one:.2f}, sharded "
          f"{got_many:.2f} of {cores} — the sharded run goes faster only by the cores the "
          "machine gives it")
    print(f"ratio = sharded / single = {ratio:.2f}× (target ≥ 1.6× for 2 shards on 2 cores: "
          f"{'met' if ratio >= 1.6 else 'NOT met'}); bars of both equal the kernel's: {same}")
    print(f"per CPU second: {per_core:,.0f} snapshots (consumers + Redis); one Redis server "
          f"alone sustains ~{redis_cap:,.0f}/s (its CPU counts every client of the server, so "
          "this is conservative)")
    for c in sorted({cores, 8, 16}):
        cluster = per_core * c
        single_redis = min(cluster, redis_cap)
        print(f"whole-market day ({WHOLE_MARKET / 1e6:.0f}M snapshots) on {c:2d} cores, "
              f"{c} shards: ~{WHOLE_MARKET / single_redis:5.0f} s with one Redis server"
              f"{' (Redis-bound)' if single_redis < cluster else ''}, "
              f"~{WHOLE_MARKET / cluster:5.0f} s with the shards spread over a Redis Cluster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=600, help="3-second snapshot waves")
    parser.add_argument("--batch", type=int, default=5000, help="entries per XREADGROUP")
    parser.add_argument("--rate", type=float, default=None,
                        help="publish at this many snapshots/s (default: as fast as possible, "
                        "which measures the consumer's ceiling; a rate shows whether it keeps up)")
    parser.add_argument("--shards", type=int, default=None,
                        help="compare N consumers on N shard streams with one on one stream")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --shards")
    args = parser.parse_args()

    ticks = take_waves(make_ticks(args.symbols), args.symbols, args.waves)
    n = len(ticks)
    lines = encode(ticks)
    print(f"{n:,} snapshots of {args.symbols} symbols on {DAY} ({args.waves} waves), "
          f"Redis {URL}")

    days = trading_days(DAY, DAY).values.astype("datetime64[D]")
    t0 = time.perf_counter()
    want, _ = ticks_to_bars(ticks, days, cumulative=True)
    ceiling_s = time.perf_counter() - t0
    ceiling = n / ceiling_s

    if args.shards:
        sharded_main(args, ticks, lines, want)
        return
    client = redis.Redis.from_url(URL)
    clear(client)
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    consumer = TimedConsumer(client, ConsumerOptions(
        stream=STREAM, group=GROUP, consumer="bench", batch=args.batch, block_ms=100,
        report_every=3600, cumulative=True), KEYS)
    consumer.total = n
    done: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=publisher, args=(lines, done, args.rate))
    proc.start()
    consumer.run()
    proc.join()
    pub_start, pub_end, behind = done.get()
    elapsed = consumer.last_applied - pub_start
    pipeline = n / elapsed
    lag_s = max(consumer.last_applied - pub_end, 0.0)

    got = read_day(client, KEYS, DAY)
    same = (len(got) == len(want) and np.array_equal(got.volume, want.volume)
            and np.array_equal(got.close, want.close))
    clear(client)

    print(f"publisher  {pub_end - pub_start:7.2f} s  {n / (pub_end - pub_start):11,.0f} "
          "snapshots/s appended")
    print(f"pipeline   {elapsed:7.2f} s  {pipeline:11,.0f} snapshots/s publish → stream → "
          f"bars (batch {args.batch})")
    print(f"lag at end {lag_s:7.2f} s after the last entry; {behind:,} entries unapplied when "
          "the publisher finished")
    print(f"ceiling    {ceiling_s:7.2f} s  {ceiling:11,.0f} snapshots/s (batch kernel, memory)")
    if args.rate:
        verdict = (f"publishing at {args.rate:,.0f}/s, the consumer finished {lag_s:.2f} s "
                   "after the last entry")
    else:
        verdict = f"target ≥ 50,000 snapshots/s: {'met' if pipeline >= 50_000 else 'NOT met'}"
    print(f"ratio = pipeline / ceiling = {pipeline / ceiling:.3f}; {verdict}; bars equal the "
          f"kernel's: {same}")


if __name__ == "__main__":
    main()
