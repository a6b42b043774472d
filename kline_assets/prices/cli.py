"""`kline runs …`: register, list, drop, promote and compare run ids of the price tables."""

from __future__ import annotations

import json
import time

import click

from kline_assets.lib.errors import InvalidRunIdError, KlineError
from kline_assets.lib.instance import get_instance
from kline_assets.prices.partitions import (
    LIVE,
    create_run,
    registered_run_ids,
    validate_run_id,
)
from kline_assets.prices.pipeline import STEPS
from kline_assets.prices.read import summarize_runs
from kline_assets.prices.runs import (
    RunOperationRefused,
    backup_name,
    drop_run,
    list_runs,
    promote_run,
    prune_backups,
    report_promoted,
    run_partitions,
    unregister_run,
)
from kline_assets.prices.tables import PRICE_TABLES
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per run id).")
def runs_list(as_json: bool) -> None:
    """Run ids with their data: rows per table, bucket range, months, last materialization.

    Lists every run id registered in Dagster or holding ClickHouse rows; `live` is
    production, `backup_YYYYMMDD[_N]` are promote backups, `invalid` marks a malformed id
    that got in another way (e.g. typed into the UI's "Add a partition"): remove it with
    `kline runs drop NAME`.
    """
    summaries = summarize_runs(_clickhouse(), get_instance())
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
        return
    if not summaries:
        click.echo("no run ids (register one with `kline runs create NAME`)")
        return
    from tabulate import tabulate

    rows = [{
        "run id": s["run_id"], "kind": s["kind"],
        "registered": "yes" if s["registered"] else "NO",
        **{f"{t} rows": s["rows"][t] for t in PRICE_TABLES},
        "months": _month_span(s["months"]),
        "buckets": (f"{s['first_bucket'][:16]} … {s['last_bucket'][:16]}"
                    if s["first_bucket"] else "—"),
        "last materialized (UTC)": (s["last_materialization"] or "—")[:19],
    } for s in summaries]
    click.echo(tabulate(rows, headers="keys", tablefmt="simple", intfmt=","))
    for s in summaries:
        if s["kind"] == "invalid":
            click.echo(f"warning: run id {s['run_id']!r} is malformed (use [a-z0-9_]{{1,64}}); "
                       f"remove it with `kline runs drop {s['run_id']}`", err=True)


def _month_span(months: list[str]) -> str:
    if not months:
        return "—"
    return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]} ({len(months)})"


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
        click.echo(f"warning: run id {name!r} is malformed; it can only have entered through "
                   "Dagster directly (e.g. the UI's \"Add a partition\"), never holds data "
                   "written by this project, and is removed by its exact name", err=True)
        if not yes:
            click.confirm(f"Unregister malformed run id {name!r} from Dagster?", abort=True)
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
              help="First copy the target to backup_YYYYMMDD (today in Asia/Tokyo; "
                   "backup_YYYYMMDD_2, … when that one is taken).")
@click.option("--keep-backups", type=click.IntRange(min=0), default=None,
              help="After promoting, drop all but the newest N backups.")
def runs_promote(source: str, target: str, backup: bool, keep_backups: int | None) -> None:
    """Copy every partition of run SOURCE onto the target run, partition by partition.

    Each target partition is swapped atomically (REPLACE PARTITION … FROM a staging table);
    target months the source lacks are left as they are. A promote killed at any point is
    finished by running the same command again: it reuses the backup it had taken.
    """
    started = time.perf_counter()
    clickhouse = _clickhouse()
    result = promote_run(clickhouse, source, target, backup=backup_name() if backup else None)
    instance = get_instance()
    backup_id = result["backup"]
    if backup_id:
        create_run(instance, backup_id)
    report_promoted(instance, clickhouse, source, target, via="kline runs promote")
    if result["resumed"]:
        click.echo(f"resumed an unfinished promote of {source} to {target}")
    if result["backed_up"]:
        click.echo(f"backed up {target} to {backup_id}: {_sizes(result['backed_up'])}")
    elif backup_id:
        click.echo(f"backup {backup_id} kept from the interrupted promote")
    elif backup:
        click.echo(f"{target} had no data: no backup made")
    click.echo(f"promoted {source} to {target}: {_sizes(result['promoted'])} "
               f"({time.perf_counter() - started:.2f} s)")
    if keep_backups is not None:
        pruned = prune_backups(clickhouse, keep_backups)
        for run_id in pruned:
            unregister_run(instance, run_id)
        click.echo(f"pruned {len(pruned)} older backup(s)"
                   + (f": {', '.join(pruned)}" if pruned else ""))


