"""The root `kline` command: `init`, `demo` and `serve`; each domain mounts its own group.

Other tools script these commands, so how they fail is a contract, kept here once for every
command: a deliberate error — a KlineError from any layer, a bad option or argument, a store
that is down — prints one line `error: <what and where>` on stderr and exits 2, without a
traceback. Exit 1 stays what it means elsewhere: a prompt answered no (`Aborted!`), a pipeline
step that failed.
"""

from __future__ import annotations

from typing import IO, Any

import click

import kline_assets.lib.dagster_notices  # noqa: F401
from kline_assets.api.cli import serve
from kline_assets.demo.cli import demo
from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import SQL_DIR
from kline_assets.prices.cli import pipeline, runs
from kline_assets.stocks.cli import bars, stocks
from kline_assets.stocks.ticks.cli import ticks
from kline_assets.stocks.vendor.cli import ingest_command, publish_vendor_command

ERROR_EXIT = 2


class CommandError(click.ClickException):
    """What every deliberate error of a `kline` command becomes: one line, exit 2."""

    exit_code = ERROR_EXIT

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


class KlineGroup(click.Group):
    """The root group: turns every deliberate error of any subcommand into a CommandError."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CommandError:
            raise
        except KlineError as exc:
            raise CommandError(_one_line(str(exc))) from exc
        except _HELP_ERRORS:
            raise  # `kline bars` alone shows the group's help, as click does
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            raise CommandError(_one_line(exc.format_message()) + where) from exc
        except click.ClickException as exc:
            raise CommandError(_one_line(exc.format_message())) from exc


_HELP_ERRORS = tuple(getattr(click.exceptions, name) for name in ("NoArgsIsHelpError",)
                     if hasattr(click.exceptions, name))


@click.group(cls=KlineGroup)
def cli() -> None:
    """kline_assets: market data → bars and features (Dagster, ClickHouse, TimescaleDB)."""


@cli.command()
def init() -> None:
    """Create the PostgreSQL source schema and the ClickHouse tables (idempotent) after
    checking the ClickHouse version; sweep staging tables left by killed writers. Where
    TimescaleDB is installed, put the 1-minute tables in its columnstore with the configured
    policies (KLINE_TS_COMPRESS_AFTER, KLINE_SYNTH_RETENTION)."""
    from kline_assets.lib.settings import load_settings
    from kline_assets.resources.build import store_resources
    from kline_assets.resources.clickhouse.sql import sweep_stale_staging
    from kline_assets.stocks.columnstore import apply_columnstore

    resources = store_resources()
    pg, ch = resources["postgres"], resources["clickhouse"]
    settings = load_settings()
    pg.execute_file(SQL_DIR / "postgres" / "source.sql")
    pg.execute_file(SQL_DIR / "postgres" / "stock_vendor.sql")
    pg.execute_file(SQL_DIR / "postgres" / "stock_1min_synth.sql")
    with pg.connect() as conn:
        columnstore = apply_columnstore(conn, settings.compress_after, settings.synth_retention)
    with ch.client() as client:
        version = ch.check_server(client)
        ch.ensure_schema(client)
        swept = sweep_stale_staging(client, ch.db)
    click.echo(f"PostgreSQL {pg.address}: source schema ready")
    click.echo(columnstore.line())
    click.echo(f"ClickHouse {ch.address} (version {version}, features ok), database {ch.db}: "
               "tables ready"
               + (f"; swept {len(swept)} stale staging table(s)" if swept else ""))


cli.add_command(runs)
cli.add_command(pipeline)
cli.add_command(stocks)
cli.add_command(bars)
bars.add_command(publish_vendor_command)
bars.add_command(ingest_command)
cli.add_command(ticks)
cli.add_command(demo)
cli.add_command(serve)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
