"""The `kline` command: set up stores, manage run ids, run the demo."""

from __future__ import annotations

import sys

import click

import kline_assets.warnings  # noqa: F401
from kline_assets.instance import get_instance
from kline_assets.resources.errors import KlineError
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