COMPARE_LABELS = {
    "scope": "scope", "column": "column", "rows_base": "rows in base",
    "rows_target": "rows in target", "only_in_base": "keys only in base",
    "only_in_target": "keys only in target", "max_abs_diff": "max |base−target|",
    "mean_abs_diff": "mean |base−target|", "null_mismatches": "NULL on one side",
}


@runs.command("compare")
@click.argument("base")
@click.argument("target")
@click.option("--table", "tables", multiple=True, type=click.Choice(list(PRICE_TABLES)),
              help="Only this table (repeatable).")
@click.option("--all", "show_all", is_flag=True,
              help="Show every scope and column, not only those that differ.")
@click.option("--limit", default=30, show_default=True,
              help="Rows shown per table (0 = all).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: per table a summary and the rows (differences unless --all).")
def runs_compare(base: str, target: str, tables: tuple[str, ...], show_all: bool, limit: int,
                 as_json: bool) -> None:
    """Compare run TARGET with run BASE per table, scope and column.

    Shows only the scopes and columns that differ (row counts, keys in one run only, values,
    NULLs) unless --all; scopes in numeric order (iphone:2 before iphone:10).
    """
    from kline_assets.prices.compare import compare_runs, differing, sort_scopes, summarize

    started = time.perf_counter()
    df = sort_scopes(compare_runs(_clickhouse(), base, target, tables=tables or None))
    shown_df = df if show_all else differing(df)
    if as_json:
        click.echo(json.dumps({
            "base": base, "target": target, "all": show_all,
            "tables": summarize(df),
            "rows": json.loads(shown_df.to_json(orient="records")),
        }, indent=2))
        return
    from tabulate import tabulate

    click.echo(f"base = {base}, target = {target}")
    for table, summary in summarize(df).items():
        part = shown_df[shown_df["table"] == table]
        click.echo(
            f"\n{table}: {summary['scopes']} scopes, {summary['scopes_differing']} differ; "
            f"rows {base} {summary['rows_base']:,}, {target} {summary['rows_target']:,}; "
            f"keys only in {base} {summary['only_in_base']:,}, only in {target} "
            f"{summary['only_in_target']:,}; max |diff| {summary['max_abs_diff']:.6g}; "
            f"NULL on one side {summary['null_mismatches']:,}")
        if part.empty:
            click.echo("  identical" if not show_all else "")
            continue
        shown = part.head(limit) if limit else part
        click.echo(tabulate(shown.drop(columns="table").rename(columns=COMPARE_LABELS),
                            headers="keys", tablefmt="simple", showindex=False,
                            floatfmt=".6g"))
        if len(shown) < len(part):
            click.echo(f"… {len(part) - len(shown)} more rows (--limit 0 shows all)")
    if df.empty:
        click.echo("no rows in either run for the chosen tables")
    click.echo(f"\ncompared {base} → {target} in {time.perf_counter() - started:.2f} s")


@click.command("pipeline")
@click.option("--run-id", required=True, help="Run id to compute (registered if new), e.g. "
              "backfill_20251101_v3.")
@click.option("--from", "first", required=True, metavar="DATE",
              help="First month: YYYY-MM or any day of it (YYYY-MM-DD).")
@click.option("--to", "last", required=True, metavar="DATE",
              help="Last month, inclusive: YYYY-MM or any day of it (YYYY-MM-DD).")
@click.option("--device", default="", help="auto, cpu or cuda:N (default: KLINE_DEVICE).")
@click.option("--iphone-ids", default="", metavar="IDS",
              help="Only these iPhone ids, comma-separated (a subset run; cohorts too).")
@click.option("--shop-ids", default="", metavar="IDS",
              help="Only these shop ids, comma-separated.")
@click.option("--steps", default=",".join(STEPS), show_default=True,
              help="Comma-separated steps to run, in dependency order whatever the order given.")
@click.option("--outlier-band", type=click.FloatRange(min=0, min_open=True), default=0.2,
              show_default=True, help="Drop prices with |p − median| > band × median.")
@click.option("--quorum-policy", type=click.Choice(["use_anyway", "require"]),
              default="use_anyway", show_default=True,
              help="require: NULL stats where fewer than 16 shops report.")
