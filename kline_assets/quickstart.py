"""`kline demo` / `make demo`: load the synthetic data and materialize every asset for run `demo`.

Re-running converges to the same rows: the source rows are replaced in one transaction and
every ClickHouse partition is replaced atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from kline_assets.demo import DemoConfig, generate_stock_bars, load_demo
from kline_assets.instance import get_instance
from kline_assets.prices.partitions import create_run, price_partition_key
from kline_assets.prices.run_ops import PRICE_TABLES
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.settings import load_settings

DEMO_RUN_ID = "demo"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def demo_months(cfg: DemoConfig) -> list[str]:
    start = pd.Period(cfg.start[:7], freq="M")
    return [str(start + i) for i in range(cfg.months)]


def write_stock_landing(cfg: DemoConfig) -> list[str]:
    """The demo's 1-minute bars as a vendor would drop them: one file per month, Parquet and
    CSV alternating. Returns the month partition keys."""
    from kline_assets.stocks.assets import default_landing_dir

    bars = generate_stock_bars(cfg)
    root = default_landing_dir()
    months = sorted(bars["time"].dt.to_period("M").unique())
    for i, month in enumerate(months):
        folder = root / str(month)
        folder.mkdir(parents=True, exist_ok=True)
        part = bars[bars["time"].dt.to_period("M") == month]
        if i % 2 == 0:
            part.to_parquet(folder / "demo_bars.parquet", index=False)
        else:
            part.to_csv(folder / "demo_bars.csv", index=False)
    return [f"{m}-01" for m in months]


def stock_table_counts(postgres: PostgresResource) -> dict[str, dict[str, int]]:
    counts = {}
    with postgres.connect() as conn:
        for table, col in (("stock_1min_qfq", "time"), ("stock_monthly_kline", "month")):
            rows = conn.execute(
                f"SELECT to_char({col}, 'YYYYMM') AS m, count(*) FROM {table} "
                "GROUP BY 1 ORDER BY 1").fetchall()
            counts[table] = {m: n for m, n in rows}
    return counts


def price_table_counts(clickhouse: ClickHouseResource, run_id: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    with clickhouse.client() as client:
        for table in PRICE_TABLES:
            rows = client.query(
                f"SELECT toString(toYYYYMM(bucket)) AS m, count() FROM "
                f"{clickhouse.table(table)} FINAL WHERE run_id = '{run_id}' GROUP BY m ORDER BY m"
            ).result_rows
            counts[table] = {m: n for m, n in rows}
    return counts


def run_demo(cfg: DemoConfig, echo: Callable[[str], None] = print) -> dict[str, object]:
    from kline_assets.definitions import defs  # resources read the environment at import

    settings = load_settings()
    postgres = PostgresResource(dsn=settings.pg_dsn)
    clickhouse = ClickHouseResource(dsn=settings.clickhouse_dsn,
                                    database=settings.clickhouse_database)
    started = time.perf_counter()

    echo(f"loading demo data into PostgreSQL at {postgres.address} …")
    t0 = time.perf_counter()
    loaded = load_demo(postgres, cfg)
    echo(f"  {loaded} in {time.perf_counter() - t0:.1f}s")

    clickhouse.ensure_schema()
    instance = get_instance()
    create_run(instance, DEMO_RUN_ID)

    job = defs.resolve_job_def("price_assets")
    for month in demo_months(cfg):
        key = price_partition_key(DEMO_RUN_ID, month)
        t0 = time.perf_counter()
        result = job.execute_in_process(partition_key=key, instance=instance,
                                        run_config=QUIET_RUN_CONFIG)
        if not result.success:
            raise RuntimeError(f"price assets failed for {key}")
        echo(f"  price assets {key}: {time.perf_counter() - t0:.1f}s")

    stock_job = defs.resolve_job_def("stock_monthly_job")
    for month in write_stock_landing(cfg):
        t0 = time.perf_counter()
        result = stock_job.execute_in_process(partition_key=month, instance=instance,
                                              run_config=QUIET_RUN_CONFIG)
        if not result.success:
            raise RuntimeError(f"stock assets failed for {month}")
        echo(f"  stock assets {month}: {time.perf_counter() - t0:.1f}s")

    counts = price_table_counts(clickhouse, DEMO_RUN_ID)
    stocks = stock_table_counts(postgres)
    total = time.perf_counter() - started
    echo("\nrows written (ClickHouse, FINAL, run demo):")
    for table, per_month in counts.items():
        echo(f"  {table:<20} " + ", ".join(f"{m}: {n:,}" for m, n in per_month.items()))
    echo("rows written (PostgreSQL):")
    for table, per_month in stocks.items():
        echo(f"  {table:<20} " + ", ".join(f"{m}: {n:,}" for m, n in per_month.items()))
    echo(f"\ndone in {total:.1f}s — ClickHouse: {clickhouse.address}, "
         f"Dagster home: {settings.dagster_home}")
    echo("open the UI with `make ui` (dagster dev -w workspace.yaml), then http://127.0.0.1:3000")
    return {"loaded": loaded, "counts": counts, "stocks": stocks, "seconds": total}
