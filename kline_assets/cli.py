"""The root `kline` command: `init` and `demo`; each domain mounts its own group."""

from __future__ import annotations

import sys

import click

import kline_assets.dagster_notices  # noqa: F401
from kline_assets.errors import KlineError
from kline_assets.prices.cli import runs
from kline_assets.settings import SQL_DIR
from kline_assets.stocks.bars import bars
from kline_assets.stocks.cli import stocks


@click.group()
def cli() -> None:
    """kline_assets: market data → bars and features (Dagster, ClickHouse, TimescaleDB)."""


@cli.command()
def init() -> None:
    """Create the PostgreSQL source schema and the ClickHouse tables (idempotent); sweep
    staging tables left by killed writers."""
    from kline_assets.resources.build import store_resources
    from kline_assets.resources.clickhouse.sql import sweep_stale_staging

    resources = store_resources()
    pg, ch = resources["postgres"], resources["clickhouse"]
    pg.execute_file(SQL_DIR / "postgres" / "source.sql")
    with ch.client() as client:
        ch.ensure_schema(client)
        swept = sweep_stale_staging(client, ch.db)
    click.echo(f"PostgreSQL {pg.address}: source schema ready")
    click.echo(f"ClickHouse {ch.address}, database {ch.db}: tables ready"
               + (f"; swept {len(swept)} stale staging table(s)" if swept else ""))


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


cli.add_command(runs)
cli.add_command(stocks)
cli.add_command(bars)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KlineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