@click.pass_context
def pipeline(ctx: click.Context, run_id: str, first: str, last: str, device: str,
             iphone_ids: str, shop_ids: str, steps: str, outlier_band: float,
             quorum_policy: str) -> None:
    """Compute run RUN_ID over a range of months through Dagster, month by month.

    Every month × step is a Dagster run of the price_assets job (visible in the UI with its
    run config). Ctrl-C stops after saying what was written. Exit codes: 0 done, 1 a step
    failed or was interrupted, 2 bad arguments.
    """
    from kline_assets.prices.pipeline import PipelinePlan, month_range, parse_steps
    from kline_assets.prices.run_config import PriceRun

    plan = PipelinePlan(
        run_id=validate_run_id(run_id), months=month_range(first, last),
        steps=parse_steps(steps),
        settings=PriceRun(iphone_ids=_ids(iphone_ids, "--iphone-ids"),
                          shop_ids=_ids(shop_ids, "--shop-ids"), device=device,
                          outlier_band=outlier_band, quorum_policy=quorum_policy))
    resources = store_resources()
    device_text = _device_text(resources["torch_device"], device)
    ctx.exit(_run_and_report(plan, resources, device_text, click.echo))


def _ids(text: str, option: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise KlineError(f"{option} {text!r}: expected comma-separated integers") from exc


def _device_text(torch_device, override: str) -> str:
    from kline_assets.resources.device import describe_device

    try:
        return describe_device(torch_device.get(override or None))
    except (ValueError, RuntimeError) as exc:
        raise KlineError(f"--device {override!r}: {exc}") from exc


def _run_and_report(plan, resources: dict, device_text: str, echo) -> int:
    """Run the plan with progress, print the summary; returns the exit code."""
    import sys

    from kline_assets.prices.pipeline import run_pipeline

    months = f"{plan.months[0][:7]}..{plan.months[-1][:7]}"
    echo(f"pipeline {plan.run_id}: {len(plan.months)} month(s) {months}, steps "
         f"{', '.join(plan.steps)}, device {device_text}"
         + (f", iPhones {plan.settings.iphone_ids}" if plan.settings.iphone_ids else "")
         + (f", shops {plan.settings.shop_ids}" if plan.settings.shop_ids else ""))
    bar = None
    if sys.stdout.isatty():
        bar = click.progressbar(length=len(plan.work), label="pipeline", show_pos=True,
                                item_show_func=lambda item: item)
        bar.__enter__()

    def progress(i, total, month, step, done) -> None:
        what = f"{month[:7]} {step}"
        if bar is not None:
            bar.label = what
            if done is not None:
                bar.update(1, f"{what} {done.seconds:.1f}s")
        elif done is not None:
            state = "done" if done.success else "FAILED"
            echo(f"  [{i}/{total}] {what:<18} {state} in {done.seconds:.1f}s "
                 f"(Dagster run {done.dagster_run_id[:8]})")

    instance = get_instance()
    try:
        outcome = run_pipeline(instance, resources, plan, progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    _summary(outcome, resources["clickhouse"], device_text, echo)
    if outcome.interrupted:
        written = ", ".join(f"{d.month[:7]} {d.step}" for d in outcome.written) or "nothing"
        echo(f"interrupted: written {written}; the step in progress left its previous rows "
             "(every partition is replaced atomically)", err=True)
        return 1
    if outcome.failed:
        echo(f"error: {outcome.failed.month[:7]} {outcome.failed.step} failed: "
             f"{outcome.failed.error}", err=True)
        return 1
    return 0


def _summary(outcome, clickhouse, device_text: str, echo) -> None:
    from tabulate import tabulate

    from kline_assets.prices.pipeline import STEPS
    from kline_assets.prices.runs import asset_month_counts

    plan = outcome.plan
    months = [m[:7] for m in plan.months]
    counts = asset_month_counts(clickhouse, plan.run_id)
    rows = [{"asset": STEPS[s], **{m: counts[STEPS[s]].get(m, 0) for m in months}}
            for s in plan.steps]
    echo(f"\nrows of run {plan.run_id} (ClickHouse, FINAL):")
    echo(tabulate(rows, headers="keys", tablefmt="simple", intfmt=","))
    seconds = outcome.seconds_per_step()
    echo("\nseconds per step: " + ", ".join(f"{s} {seconds.get(s, 0.0):.1f}"
                                            for s in plan.steps)
         + f" (total {sum(seconds.values()):.1f}); device {device_text}")
