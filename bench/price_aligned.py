"""Bench: one demo-scale month of raw records (≈2.5M rows) → price_aligned in ClickHouse.

The project's path (COPY → pyarrow → NumPy lexsort → Arrow insert + REPLACE PARTITION) against
the naive baseline measured in the same run (pd.read_sql → pandas sort/groupby → insert_df).
Prints seconds per stage and `ratio = baseline / project` (target ≥ 3).

    python bench/price_aligned.py [--shops 24] [--iphones 40]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
from _common import bench_clickhouse, bench_postgres, peak_rss_mib, timed

from kline_assets.demo.catalog import DemoConfig, generate_catalog
from kline_assets.demo.prices import generate_price_records
from kline_assets.prices.aligned import align_month
from kline_assets.prices.source import PRICE_TABLE
from kline_assets.resources.clickhouse.sql import replace_partitions
from kline_assets.resources.pgcopy import copy_table


def load_month(pg, cfg: DemoConfig) -> int:
    catalog = generate_catalog(cfg)
    records = generate_price_records(cfg)
    with pg.connect() as conn:
        for table in ("shop", "iphone"):
            copy_table(conn, table, pa.Table.from_pandas(catalog[table], preserve_index=False))
        copy_table(conn, PRICE_TABLE, pa.Table.from_pandas(records, preserve_index=False))
        conn.execute("ANALYZE purchasing_shop_price_record")
    return len(records)


def project(pg, ch, start, end) -> dict[str, float]:
    t: dict[str, float] = {}
    with timed(t, "total"):
        aligned = align_month(pg, "bench_project", start, end)
        with timed(t, "write"), ch.client() as client:
            month = start.year * 100 + start.month
            replace_partitions(client, ch.table("price_aligned"), aligned.frame,
                               [("bench_project", month)])
    t["read"] = aligned.metadata["read_seconds"]
    t["align"] = aligned.metadata["align_seconds"]
    t["rows"] = len(aligned.frame)
    return t


def baseline(pg, ch, start, end) -> dict[str, float]:
    t: dict[str, float] = {}
    with timed(t, "total"):
        with timed(t, "read"), pg.connect() as conn, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns about non-SQLAlchemy connections
            df = pd.read_sql(
                "SELECT id, shop_id, iphone_id, price_new, price_grade_a, price_grade_b, "
                "recorded_at FROM purchasing_shop_price_record "
                "WHERE recorded_at >= %s AND recorded_at < %s", conn, params=(start, end))
            known = pd.read_sql("SELECT id FROM shop", conn).id, pd.read_sql(
                "SELECT id FROM iphone", conn).id
            df = df[df.price_new.notna() & (df.price_new > 0) & df.shop_id.isin(known[0])
                    & df.iphone_id.isin(known[1])]
        with timed(t, "align"):
            df["recorded_at"] = pd.to_datetime(df.recorded_at, utc=True).dt.tz_convert("Asia/Tokyo")
            df["bucket"] = df.recorded_at.dt.floor("15min")
            last = (df.sort_values(["recorded_at", "id"])
                    .groupby(["bucket", "shop_id", "iphone_id"]).last().reset_index())
            out = pd.DataFrame({
                "run_id": "bench_baseline", "bucket": last.bucket,
                "shop_id": last.shop_id.astype("uint32"),
                "iphone_id": last.iphone_id.astype("uint32"),
                "price_new": last.price_new.astype("uint32"),
                "price_a": last.price_grade_a.astype("UInt32"),
                "price_b": last.price_grade_b.astype("UInt32"),
                "alignment_diff_sec": (last.recorded_at - last.bucket).dt.total_seconds()
                .astype("int32"),
                "record_time": last.recorded_at.dt.floor("s"),
            })
        with timed(t, "write"), ch.client() as client:
            client.insert_df(ch.table("price_aligned"), out)
    t["rows"] = len(out)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=24)
    ap.add_argument("--iphones", type=int, default=40)
    args = ap.parse_args()
    cfg = DemoConfig(months=1, n_shops=args.shops, n_iphones=args.iphones)
    start = pd.Timestamp(cfg.start, tz="Asia/Tokyo").to_pydatetime()
    end = (pd.Timestamp(cfg.start, tz="Asia/Tokyo") + pd.offsets.MonthBegin(1)).to_pydatetime()
    with bench_postgres("kline_bench_price_aligned") as pg, bench_clickhouse("bench") as ch:
        t0 = time.perf_counter()
        n = load_month(pg, cfg)
        print(f"source: {n:,} raw records for {cfg.start[:7]} loaded in "
              f"{time.perf_counter() - t0:.1f}s")
        base = baseline(pg, ch, start, end)
        ours = project(pg, ch, start, end)
    assert ours["rows"] == base["rows"], (ours["rows"], base["rows"])
    print(f"{'stage':<8}{'baseline s':>12}{'project s':>12}{'ratio':>8}")
    for stage in ("read", "align", "write", "total"):
        print(f"{stage:<8}{base[stage]:>12.2f}{ours[stage]:>12.2f}"
              f"{base[stage] / max(ours[stage], 1e-9):>8.1f}")
    print(f"rows aligned: {ours['rows']:,}; peak RSS {peak_rss_mib():,.0f} MiB")
    print(f"ratio = {base['total'] / ours['total']:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
