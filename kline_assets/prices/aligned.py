"""price_aligned of a window: read (COPY) → screen → align, chunk by chunk, timed per stage.

The window is cut at Tokyo midnights every `chunk_days` days. A chunk edge is a bucket edge,
so every (shop, iPhone, bucket) group lies in one chunk and aligning chunk by chunk gives the
rows of aligning the window at once; each chunk is one index range scan of recorded_at, so
the chunks together read the source once. Memory holds one chunk (the source rows, their
CSV, the aligned frame), not the month: 3× the demo's shops stays under 2 GiB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from kline_assets.kernels.align import bucket_start_us, latest_per_bucket
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.source import (
    IPHONE_TABLE,
    PRICE_TABLE,
    SHOP_TABLE,
    Screened,
    known_ids,
    read_records,
    screen_records,
)
from kline_assets.resources.postgres import PostgresResource

CHUNK_DAYS = 2
"""Days of records read and aligned at once: ~140k records per day at 3× the demo's shops."""
SAMPLE_SIZE = 20


def _nullable_uint32(values: np.ndarray) -> pd.arrays.IntegerArray:
    """-1 marks NULL (see screen_records)."""
    return pd.arrays.IntegerArray(np.where(values < 0, 0, values).astype(np.uint32), values < 0)


def build_price_aligned(columns: dict[str, np.ndarray], run_id: str) -> pd.DataFrame:
    """The price_aligned rows of screened records: one per (shop, iphone, bucket)."""
    winners = latest_per_bucket(
        columns["shop_id"], columns["iphone_id"], columns["recorded_us"], columns["id"]
    )
    recorded = columns["recorded_us"][winners]
    bucket = bucket_start_us(recorded)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "bucket": pd.to_datetime(bucket, unit="us", utc=True).tz_convert(PRICE_TZ),
            "shop_id": columns["shop_id"][winners].astype(np.uint32),
            "iphone_id": columns["iphone_id"][winners].astype(np.uint32),
            "price_new": columns["price_new"][winners].astype(np.uint32),
            "price_a": _nullable_uint32(columns["price_grade_a"][winners]),
            "price_b": _nullable_uint32(columns["price_grade_b"][winners]),
            "alignment_diff_sec": ((recorded - bucket) // 1_000_000).astype(np.int32),
            "record_time": pd.to_datetime(
                recorded // 1_000_000 * 1_000_000, unit="us", utc=True
            ).tz_convert(PRICE_TZ),
        }
    )


def chunk_windows(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut every `days` days from `start` (a bucket edge: a month or bucket start)."""
    if days < 1:
        raise ValueError(f"chunk days must be ≥ 1, got {days}")
    out, a = [], start
    while a < end:
        b = min(end, a + timedelta(days=days))
        out.append((a, b))
        a = b
    return out


@dataclass
class AlignedStream:
    """The price_aligned rows of [start, end) as frames, one per chunk; the counts, timings and
    rejections (`screened`) are complete once `frames()` is exhausted."""

    postgres: PostgresResource
    run_id: str
    start: datetime
    end: datetime
    iphone_ids: list[int] | None = None
    shop_ids: list[int] | None = None
    chunk_days: int = CHUNK_DAYS
    screened: Screened = field(default_factory=lambda: Screened(columns={}))
    metadata: dict[str, float | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked now, in the asset's body: a missing table or a store that is down fails
        # there, clearly, rather than later inside the writer.
        t0 = time.perf_counter()
        self.postgres.require_tables([PRICE_TABLE, SHOP_TABLE, IPHONE_TABLE])
        self._known = (known_ids(self.postgres, SHOP_TABLE),
                       known_ids(self.postgres, IPHONE_TABLE))
        self._catalog_s = time.perf_counter() - t0

    def frames(self) -> Iterator[pd.DataFrame]:
        """The chunks' rows in order. The next chunk's COPY runs in a thread while this one is
        aligned and written (two chunks in memory at most), so the read is mostly hidden."""
        shops, iphones = self._known
        read_s, align_s = self._catalog_s, 0.0
        counts = dict.fromkeys(("rows_read", "rows_kept", "rows_aligned"), 0)
        samples = []
        windows = chunk_windows(self.start, self.end, self.chunk_days)

        def read(k: int):
            return read_records(self.postgres, *windows[k], self.iphone_ids, self.shop_ids)

        with ThreadPoolExecutor(1, thread_name_prefix="kline-copy") as pool:
            pending = pool.submit(read, 0)
            for k in range(len(windows)):
                t0 = time.perf_counter()
                table = pending.result()
                if k + 1 < len(windows):
                    pending = pool.submit(read, k + 1)
                t1 = time.perf_counter()
                screened = screen_records(table, shops, iphones, SAMPLE_SIZE)
                frame = build_price_aligned(screened.columns, self.run_id)
                read_s, align_s = read_s + t1 - t0, align_s + time.perf_counter() - t1
                counts["rows_read"] += table.num_rows
                counts["rows_kept"] += len(screened.columns["id"])
                counts["rows_aligned"] += len(frame)
                for reason, n in screened.rejected.items():
                    self.screened.rejected[reason] = self.screened.rejected.get(reason, 0) + n
                self.screened.grade_nulled += screened.grade_nulled
                if len(screened.sample):
                    samples.append(screened.sample)
                del table, screened
                yield frame
        if samples:
            self.screened.sample = pd.concat(samples).head(SAMPLE_SIZE)
        self.metadata = {
            "rows_read": counts["rows_read"],
            "rows_rejected": self.screened.rejected_total,
            "rows_aligned": counts["rows_aligned"],
            "duplicates_collapsed": counts["rows_kept"] - counts["rows_aligned"],
            "grade_prices_set_null": self.screened.grade_nulled,
            "read_seconds": round(read_s, 3),  # waiting for reads (the rest overlapped)
            "align_seconds": round(align_s, 3),
            "chunk_days": self.chunk_days,
        }


@dataclass
class AlignedMonth:
    frame: pd.DataFrame
    screened: Screened
    metadata: dict[str, float | int]


def align_month(
    postgres: PostgresResource,
    run_id: str,
    start: datetime,
    end: datetime,
    iphone_ids: list[int] | None = None,
    shop_ids: list[int] | None = None,
    chunk_days: int = CHUNK_DAYS,
) -> AlignedMonth:
    """The whole window's rows in one frame (small windows: the live refresh, benches)."""
    stream = AlignedStream(postgres, run_id, start, end, iphone_ids, shop_ids, chunk_days)
    frames = list(stream.frames())
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return AlignedMonth(frame=frame, screened=stream.screened, metadata=stream.metadata)
