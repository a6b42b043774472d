"""The run workflow as Dagster jobs with typed config: `drop_run`, `promote_run` and
`compare_runs`, launchable from the UI's launchpad. Each op calls the same functions as
`kline runs …` (runs.py, compare.py) and reports what it did as run logs and metadata:
partitions and rows per table, and compare's report as a markdown table."""


from dagster import (
    Config,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)
from pydantic import Field

from kline_assets.lib.errors import InvalidRunIdError
from kline_assets.prices.partitions import (
    LIVE,
    create_run,
    registered_run_ids,
    validate_run_id,
)
from kline_assets.prices.runs import (
    backup_name,
    drop_run,
    promote_run,
    promoted_materializations,
    prune_backups,
    unregister_run,
)
from kline_assets.prices.tables import PRICE_TABLES
from kline_assets.resources import ClickHouseResource


class DropRunConfig(Config):
    run_id: str = Field(description="the run id to drop (a malformed id is unregistered only)")
    allow_live: bool = Field(default=False, description="allow dropping `live`, the production run")


class PromoteRunConfig(Config):
    source: str = Field(description="the run to copy, e.g. backfill_20251101_v3")
    target: str = Field(default=LIVE, description="the run to overwrite")
    backup: bool = Field(default=True,
                         description="first copy the target to backup_YYYYMMDD (or _2, …)")
    keep_backups: int = Field(default=-1, ge=-1,
                              description="then drop all but the newest N backups (-1: keep all)")


class CompareRunsConfig(Config):
    base: str
    target: str
    tables: list[str] = Field(default=[], description=f"subset of {', '.join(PRICE_TABLES)}")
    show_all: bool = Field(default=False,
                           description="list every scope and column, not only differences")


def _sizes(per_table: dict) -> dict:
    return {t: MetadataValue.int(v["rows"]) for t, v in per_table.items()}


@op(out=Out(dict), description="Drop every ClickHouse partition of a run id and unregister it.")
def drop_run_op(context: OpExecutionContext, config: DropRunConfig,
                clickhouse: ClickHouseResource) -> Output:
    instance = context.instance
    try:
        validate_run_id(config.run_id)
    except InvalidRunIdError:
        if config.run_id not in registered_run_ids(instance):
            raise
        context.log.warning(f"run id {config.run_id!r} is malformed; unregistering it by name")
        unregister_run(instance, config.run_id)
        return Output({"dropped": {}, "unregistered": True},
                      metadata={"run_id": config.run_id, "unregistered": True})
    dropped = drop_run(clickhouse, config.run_id, allow_live=config.allow_live)
    unregistered = unregister_run(instance, config.run_id)
    context.log.info(f"dropped run {config.run_id}: partitions {dropped}; "
                     f"{'unregistered' if unregistered else 'was not registered'}")
    return Output({"dropped": dropped, "unregistered": unregistered},
                  metadata={"run_id": config.run_id, "unregistered": unregistered,
                            **{f"partitions_dropped/{t}": n for t, n in dropped.items()}})


@op(out=Out(dict), description="Copy a run onto `live` (or another), partition by partition, "
    "keeping a backup; re-running after a crash finishes the same promote.")
def promote_run_op(context: OpExecutionContext, config: PromoteRunConfig,
                   clickhouse: ClickHouseResource) -> Output:
    instance = context.instance
    result = promote_run(clickhouse, config.source, config.target,
                         backup=backup_name() if config.backup else None)
    if result["backup"]:
        create_run(instance, result["backup"])
    create_run(instance, config.target)
    for event in promoted_materializations(clickhouse, config.source, config.target,
                                           via=f"promote_run job ({context.run_id[:8]})"):
        context.log_event(event)
    pruned = []
    if config.keep_backups >= 0:
        pruned = prune_backups(clickhouse, config.keep_backups)
        for run_id in pruned:
            unregister_run(instance, run_id)
    context.log.info(f"promoted {config.source} to {config.target}: {result['promoted']}; "
                     f"backup {result['backup'] or 'none'}; pruned {pruned or 'none'}")
    return Output({**result, "pruned": pruned}, metadata={
        "source": config.source, "target": config.target,
        "backup": result["backup"] or "none", "resumed": result["resumed"],
        **{f"rows_promoted/{t}": v for t, v in _sizes(result["promoted"]).items()},
        **{f"rows_backed_up/{t}": v for t, v in _sizes(result["backed_up"]).items()},
        "backups_pruned": ", ".join(pruned) or "none",
    })


@op(out=Out(dict), description="Compare two runs per table, scope and column; the report is "
    "a markdown table in the run's metadata.")
def compare_runs_op(context: OpExecutionContext, config: CompareRunsConfig,
                    clickhouse: ClickHouseResource) -> Output:
    from kline_assets.prices.compare import compare_markdown, compare_runs, summarize

    report = compare_runs(clickhouse, config.base, config.target, tables=config.tables or None)
    summary = summarize(report)
    markdown = compare_markdown(report, config.base, config.target,
                                limit=len(report) if config.show_all else 50)
    context.log.info(markdown)
    return Output(summary, metadata={
        "report": MetadataValue.md(markdown),
        **{f"max_abs_diff/{t}": s["max_abs_diff"] if s["max_abs_diff"] is not None
           else float("nan") for t, s in summary.items()},
    })


@job(name="drop_run",
     description="Drop a run id: every ClickHouse partition, then its Dagster partition.",
     tags={"kline/run_operation": "drop"})
def drop_run_job():
    drop_run_op()


@job(name="promote_run",
     description="Promote a run onto live (backup, atomic swap per partition, convergent).",
     tags={"kline/run_operation": "promote"})
def promote_run_job():
    promote_run_op()


@job(name="compare_runs",
     description="Compare two runs: row counts, keys in one run only, |base − target|.",
     tags={"kline/run_operation": "compare"})
def compare_runs_job():
    compare_runs_op()


RUN_JOBS = [drop_run_job, promote_run_job, compare_runs_job]
