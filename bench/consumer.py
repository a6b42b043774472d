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

    python bench/consumer.py [--symbols 1000] [--waves 600] [--batch 5000] [--rate 50000]
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
from kline_assets.stocks.ticks.keys import LiveKeys
from kline_assets.stocks.ticks.live import read_day
from kline_assets.stocks.ticks.publish import publish_lines

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=600, help="3-second snapshot waves")
    parser.add_argument("--batch", type=int, default=5000, help="entries per XREADGROUP")
    parser.add_argument("--rate", type=float, default=None,
                        help="publish at this many snapshots/s (default: as fast as possible, "
                        "which measures the consumer's ceiling; a rate shows whether it keeps up)")
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
