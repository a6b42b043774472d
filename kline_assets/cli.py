"""The root `kline` command: `init`, `demo` and `serve`; each domain mounts its own group."""

from __future__ import annotations

import sys

import click

import kline_assets.dagster_notices  # noqa: F401
from kline_assets.api.cli import serve
from kline_assets.demo.cli import demo
from kline_assets.errors import KlineError
from kline_assets.prices.cli import pipeline, runs
from kline_assets.settings import SQL_DIR
from kline_assets.stocks.bars import bars
from kline_assets.stocks.cli import stocks
from kline_assets.stocks.ticks.cli import ticks


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


cli.add_command(runs)
cli.add_command(pipeline)
cli.add_command(stocks)
cli.add_command(bars)
cli.add_command(ticks)
cli.add_command(demo)
cli.add_command(serve)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KlineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
