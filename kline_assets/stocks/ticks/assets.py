"""The nightly hand-over in Dagster: the `stock_1min_synth` asset (one partition per Beijing
day), its two warning checks, the job and the 02:00 schedule. Thin: the work is in
`handover`."""

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
)
from pydantic import Field

from kline_assets.lib.settings import STOCK_TZ
from kline_assets.resources.ddl import ddl_schema
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource

from .. import STOCK_SYNTH_TABLE, STOCK_TABLE, SYNTH_SQL, rules
from ..sessions import calendar_metadata, is_trading_day
from .handover import DEFAULT_THRESHOLD, HandoverReport, accuracy_markdown, handover
from .keys import LiveKeys

HANDOVER_DAYS = DailyPartitionsDefinition(start_date="2020-01-01", timezone=STOCK_TZ)
ACCURACY_CHECK = "accuracy_vs_vendor"
INTEGRITY_CHECK = "no_missing_minutes"

SYNTH_SCHEMA = ddl_schema(SYNTH_SQL, "stock_1min_synth", {
    "time": "bar end, Beijing wall clock (no time zone)",
    "code": "security code, e.g. 600000.SH",
    "volume": "shares",
    "amount": "CNY",
    "archived_at": "when the hand-over wrote the row",
})


class HandoverConfig(Config):
    threshold: float = Field(default=DEFAULT_THRESHOLD, description="the accuracy check warns "
                             "when more than this share of frames differ from the vendor's")
    keep_redis: bool = Field(default=False, description="archive and report, but leave the "
                             "day's keys in Redis")
    profile: str = Field(default="end", description="the consumer's bar labels: end | tushare")


def _integrity_markdown(report: HandoverReport, limit: int = 20) -> str:
    gaps = report.integrity[report.integrity["missing"] > 0].sort_values(
        ["missing", "symbol"], ascending=[False, True]).head(limit)
    if gaps.empty:
        return "_every symbol has a bar for every session minute between its first and last_"
    lines = ["| symbol | bars | span | missing | gaps |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r.symbol} | {r.bars} | {r.span} | {r.missing} | {r.gaps} |"
              for r in gaps.itertuples(index=False)]
    return "\n".join(lines)


def _refused_metadata(report: HandoverReport, limit: int = 20) -> dict[str, MetadataValue]:
    """The symbols left out of the archive because they break the symbol rule, when any."""
    if not report.refused_symbols:
        return {}
    lines = [f"* {rules.shown_symbol(s)}" for s in report.refused_symbols[:limit]]
    more = len(report.refused_symbols) - limit
    if more > 0:
        lines.append(f"* … {more} more")
    return {"refused": MetadataValue.md(f"Not {rules.SYMBOL_RULE}, so not archived:\n\n"
                                        + "\n".join(lines))}


@asset(
    name=STOCK_SYNTH_TABLE,
    partitions_def=HANDOVER_DAYS,
    group_name="stocks",
    kinds={"redis", "postgres"},
    owners=["team:quant"],
    description="The day's 1-minute bars synthesised from ticks by `kline ticks consume`, "
    "handed over from Redis to PostgreSQL after the day: archived to stock_1min_synth "
    "(never stock_1min_qfq), checked for missing session minutes and against the vendor's "
    "bars of the same day, then deleted from Redis. Non-trading days do nothing.",
    metadata={"table": STOCK_SYNTH_TABLE, "dagster/column_schema": SYNTH_SCHEMA},
    check_specs=[
        AssetCheckSpec(ACCURACY_CHECK, asset=STOCK_SYNTH_TABLE,
                       description=f"Share of frames differing from the vendor's bars "
                       f"({STOCK_TABLE}) at most the configured threshold"),
        AssetCheckSpec(INTEGRITY_CHECK, asset=STOCK_SYNTH_TABLE,
                       description="Every symbol has a bar for each session minute between "
                       "its first and last bar"),
    ],
)
def stock_1min_synth(
    context: AssetExecutionContext, config: HandoverConfig, postgres: PostgresResource,
    redis: RedisResource,
) -> Iterator[MaterializeResult]:
    report = handover(postgres, redis.client(), LiveKeys(redis.key_prefix),
                      context.partition_key, profile=config.profile,
                      delete=not config.keep_redis)
    context.log.info(report.summary())
    window = context.partition_time_window
    calendar = calendar_metadata(window.start, window.end)
    if not report.trading_day:
        note = report.summary()
        yield MaterializeResult(
            metadata={"trading_day": False, "note": note, **calendar},
            check_results=[AssetCheckResult(check_name=name, passed=True,
                                            metadata={"note": note})
                           for name in (ACCURACY_CHECK, INTEGRITY_CHECK)])
        return
    share = report.exact_share
    mismatch = None if share is None else 1.0 - share
    accuracy_meta: dict[str, object] = {"vendor_has_day": report.vendor_has_day}
    if share is not None:
        a = report.accuracy
        accuracy_meta.update({
            "exact_share": share, "mismatch_share": mismatch, "threshold": config.threshold,
            "missing_frames": int(a["missing"].sum()), "extra_frames": int(a["extra"].sum()),
            "max_abs_close": float(a["max_abs_close"].max()),
            "max_abs_volume": float(a["max_abs_volume"].max()),
        })
    yield MaterializeResult(
        metadata={
            "trading_day": True, "bars_in_redis": report.in_redis,
            "rows_archived": report.archived, "symbols": len(report.integrity),
            "missing_minutes": report.gaps, "redis_keys_deleted": report.deleted_keys,
            "refused_symbols": len(report.refused_symbols),
            **_refused_metadata(report),
            "seconds": round(report.seconds, 3), **accuracy_meta, **calendar,
            "accuracy": MetadataValue.md(accuracy_markdown(report.accuracy)),
            "gaps": MetadataValue.md(_integrity_markdown(report)),
        },
        check_results=[
            AssetCheckResult(
                check_name=ACCURACY_CHECK, severity=AssetCheckSeverity.WARN,
                passed=mismatch is None or mismatch <= config.threshold,
                metadata=accuracy_meta if share is not None else
                {"note": f"{STOCK_TABLE} has no bars of {report.day}"}),
            AssetCheckResult(
                check_name=INTEGRITY_CHECK, severity=AssetCheckSeverity.WARN,
                passed=report.gaps == 0,
                metadata={"missing_minutes": report.gaps,
                          "symbols_with_gaps": int((report.integrity["missing"] > 0).sum())
                          if len(report.integrity) else 0}),
        ],
    )


stock_handover_job = define_asset_job(
    "stock_handover_job",
    selection=AssetSelection.assets(STOCK_SYNTH_TABLE),
    description="Archive a day's synthesised bars from Redis, check them against the vendor, "
    "then clear the day from Redis.",
)


@schedule(
    name="stock_handover_nightly",
    job=stock_handover_job,
    cron_schedule="0 2 * * *",
    execution_timezone=STOCK_TZ,
    description="02:00 Beijing: hand over the day that just ended when it was an XSHG trading "
    "day; after weekends and holidays it says so and launches nothing.",
)
def stock_handover_nightly(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    day = (context.scheduled_execution_time - timedelta(days=1)).date()
    if not is_trading_day(day):
        yield SkipReason(f"{day} is not an XSHG trading day: nothing to hand over")
        return
    yield RunRequest(run_key=f"handover@{day}", partition_key=day.isoformat())
