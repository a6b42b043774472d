"""Stored runs for the run-workflow tests: a few rows per price table and month of three runs
that differ where a compare, drop or promote has something to find."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kline_assets.prices.tables import PRICE_TABLES
from kline_assets.resources.clickhouse.sql import replace_partitions

TZ = "Asia/Tokyo"


def _buckets(month: str, n: int, skip: tuple[int, ...] = ()) -> list[pd.Timestamp]:
    start = pd.Timestamp(f"{month}-01", tz=TZ)
    return [start + pd.Timedelta(minutes=15 * i) for i in range(n) if i not in skip]


def _run_frames(run: str, months: list[str], rng: np.random.Generator, shift: float,
                skip: tuple[int, ...] = (), extra_scope: str | None = None,
                cohort_months: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """A few rows per table and month; `shift` offsets the values between runs."""
    aligned, agg, feats = [], [], []
    for month in months:
        for bucket in _buckets(month, 4, skip):
            for shop in (1, 2):
                price = 100_000 + int(shift) + shop * 10 + int(rng.integers(0, 5))
                aligned.append({"run_id": run, "bucket": bucket, "shop_id": shop,
                                "iphone_id": 10, "price_new": price,
                                "price_a": None if (shop == 2 and bucket.hour == 0
                                                    and bucket.minute == 30) else price - 500,
                                "price_b": price - 900, "alignment_diff_sec": 60 * shop,
                                "record_time": bucket + pd.Timedelta(seconds=60 * shop)})
            mean = 100_015.0 + shift + rng.normal()
            agg.append({"run_id": run, "bucket": bucket, "iphone_id": 10, "mean": mean,
                        "median": mean + 1, "std": None if bucket.minute == 15 else 7.0 + shift,
                        "shop_count": 2, "dispersion": 7.0 / mean, "quorum_met": 0})
            scopes = ["iphone:10", *([extra_scope] if extra_scope else [])]
            if month in (cohort_months if cohort_months is not None else months):
                scopes.append("cohort:pro")
            for scope in scopes:
                feats.append({"run_id": run, "bucket": bucket, "scope": scope,
                              "mean": None if (scope == "cohort:pro" and bucket.minute == 45)
                              else mean, "shop_count": 2, "ema_120": mean - 3 + shift,
                              "sma_120": None if bucket.minute == 0 else mean - 2})
    frames = {"price_aligned": pd.DataFrame(aligned), "cross_shop_agg": pd.DataFrame(agg),
              "features_wide": pd.DataFrame(feats)}
    frames["price_aligned"]["price_a"] = frames["price_aligned"]["price_a"].astype("Int64")
    return frames


def _partitions_of(table: str, frame: pd.DataFrame) -> list[tuple]:
    month = frame["bucket"].dt.year * 100 + frame["bucket"].dt.month
    cols = [frame["run_id"], month]
    if table == "features_wide":
        cols.append(frame["scope"].str.split(":").str[0])
    return sorted(set(zip(*cols, strict=True)))


def load_runs(ch) -> None:
    """live: 2025-09..11 (cohort 09 and 11); backfill_v3: 10..11 (cohort 10 only, other values,
    a skipped bucket, one extra bucket, no iphone:11); backfill_v2: one month."""
    rng = np.random.default_rng(3)
    runs = {
        "live": _run_frames("live", ["2025-09", "2025-10", "2025-11"], rng, 0.0,
                            extra_scope="iphone:11", cohort_months=["2025-09", "2025-11"]),
        "backfill_v3": _run_frames("backfill_v3", ["2025-10", "2025-11"], rng, 2.5, skip=(2,),
                                   cohort_months=["2025-10"]),
        "backfill_v2": _run_frames("backfill_v2", ["2025-10"], rng, 1.0),
    }
    with ch.client() as client:
        for table in PRICE_TABLES:
            frame = pd.concat([f[table] for f in runs.values()], ignore_index=True)
            extra = runs["backfill_v3"][table].iloc[[0]].copy()  # a bucket live lacks
            extra["bucket"] = pd.Timestamp("2025-11-01 02:00", tz=TZ)
            if "record_time" in extra:
                extra["record_time"] = extra["bucket"]
            frame = pd.concat([frame, extra], ignore_index=True)
            replace_partitions(client, ch.table(table), frame, _partitions_of(table, frame))
