"""`kline stocks …`: the stock domain's commands, mounted by the root `kline` group."""

from __future__ import annotations

import click
from dagster import AssetCheckEvaluation, AssetMaterialization

from kline_assets.instance import get_instance
from kline_assets.resources.build import store_resources

from . import monthly
from .partitions import FIRST_MONTH, window_for_months
from .refresh_events import record_in_dagster, refresh_events


@click.group("stocks")
def stocks() -> None:
    """Stock K-lines: stock_1min_qfq and stock_monthly_kline."""


@stocks.command("refresh")
@click.option("--from", "from_month", metavar="YYYY-MM", default=None,
              help=f"First month to refresh [default: {FIRST_MONTH}].")
@click.option("--to", "to_month", metavar="YYYY-MM", default=None,
              help="Last month to refresh [default: the current Beijing month].")
@click.option("--force", is_flag=True,
              help="TimescaleDB: recompute even months with no recorded change "
              "(force => true). The plain path always recomputes.")
@click.option("--recreate", is_flag=True,
              help="Drop stock_monthly_kline with CASCADE (its index, refresh policy job, "
              "materialized rows, dependent views; each is listed) and create it again — "
              "for a changed definition, or to switch a plain table to a continuous aggregate.")
@click.option("--yes", is_flag=True, help="Do not ask before --recreate drops the aggregate.")
def refresh_command(
    from_month: str | None, to_month: str | None, force: bool, recreate: bool, yes: bool
) -> None:
    """Create stock_monthly_kline if missing and refresh it over [--from, --to].

    Same as a Dagster backfill of stock_monthly_kline's partitions, or the
    monthly_kline_full_refresh job: the months that hold rows are recorded in Dagster as
    materializations, with the asset's checks evaluated for them, in a run named
    kline_stocks_refresh. Reads the DSN
    from KLINE_PG_DSN and the Dagster instance from DAGSTER_HOME.
    """
    try:
        window = window_for_months(from_month, to_month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--from' / '--to'") from exc
    postgres = store_resources()["postgres"]
    if recreate and window.label.split("..")[0] != FIRST_MONTH:
        click.echo(f"note: --recreate empties every month; only {window.label} is refreshed now")
    if recreate and not yes:
        with postgres.connect() as conn:
            doomed = monthly.describe_drop(conn)
        if doomed:
            click.confirm(f"Drop and recreate in {postgres.address}: {'; '.join(doomed)}?",
                          abort=True)
    report = monthly.refresh(postgres, window, force=force, recreate=recreate,
                             announce=click.echo)
    events = refresh_events(postgres, report, refreshed_by="kline stocks refresh")
    with get_instance() as instance:
        run = record_in_dagster(instance, events, "kline_stocks_refresh",
                                f"kline stocks refresh {window.label} on {report.path.label}")
    months = sum(isinstance(e, AssetMaterialization) for e in events)
    failed = [e for e in events if isinstance(e, AssetCheckEvaluation) and not e.passed]
    click.echo(
        f"{monthly.VIEW} {window.label} on {report.path.label} ({postgres.address}): "
        f"{report.rows} rows, {report.codes} codes, {report.months} months "
        f"in {report.seconds:.1f}s"
    )
    click.echo(f"recorded in Dagster (run {run.run_id}): {months} month(s) with rows "
               "materialized, "
               f"{len(events) - months} check evaluation(s), {len(failed)} failed"
               + "".join(f"\n  failed: {e.check_name} {e.partition}" for e in failed))
