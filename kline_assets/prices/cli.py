"""`kline runs …`: register, list, drop, promote and compare run ids of the price tables."""

from __future__ import annotations

import time

import click

from kline_assets.errors import InvalidRunIdError
from kline_assets.instance import get_instance
from kline_assets.prices.partitions import (
    LIVE,
    create_run,
    registered_run_ids,
    validate_run_id,
)
from kline_assets.prices.runs import (
    PRICE_TABLES,
    RunOperationRefused,
    backup_name,
    drop_run,
    list_runs,
    promote_run,
    report_promoted,
    run_partitions,
    unregister_run,
)
from kline_assets.resources.build import store_resources


def _clickhouse():
    return store_resources()["clickhouse"]


def _counts(per_table: dict) -> str:
    return ", ".join(f"{t} {n}" for t, n in per_table.items()) or "nothing"


@click.group()
def runs() -> None:
    """Run ids: `live` and experiments such as backfill_20251101_v3."""


@runs.command("create")
@click.argument("name")
def runs_create(name: str) -> None:
    """Register run id NAME as a partition of every price asset."""
    created = create_run(get_instance(), name)
    click.echo(f"run id {name} {'registered' if created else 'already registered'}")


@runs.command("list")
def runs_list() -> None:
    """Run ids registered in Dagster (the partitions every price asset has)."""
    for run_id in registered_run_ids(get_instance()):
        click.echo(run_id)


@runs.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-live", is_flag=True, help="Allow dropping the production run `live`.")
def runs_drop(name: str, yes: bool, allow_live: bool) -> None:
    """Drop every ClickHouse partition of run NAME and unregister it from Dagster.

    A malformed id that got into Dagster another way (e.g. typed into the UI) can be
    dropped too; it never holds ClickHouse data written by this project.
    """
    instance = get_instance()
    registered_ids = registered_run_ids(instance)
    try:
        validate_run_id(name)
    except InvalidRunIdError:
        if name not in registered_ids:
            raise
        unregister_run(instance, name)
        click.echo(f"unregistered malformed run id {name!r} from Dagster")
        return
    if name == LIVE and not allow_live:
        raise RunOperationRefused(f"refusing to drop {LIVE!r} without --allow-live")
    ch = _clickhouse()
    parts = {t: len(p) for t, p in run_partitions(ch, name).items() if p}
    registered = name in registered_ids
    if not parts and not registered:
        present = ", ".join(sorted(set(list_runs(ch)) | set(registered_ids)))
        raise InvalidRunIdError(f"no run {name!r} to drop (runs present: {present or 'none'})")
    if not yes:
        click.confirm(f"Drop run {name} from {ch.db} (partitions: {_counts(parts)})?",
                      abort=True)
    started = time.perf_counter()
    dropped = drop_run(ch, name, allow_live=allow_live)
    unregister_run(instance, name)
    click.echo(f"dropped run {name}: partitions {_counts(dropped)}; "
               f"{'unregistered from' if registered else 'was not registered in'} Dagster "
               f"({time.perf_counter() - started:.2f} s)")


def _sizes(per_table: dict) -> str:
    return _counts({t: f"{v['partitions']} partitions/{v['rows']} rows"
                    for t, v in per_table.items()})


@runs.command("promote")
@click.argument("source")
@click.option("--to", "target", default=LIVE, show_default=True, help="Run to overwrite.")
@click.option("--backup/--no-backup", default=True, show_default=True,
              help="First copy the target to backup_YYYYMMDD (today in Asia/Tokyo).")
def runs_promote(source: str, target: str, backup: bool) -> None:
    """Copy every partition of run SOURCE onto the target run, partition by partition.

    Each target partition is swapped atomically (REPLACE PARTITION … FROM a staging table);
    target months the source lacks are left as they are.
    """
    backup_id = backup_name() if backup else None
    started = time.perf_counter()
    clickhouse = _clickhouse()
    result = promote_run(clickhouse, source, target, backup=backup_id)
    instance = get_instance()
    if backup_id:
        create_run(instance, backup_id)
    report_promoted(instance, clickhouse, source, target, via="kline runs promote")
    if backup_id:
        if result["backed_up"]:
            click.echo(f"backed up {target} to {backup_id}: {_sizes(result['backed_up'])}")
        else:
            click.echo(f"{target} had no data: no backup made")
    click.echo(f"promoted {source} to {target}: {_sizes(result['promoted'])} "
               f"({time.perf_counter() - started:.2f} s)")


@runs.command("compare")
@click.argument("base")
@click.argument("target")
@click.option("--table", "tables", multiple=True, type=click.Choice(list(PRICE_TABLES)),
              help="Only this table (repeatable).")
@click.option("--limit", default=30, show_default=True,
              help="Rows shown per table, largest max_abs_diff first (0 = all).")
def runs_compare(base: str, target: str, tables: tuple[str, ...], limit: int) -> None:
    """Compare run TARGET with run BASE per table, scope and column."""
    from tabulate import tabulate

    from kline_assets.prices.compare import compare_runs

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
