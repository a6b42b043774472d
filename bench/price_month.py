"""Bench: one demo-scale month (24 shops × 40 iPhones, ≈2.1M records, plus its warm-up month)
end to end through every price asset, in one Dagster run.

Prints seconds per asset (from materialization metadata), wall seconds, peak RSS, and the
ratio of the whole run to a baseline measured in the same run: one bare COPY read of the
month's source rows — "how many source reads does the whole pipeline cost".

    python bench/price_month.py [--shops 24] [--iphones 40] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    QUIET_RUN,
    RssSampler,
    bench_clickhouse,
    bench_postgres,
    peak_rss_mib,
    price_assets,
    step_peaks,
)
from dagster import DagsterInstance, materialize

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.load import load_demo
from kline_assets.prices.partitions import create_run
from kline_assets.prices.source import read_records
from kline_assets.resources import ClickHouseIOManager, TorchDeviceResource

ASSETS = price_assets()
ALIGNED, FEATURE_ASSETS = ASSETS[1], ASSETS[2:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=24)
    ap.add_argument("--iphones", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfg = DemoConfig(start="2025-10-01", months=2, n_shops=args.shops, n_iphones=args.iphones,
                     stock_codes=1, stock_months=1)
    with bench_postgres("kline_bench_price_month") as pg, bench_clickhouse("bench_month") as ch:
        t0 = time.perf_counter()
        loaded = load_demo(pg, cfg)
        print(f"source loaded in {time.perf_counter() - t0:.1f}s: {loaded}")
        resources = {"postgres": pg, "clickhouse": ch,
                     "clickhouse_io_manager": ClickHouseIOManager(clickhouse=ch),
                     "torch_device": TorchDeviceResource(device=args.device)}
        instance = DagsterInstance.ephemeral()
        create_run(instance, "bench")
        assets = ASSETS
        warm = materialize(assets, selection=[ALIGNED, FEATURE_ASSETS[0]],
                           partition_key="2025-10-01|bench", resources=resources,
                           instance=instance, run_config=QUIET_RUN)
        assert warm.success

        start = pd.Timestamp("2025-11-01", tz="Asia/Tokyo").to_pydatetime()
        end = pd.Timestamp("2025-12-01", tz="Asia/Tokyo").to_pydatetime()
        t0 = time.perf_counter()
        with RssSampler() as base_sampler:
            baseline_rows = read_records(pg, start, end).num_rows
        baseline = time.perf_counter() - t0

        t0 = time.perf_counter()
        with RssSampler() as sampler:
            result = materialize(assets, selection=[ALIGNED, *FEATURE_ASSETS],
                                 partition_key="2025-11-01|bench", resources=resources,
                                 instance=instance, run_config=QUIET_RUN)
        wall = time.perf_counter() - t0
        assert result.success
    peaks = step_peaks(instance, result.run_id, sampler)
    print(f"{'asset':<16}{'rows':>12}{'compute s':>11}{'write s':>9}{'peak RSS MiB':>14}")
    for node in ("price_aligned", "cross_shop_agg", "features_wide", "cohorts"):
        md = {k: v.value for k, v in
              result.asset_materializations_for_node(node)[0].metadata.items()}
        compute = sum(v for k, v in md.items() if k.endswith("_seconds") and k != "write_seconds")
        rows = md.get("dagster/row_count", md.get("rows_written", 0))
        print(f"{node:<16}{rows:>12,}{compute:>11.2f}{md['write_seconds']:>9.2f}"
              f"{peaks.get(node, 0):>14,.0f}")
    base_peak = max(mib for _, mib in base_sampler.samples)
    print(f"baseline: one COPY read of the month's {baseline_rows:,} source rows: "
          f"{baseline:.2f}s, peak RSS {base_peak:,.0f} MiB")
    run_peak = max(mib for _, mib in sampler.samples)
    print(f"end to end (one Dagster run, all price assets): {wall:.2f}s; peak RSS during the "
          f"run {run_peak:,.0f} MiB (sampled; target ≤ 2,048), of the whole process (the "
          f"demo load, the warm-up month and the baseline read included) "
          f"{peak_rss_mib():,.0f} MiB")
    print(f"ratio = {wall / baseline:.2f}x the bare source read (lower is better)")


if __name__ == "__main__":
    main()
