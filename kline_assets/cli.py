"""The `kline` command: set up stores, manage run ids, run the demo."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import click

import kline_assets.warnings  # noqa: F401
from kline_assets.errors import KlineError
from kline_assets.instance import get_instance
from kline_assets.settings import SQL_DIR, load_settings


@click.group()
def cli() -> None:
    """kline_assets: market data → bars and features (Dagster, ClickHouse, TimescaleDB)."""


@cli.command()
def init() -> None:
    """Create the PostgreSQL source schema and the ClickHouse tables (idempotent)."""
    from kline_assets.resources import ClickHouseResource, PostgresResource

    s = load_settings()
    pg = PostgresResource(dsn=s.pg_dsn)
    pg.execute_file(SQL_DIR / "postgres" / "source.sql")
    ch = ClickHouseResource(dsn=s.clickhouse_dsn, database=s.clickhouse_database)
    ch.ensure_schema()
    click.echo(f"PostgreSQL {pg.address}: source schema ready")
    click.echo(f"ClickHouse {ch.address}, database {ch.db}: tables ready")


@cli.group()
def runs() -> None:
    """Run ids: `live` and experiments such as backfill_20251101_v3."""


@runs.command("create")
@click.argument("name")
def runs_create(name: str) -> None:
    """Register run id NAME as a partition of every price asset."""
    from kline_assets.prices.runs import create_run

    created = create_run(get_instance(), name)
    click.echo(f"run id {name} {'registered' if created else 'already registered'}")


@runs.command("list")
def runs_list() -> None:
    from kline_assets.prices.runs import registered_run_ids

    for run_id in registered_run_ids(get_instance()):
        click.echo(run_id)


def _clickhouse():
    from kline_assets.resources import ClickHouseResource

    s = load_settings()
    return ClickHouseResource(dsn=s.clickhouse_dsn, database=s.clickhouse_database)


def _counts(per_table: dict) -> str:
    return ", ".join(f"{t} {n}" for t, n in per_table.items()) or "nothing"


@runs.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-live", is_flag=True, help="Allow dropping the production run `live`.")
def runs_drop(name: str, yes: bool, allow_live: bool) -> None:
    """Drop every ClickHouse partition of run NAME and unregister it from Dagster."""
    from kline_assets.prices.partitions import RUN_ID_DIMENSION
    from kline_assets.prices.run_ops import RunOperationRefused, drop_run, run_partitions
    from kline_assets.prices.runs import LIVE, validate_run_id

    validate_run_id(name)
    if name == LIVE and not allow_live:
        raise RunOperationRefused(f"refusing to drop {LIVE!r} without --allow-live")
    ch = _clickhouse()
    parts = {t: len(p) for t, p in run_partitions(ch, name).items()}
    if not yes:
        click.confirm(f"Drop run {name} from {ch.db} (partitions: {_counts(parts)})?",
                      abort=True)
    started = time.perf_counter()
    dropped = drop_run(ch, name, allow_live=allow_live)
    instance = get_instance()
    registered = instance.has_dynamic_partition(RUN_ID_DIMENSION, name)
    if registered:
        instance.delete_dynamic_partition(RUN_ID_DIMENSION, name)
    click.echo(f"dropped run {name}: partitions {_counts(dropped)}; "
               f"{'unregistered from' if registered else 'was not registered in'} Dagster "
               f"({time.perf_counter() - started:.2f} s)")


@runs.command("promote")
@click.argument("source")
@click.option("--to", "target", default="live", show_default=True, help="Run to overwrite.")
@click.option("--backup/--no-backup", default=True, show_default=True,
              help="First copy the target to backup_YYYYMMDD (today in Asia/Tokyo).")
def runs_promote(source: str, target: str, backup: bool) -> None:
    """Copy every partition of run SOURCE onto the target run, partition by partition.

    Each target partition is swapped atomically (REPLACE PARTITION … FROM a staging table);
    target months the source lacks are left as they are.
    """
    from dagster import AssetMaterialization

    from kline_assets.prices.run_ops import asset_partition, promote_run, run_partitions
    from kline_assets.prices.runs import create_run
    from kline_assets.settings import PRICE_TZ

    backup_id = datetime.now(ZoneInfo(PRICE_TZ)).strftime("backup_%Y%m%d") if backup else None
    started = time.perf_counter()
    clickhouse = _clickhouse()
    result = promote_run(clickhouse, source, target, backup=backup_id)
    instance = get_instance()
    for run_id in (target, backup_id):
        if run_id:
            create_run(instance, run_id)
    # Tell Dagster the target's partitions changed, so the UI shows them materialized.
    for table, partitions in run_partitions(clickhouse, source).items():
        for values in partitions:
            asset, key = asset_partition(table, values, target)
            instance.report_runless_asset_event(AssetMaterialization(
                asset_key=asset, partition=key,
                metadata={"promoted_from": source, "via": "kline runs promote"}))
    if backup_id:
        if result["backed_up"]:
            click.echo(f"backed up {target} to {backup_id}: " + _counts(
                {t: f"{v['partitions']} partitions/{v['rows']} rows"
                 for t, v in result["backed_up"].items()}))
        else:
            click.echo(f"{target} had no data: no backup made")
    click.echo(f"promoted {source} to {target}: " + _counts(
        {t: f"{v['partitions']} partitions/{v['rows']} rows"
         for t, v in result["promoted"].items()})
        + f" ({time.perf_counter() - started:.2f} s)")


@runs.command("compare")
@click.argument("base")
@click.argument("target")
@click.option("--table", "tables", multiple=True,
              type=click.Choice(["price_aligned", "cross_shop_agg", "features_wide"]),
              help="Only this table (repeatable).")
@click.option("--limit", default=30, show_default=True,
              help="Rows shown per table, largest max_abs_diff first (0 = all).")
def runs_compare(base: str, target: str, tables: tuple[str, ...], limit: int) -> None:
    """Compare run TARGET with run BASE per table, scope and column."""
    from tabulate import tabulate

    from kline_assets.prices.run_ops import compare_runs

    started = time.perf_counter()
    df = compare_runs(_clickhouse(), base, target, tables=tables or None)
    for table, part in df.groupby("table", sort=False):
        scopes = part.drop_duplicates("scope")
        click.echo(
            f"\n{table}: {len(scopes)} scopes; rows {base} {scopes.rows_base.sum()}, "
            f"{target} {scopes.rows_target.sum()}; keys only in {base} "
            f"{scopes.only_in_base.sum()}, only in {target} {scopes.only_in_target.sum()}; "
            f"max |diff| {part.max_abs_diff.max():.6g}; null mismatches "
            f"{part.null_mismatches.sum()}"
        )
        shown = part.sort_values(["max_abs_diff", "null_mismatches"], ascending=False,
                                 na_position="last", kind="stable")
        if limit:
            shown = shown.head(limit)
        click.echo(tabulate(shown.drop(columns="table"), headers="keys", tablefmt="simple",
                            showindex=False, floatfmt=".6g"))
        if len(shown) < len(part):
            click.echo(f"… {len(part) - len(shown)} more rows (--limit 0 shows all)")
    if df.empty:
        click.echo("no rows in either run for the chosen tables")
    click.echo(f"\ncompared {base} → {target} in {time.perf_counter() - started:.2f} s")


@cli.command()
@click.option("--seed", default=7, show_default=True)
@click.option("--start", default="2025-10-01", show_default=True, help="first month")
@click.option("--months", default=2, show_default=True)
@click.option("--shops", default=24, show_default=True)
@click.option("--iphones", default=40, show_default=True)
def demo(seed: int, start: str, months: int, shops: int, iphones: int) -> None:
    """Load realistic synthetic data and materialize every asset for run `demo`."""
    from kline_assets.demo import DemoConfig
    from kline_assets.quickstart import run_demo

    run_demo(DemoConfig(seed=seed, start=start, months=months, n_shops=shops,
                        n_iphones=iphones), echo=click.echo)


def _register_domain_commands() -> None:
    try:
        from kline_assets.stocks.cli import stocks
    except ImportError:
        return
    cli.add_command(stocks)


_register_domain_commands()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KlineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
