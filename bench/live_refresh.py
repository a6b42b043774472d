"""Bench: the live refresh. A full demo month (24 shops × 40 iPhones, ≈2.1M records) is
materialized for `live`; then 15 minutes of new records arrive and the live sensor is ticked.

Prints the incremental refresh's seconds against a full-month recompute of the same month
measured in the same run (target: ≥ 10× cheaper), and the end-to-end latency from the INSERT
in PostgreSQL to the new bucket being readable in features_wide (FINAL): insert + sensor tick
+ live_refresh run + read.

    python bench/live_refresh.py [--shops 24] [--iphones 40] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import QUIET_RUN, bench_clickhouse, bench_postgres, peak_rss_mib, price_assets
from dagster import DagsterInstance, build_sensor_context, materialize

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.load import load_demo
from kline_assets.prices.live_job import live_refresh_job
from kline_assets.prices.partitions import create_run
from kline_assets.prices.sensors import live_prices_sensor
from kline_assets.resources import ClickHouseIOManager, TorchDeviceResource

ASSETS = price_assets()
CUT = "2025-11-30 23:45"  # the last 15 minutes of November arrive after the month is live


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=24)
    ap.add_argument("--iphones", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfg = DemoConfig(start="2025-10-01", months=2, n_shops=args.shops, n_iphones=args.iphones,
                     stock_codes=0, stock_months=0)
    with bench_postgres("kline_bench_live_refresh") as pg, bench_clickhouse("bench_live") as ch:
        loaded = load_demo(pg, cfg)
        print(f"source: {loaded['purchasing_shop_price_record']:,} records (2 months)")
        with pg.connect() as conn:
            conn.execute("CREATE TABLE held AS SELECT * FROM purchasing_shop_price_record "
                         "WHERE recorded_at >= %s::timestamp AT TIME ZONE 'Asia/Tokyo'", (CUT,))
            conn.execute("DELETE FROM purchasing_shop_price_record WHERE id IN "
                         "(SELECT id FROM held)")
            cursor = str(conn.execute("SELECT max(id) FROM purchasing_shop_price_record")
                         .fetchone()[0])
        resources = {"postgres": pg, "clickhouse": ch,
                     "clickhouse_io_manager": ClickHouseIOManager(clickhouse=ch),
                     "torch_device": TorchDeviceResource(device=args.device)}
        instance = DagsterInstance.ephemeral()
        create_run(instance, "live")

        def month(key: str) -> float:
            t0 = time.perf_counter()
            assert materialize(ASSETS, selection=ASSETS[1:], partition_key=f"{key}|live",
                               resources=resources, instance=instance,
                               run_config=QUIET_RUN).success
            return time.perf_counter() - t0

        month("2025-10-01")
        month("2025-11-01")

        t_insert = time.perf_counter()
        with pg.connect() as conn:
            n = conn.execute(
                "INSERT INTO purchasing_shop_price_record (shop_id, iphone_id, price_new, "
                "price_grade_a, price_grade_b, recorded_at) SELECT shop_id, iphone_id, "
                "price_new, price_grade_a, price_grade_b, recorded_at FROM held ORDER BY id"
            ).rowcount
        inserted = time.perf_counter()
        context = build_sensor_context(instance=instance, cursor=cursor,
                                       resources={"postgres": pg, "clickhouse": ch})
        result = live_prices_sensor(context)
        [request] = result.run_requests
        assert request.job_name == "live_refresh", request.tags
        ticked = time.perf_counter()
        refresh = live_refresh_job.execute_in_process(
            run_config={**request.run_config, **QUIET_RUN}, instance=instance,
            resources={k: resources[k] for k in ("postgres", "clickhouse", "torch_device")})
        assert refresh.success
        ran = time.perf_counter()
        with ch.client() as client:
            rows = client.query(
                f"SELECT count() FROM {ch.table('features_wide')} FINAL WHERE run_id = 'live' "
                "AND bucket = toDateTime('2025-11-30 23:45:00', 'Asia/Tokyo')").result_rows[0][0]
        readable = time.perf_counter()
        assert rows > 0
        [event] = [e for e in refresh.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
                   and e.asset_key.to_user_string() == "features_wide"]
        md = {k: v.value for k, v in
              event.event_specific_data.materialization.metadata.items()}
        compute = sum(v for k, v in md.items() if k.endswith("_seconds"))
        incremental = ran - ticked
        full = month("2025-11-01")  # the same month, recomputed in full (the fallback)

    print(f"new records: {n:,} (15 minutes); window {request.tags['kline/window_start']} → "
          f"month end; features_wide rows at the new bucket: {rows}")
    print(f"incremental refresh: {incremental:.2f}s as a Dagster run "
          f"({compute:.2f}s in the refresh itself: "
          + ", ".join(f"{k.removesuffix('_seconds')} {v:.2f}s" for k, v in md.items()
                      if k.endswith("_seconds")) + ")")
    print(f"full-month recompute (price_assets, 2025-11|live): {full:.2f}s")
    print(f"ratio = {full / incremental:.1f}x cheaper as runs, "
          f"{full / compute:.1f}x as computation (target ≥ 10x)")
    print(f"INSERT → readable in features_wide: {readable - t_insert:.2f}s "
          f"(insert {inserted - t_insert:.2f}s, sensor tick {ticked - inserted:.2f}s, "
          f"refresh run {ran - ticked:.2f}s, read {readable - ran:.3f}s) — plus up to the "
          "sensor's 15-minute interval and the daemon's run launch in a deployment")
    print(f"peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
