"""Bench: a whole-market day of vendor 1-minute bars through Redis into PostgreSQL.

5,000 symbols × 240 one-minute bars = 1.2M bars. Measured in the same run, on loopback:

  copy       the ceiling: a plain `COPY stock_1min_qfq FROM STDIN (FORMAT csv)` of the same
             rows from a CSV file into an empty table (what a bulk load of a file costs)
  pipeline   a publisher process XADDs the bars (one entry per bar, named fields, the stream
             contract) while `kline bars ingest`'s loop in this process consumes them: from
             the publisher's first entry to the consumer's last commit — screening, staging
             COPY, upsert, stream position and XACK included
  ingest     the consumer alone, on the same bars already in the stream

Prints bars/s of each and `ratio = pipeline seconds / copy seconds`. Target: the day in ≤ 30 s
(≥ 40,000 bars/s) and within 3× of the COPY. The table is checked against the file.

    python bench/vendor_ingest.py [--symbols 5000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bench_postgres

from kline_assets.stocks.sessions import BAR_END_MINUTES
from kline_assets.stocks.vendor.codec import encode
from kline_assets.stocks.vendor.ingest import IngestOptions, Ingestor
from kline_assets.stocks.vendor.keys import VendorKeys
from kline_assets.stocks.vendor.publish import publish_lines
from kline_assets.stocks.vendor.store import ensure_schema

URL = os.environ.get("KLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
KEYS = VendorKeys("kline_bench_vendor")
STREAM = KEYS.stream
DAY = "2025-10-09"


def make_day(symbols: int, seed: int = 3) -> pa.Table:
    """Consistent random-walk bars of `symbols` codes over one full session day."""
    rng = np.random.default_rng(seed)
    minutes = np.asarray(BAR_END_MINUTES, dtype=np.int64)
    n = symbols * len(minutes)
    frame = (np.datetime64(DAY, "m") + np.tile(minutes, symbols)).astype("datetime64[us]")
    codes = np.array([f"{600000 + i:06d}.SH" for i in range(symbols)], dtype=object)
    close = (10 + rng.random(symbols)[:, None] * 50
             + np.cumsum(rng.normal(0, 0.02, (symbols, len(minutes))), axis=1)).ravel()
    open_ = np.roll(close, 1)
    open_[:: len(minutes)] = close[:: len(minutes)]
    spread = np.abs(rng.normal(0, 0.01, n))
    volume = rng.integers(100, 100_000, n).astype(np.float64)
    order = np.argsort(frame, kind="stable")  # a feed sends the market minute by minute
    return pa.table({
        "symbol": pa.array(np.repeat(codes, len(minutes))[order].tolist(), pa.string()),
        "period": pa.array(np.ones(n, dtype=np.int64)),
        "frame": pa.array(frame[order], pa.timestamp("us")),
        "open": open_[order], "high": (np.maximum(open_, close) + spread)[order],
        "low": (np.minimum(open_, close) - spread)[order], "close": close[order],
        "volume": volume[order], "amount": (volume * close)[order],
    })


def clear(client: redis.Redis) -> None:
    doomed = list(client.scan_iter(match=f"{KEYS.prefix}:*", count=1000))
    for lo in range(0, len(doomed), 1000):
        client.delete(*doomed[lo:lo + 1000])


def publisher(lines: list[bytes], out: mp.Queue) -> None:
    client = redis.Redis.from_url(URL)
    t0 = time.time()
    publish_lines(client, STREAM, lines)
    out.put((t0, time.time()))


def table_sum(pg) -> tuple[int, float]:
    with pg.connect() as conn:
        n, s = conn.execute("SELECT count(*), sum(close * volume) FROM stock_1min_qfq").fetchone()
    return int(n), float(s)


def copy_ceiling(pg, day: pa.Table, path: Path) -> float:
    rows = pa.table({"time": day["frame"], "code": day["symbol"],
                     **{c: day[c] for c in ("open", "high", "low", "close", "volume",
                                            "amount")}})
    pacsv.write_csv(rows, path, pacsv.WriteOptions(include_header=False))
    t0 = time.perf_counter()
    with pg.connect() as conn, conn.cursor().copy(
            "COPY stock_1min_qfq (time, code, open, high, low, close, volume, amount) "
            "FROM STDIN (FORMAT csv)") as copy, open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    return time.perf_counter() - t0


def ingest(client: redis.Redis, pg, batch: int, group: str) -> tuple[Ingestor, float]:
    worker = Ingestor(client, pg, IngestOptions(stream=STREAM, group=group, consumer="bench",
                                                batch=batch, until_idle=0.3, block_ms=20,
                                                report_every=3600), KEYS)
    t0 = time.perf_counter()
    worker.run()
    return worker, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    day = make_day(args.symbols)
    n = day.num_rows
    lines = encode(day)
    client = redis.Redis.from_url(URL)
    clear(client)
    with bench_postgres("kline_bench_vendor") as pg:
        ensure_schema(pg)
        copy_s = copy_ceiling(pg, day, Path(f"/tmp/kline_bench_vendor_{os.getpid()}.csv"))
        want = table_sum(pg)
        with pg.connect() as conn:
            conn.execute("TRUNCATE stock_1min_qfq")

        # The pipeline: publisher and consumer at once.
        client.xgroup_create(STREAM, "bench", id="0", mkstream=True)
        out: mp.Queue = mp.get_context("fork").Queue()
        proc = mp.get_context("fork").Process(target=publisher, args=(lines, out))
        proc.start()
        worker, _ = ingest(client, pg, args.batch, "bench")
        done = time.time() - 0.3  # until_idle waited 0.3 s after the last commit
        pub_start, pub_end = out.get()
        proc.join()
        pipeline_s = done - pub_start
        got = table_sum(pg)
        assert got[0] == want[0] and abs(got[1] - want[1]) <= 1e-9 * abs(want[1]), (got, want)
        assert worker.stats.inserted == n, worker.stats

        # The consumer alone, on the bars already in the stream (a second group; the table is
        # emptied, and the new group's position starts at 0).
        with pg.connect() as conn:
            conn.execute("TRUNCATE stock_1min_qfq")
        client.xgroup_create(STREAM, "alone", id="0")
        _, alone_s = ingest(client, pg, args.batch, "alone")
        alone_s -= 0.3
        assert table_sum(pg)[0] == want[0]
    clear(client)
    publish_s = pub_end - pub_start
    print(f"{n:,} bars ({args.symbols:,} symbols × 240), batch {args.batch}")
    print(f"  copy      {copy_s:6.2f} s  {n / copy_s:10,.0f} bars/s   (plain COPY of the file)")
    print(f"  publish   {publish_s:6.2f} s  {n / publish_s:10,.0f} bars/s   (XADD, one entry "
          "per bar)")
    print(f"  pipeline  {pipeline_s:6.2f} s  {n / pipeline_s:10,.0f} bars/s   (publish + ingest "
          "at once, to the last commit)")
    print(f"  ingest    {alone_s:6.2f} s  {n / alone_s:10,.0f} bars/s   (the consumer alone)")
    print(f"ratio = pipeline / copy = {pipeline_s / copy_s:.2f} (target ≤ 3); "
          f"ingest / copy = {alone_s / copy_s:.2f}; day in {pipeline_s:.1f} s (target ≤ 30)")


if __name__ == "__main__":
    main()
