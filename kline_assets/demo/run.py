"""`kline demo` / `make demo`: load the synthetic data and materialize every asset for run `demo`.

Re-running converges to the same rows: the demo's source rows are replaced in one transaction
and every ClickHouse partition is replaced atomically. Arguments are checked against the
price partitions and the exchange calendar before anything is touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kline_assets.demo.catalog import DemoConfig, DemoError
from kline_assets.demo.load import load_demo
from kline_assets.demo.stocks import generate_stock_bars, stock_days, write_stock_landing
from kline_assets.lib.errors import CalendarRangeError
from kline_assets.lib.instance import get_instance
from kline_assets.lib.settings import load_settings
from kline_assets.prices.partitions import create_run, month_partitions, price_partition_key
from kline_assets.prices.pipeline import STEPS, PipelinePlan, run_pipeline
from kline_assets.prices.runs import asset_month_counts
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.build import store_resources
from kline_assets.stocks import STOCK_TABLE
from kline_assets.stocks.monthly import VIEW

DEMO_RUN_ID = "demo"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

Echo = Callable[[str], None]


def demo_months(cfg: DemoConfig) -> list[str]:
    """The price months of the demo as 'YYYY-MM'."""
    return [key[:7] for key in cfg.price_months]


def validate(cfg: DemoConfig) -> None:
    """Raise DemoError unless every price month is a price partition and every stock month
    lies within the exchange calendar: the demo would otherwise load rows it cannot
    materialize."""
    keys = month_partitions.get_partition_keys()
    outside = [m for m in cfg.price_months if m not in set(keys)]
    if outside:
        span = outside[0][:7] if len(outside) == 1 else f"{outside[0][:7]}..{outside[-1][:7]}"
        raise DemoError(
            f"price months {span} are outside the price partitions "
            f"({keys[0][:7]}..{keys[-1][:7]}); choose --start and --months within"
        )
    try:
        stock_days(cfg)
    except CalendarRangeError as exc:
        raise DemoError(f"stock months: {exc}") from exc


def stock_table_counts(postgres: PostgresResource) -> dict[str, dict[str, int]]:
    counts = {}
    with postgres.connect() as conn:
        for table, col in ((STOCK_TABLE, "time"), (VIEW, "month")):
            rows = conn.execute(
                f"SELECT to_char({col}, 'YYYYMM') AS m, count(*) FROM {table} "
                "GROUP BY 1 ORDER BY 1").fetchall()
            counts[table] = {m: n for m, n in rows}
    return counts


def run_demo(cfg: DemoConfig, echo: Echo = print) -> dict[str, object]:
    """Validate, load PostgreSQL, materialize the price months and the stock months of run
    `demo`, and print the rows each table holds."""
    validate(cfg)
    from dagster import Definitions

    from kline_assets.prices.definitions import defs as price_defs
    from kline_assets.stocks.definitions import defs as stock_defs

    # Bound to the stores this call resolved (the project's module-level Definitions read the
    # environment once, at import).
    resources = store_resources()
    defs = Definitions.merge(price_defs, stock_defs, Definitions(resources=resources))
    postgres: PostgresResource = resources["postgres"]
    clickhouse: ClickHouseResource = resources["clickhouse"]
    started = time.perf_counter()
    price_keys, stock_keys = cfg.price_months, cfg.stock_month_keys
    steps = 1 + len(price_keys) + len(stock_keys)

    echo(f"[1/{steps}] load demo data into PostgreSQL at {postgres.address}")
    t0 = time.perf_counter()
    loaded = load_demo(postgres, cfg, progress=lambda line: echo(f"      {line}"))
    echo(f"      {loaded} in {time.perf_counter() - t0:.1f}s")

    clickhouse.ensure_schema()
    instance = get_instance()
    create_run(instance, DEMO_RUN_ID)

    def execute(step: int, job_name: str, key: str, what: str) -> None:
        echo(f"[{step}/{steps}] {what}")
        t0 = time.perf_counter()
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=key, instance=instance, run_config=QUIET_RUN_CONFIG)
        if not result.success:
            raise DemoError(f"{job_name} failed for {key}; see the run in the Dagster UI")
        echo(f"      done in {time.perf_counter() - t0:.1f}s")

    step = 1
    plan = PipelinePlan(DEMO_RUN_ID, list(price_keys), list(STEPS))

    def progress(i: int, total: int, month: str, name: str, done) -> None:
        if done is None:
            if name == plan.steps[0]:
                echo(f"[{step + plan.months.index(month) + 1}/{steps}] price assets, "
                     f"month {month[:7]} ({price_partition_key(DEMO_RUN_ID, month)})")
            return
        echo(f"      {name:<10} ({STEPS[name]}) "
             f"{'done' if done.success else 'FAILED'} in {done.seconds:.1f}s")

    outcome = run_pipeline(instance, resources, plan, progress)
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.failed:
        raise DemoError(f"{STEPS[outcome.failed.step]} failed for {outcome.failed.month[:7]}: "
                        f"{outcome.failed.error}")
    step += len(price_keys)
    # The source as the prices_watch schedule sees it: its page shows the newest record.
    observed = defs.resolve_job_def("prices_watch").execute_in_process(
        instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=False)
    if not observed.success:
        raise DemoError("observing raw_price_records failed; see the run in the Dagster UI")
    landed = write_stock_landing(cfg, bars=generate_stock_bars(cfg)) if stock_keys else []
    for month in landed:
        step += 1
        execute(step, "stock_monthly_job", month, f"stock assets, month {month[:7]}")

    if landed:
        # The freshness and calendar checks as the stocks_watch schedule evaluates them.
        watched = defs.resolve_job_def("stocks_watch").execute_in_process(
            instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=False)
        if not watched.success:
            raise DemoError("the stocks_watch checks failed to run; see the run in the UI")

    counts = asset_month_counts(clickhouse, DEMO_RUN_ID)
    stocks = stock_table_counts(postgres) if stock_keys else {}  # no stock months: no view
    total = time.perf_counter() - started
    echo("\nrows written (ClickHouse, FINAL, run demo):")
    for table, per_month in counts.items():
        echo(f"  {table:<20} " + ", ".join(f"{m}: {n:,}" for m, n in per_month.items()))
    echo("rows written (PostgreSQL):")
    for table, per_month in stocks.items():
        echo(f"  {table:<20} " + ", ".join(f"{m}: {n:,}" for m, n in per_month.items()))
    echo(f"\ndone in {total:.1f}s — ClickHouse: {clickhouse.address}, "
         f"Dagster home: {load_settings().dagster_home}")
    echo("open the UI with `make ui` (dagster dev -w workspace.yaml), then http://127.0.0.1:3000")
    return {"loaded": loaded, "counts": counts, "stocks": stocks, "seconds": total}
