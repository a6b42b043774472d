"""The price assets: raw_price_records (PostgreSQL source) → price_aligned → cross_shop_agg →
features_wide (scope `iphone:<id>`) and cohorts (scope `cohort:<slug>`), all in ClickHouse.

Assets stay thin: reading and screening live in `source`, alignment in `aligned`, the
table ↔ tensor translation in `compute`, the warm-up rules in `warmup`. Every aggregation
asset reads the previous month as warm-up (from the store, in `warmup.with_warm_up`; the
Dagster input is the same month, so a one-month backfill stays one month), so a month
materialized alone equals the same month of one long run. A month without data emits no
materialization (`emit`), so the partition bars show which months hold data.
The compute module (and with it torch, seconds to import) is imported inside the asset
bodies: every Dagster step process loads this module, most of them never compute.
"""

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetSpec,
    BackfillPolicy,
    Config,
    DataVersion,
    MetadataValue,
    ObserveResult,
    Output,
    asset,
    multi_observable_source_asset,
)
from psycopg import sql
from pydantic import Field

from kline_assets.lib.plots import features_markdown
from kline_assets.prices.aligned import CHUNK_DAYS, AlignedStream
from kline_assets.prices.emit import emit_unless_empty, say_nothing_materialized
from kline_assets.prices.partitions import (
    PARTITION_EXPR,
    context_window,
    previous_month_start,
    price_partitions,
    same_month,
)
from kline_assets.prices.run_config import PRICE_RUN_DEFAULTS, PriceRun
from kline_assets.prices.schemas import (
    CROSS_SHOP_AGG_SCHEMA,
    FEATURES_WIDE_SCHEMA,
    PRICE_ALIGNED_SCHEMA,
)
from kline_assets.prices.source import PRICE_TABLE, has_records, read_cohorts, screen_cohorts
from kline_assets.prices.warmup import (
    check_warmup,
    cohort_seeds,
    last_bucket_with_source,
    last_means_before,
    stored_rows,
    with_warm_up,
)
from kline_assets.resources import ClickHouseResource, PostgresResource, TorchDeviceResource
from kline_assets.resources.clickhouse import FrameStream
from kline_assets.resources.device import describe_device
from kline_assets.resources.postgres import table_ident

if TYPE_CHECKING:
    from kline_assets.prices.compute import Computed

OWNERS = ["team:pricing"]
BACKFILL = BackfillPolicy.single_run()
"""A backfill of a month range runs once per run id and walks its months in order, as one long
computation (each month needs the one before as warm-up)."""


RAW_PRICE_RECORDS = AssetSpec(
    "raw_price_records",
    group_name="prices",
    owners=OWNERS,
    kinds={"postgres"},
    description=(
        "Second-hand iPhone purchase prices scraped from 20+ shops about every 15 minutes. "
        "PostgreSQL table purchasing_shop_price_record, the source of truth, written by the "
        "scrapers outside this project. Observed every 15 minutes by the prices_watch schedule: "
        "newest recorded_at and row count."
    ),
    metadata={"table": "purchasing_shop_price_record", "database": "postgresql"},
)


# A multi-asset of one spec: @observable_source_asset in Dagster 1.13 takes no owners or kinds.
@multi_observable_source_asset(specs=[RAW_PRICE_RECORDS], name="raw_price_records")
def raw_price_records(postgres: PostgresResource) -> Iterator[ObserveResult]:
    postgres.require_tables([PRICE_TABLE])
    with postgres.connect() as conn:
        newest, count = conn.execute(
            sql.SQL("SELECT max(recorded_at), count(*) FROM {}").format(table_ident(PRICE_TABLE))
        ).fetchone()
    yield ObserveResult(
        asset_key=RAW_PRICE_RECORDS.key,
        data_version=DataVersion(f"{newest}|{count}"),
        metadata={
            "row_count": MetadataValue.int(count),
            "newest_recorded_at": MetadataValue.text(str(newest)),
        },
    )


class AlignConfig(Config):
    """How much of the month price_aligned holds in memory at once."""

    chunk_days: int = Field(default=CHUNK_DAYS, ge=1, le=31, description=(
        "days of records read and aligned at once (memory; 31 = the month in one chunk)"))


@asset(
    partitions_def=price_partitions,
    backfill_policy=BACKFILL,
    output_required=False,
    deps=[raw_price_records],
    resource_defs=PRICE_RUN_DEFAULTS,
    io_manager_key="clickhouse_io_manager",
    group_name="prices",
    owners=OWNERS,
    kinds={"python", "postgres", "clickhouse"},
    description=(
        "Raw records aligned to 15-minute buckets (Asia/Tokyo, labelled by start): per shop, "
        "iPhone and bucket the latest record wins (ties: higher id). Rows with NULL or "
        "non-positive prices or unknown shop/iPhone ids are rejected and counted in metadata. "
        "Each (run_id, month) partition is replaced atomically in ClickHouse."
    ),
    metadata={"partition_expr": PARTITION_EXPR, "dagster/column_schema": PRICE_ALIGNED_SCHEMA},
)
def price_aligned(
    context: AssetExecutionContext,
    config: AlignConfig,
    price_run: PriceRun,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
) -> Iterator[Output[FrameStream]]:
    run_id, month, start, end = context_window(context)
    postgres.require_tables([PRICE_TABLE])
    if not has_records(postgres, start, end):
        stale = stored_rows(clickhouse, "price_aligned", run_id, start, end)
        if not stale:
            say_nothing_materialized(context, run_id, start, end)
            return
        context.log.warning(f"no source records for {run_id} {month}: clearing the {stale} "
                            "rows stored by an earlier materialization")
        context.add_output_metadata({"cleared_rows": stale})
    # Streamed: the IO manager writes each chunk of days as it is aligned (bounded memory).
    aligned = AlignedStream(postgres, run_id, start, end, price_run.iphone_ids,
                            price_run.shop_ids, config.chunk_days)

    def summary() -> dict:
        # Alignment is one NumPy lexsort: it runs on the CPU whatever KLINE_DEVICE says.
        metadata = {"run_id": run_id, "month": month, **aligned.metadata,
                    "device": "cpu (numpy)"}
        screened = aligned.screened
        if screened.rejected:
            metadata["rejections"] = MetadataValue.json(screened.rejected)
            metadata["rejected_sample"] = MetadataValue.md(
                screened.sample.to_markdown(index=False))
            context.log.warning(
                f"{screened.rejected_total} source rows rejected: {screened.rejected}")
        return metadata

    yield from emit_unless_empty(context, clickhouse, FrameStream(aligned.frames(), summary),
                                 table="price_aligned", run_id=run_id, start=start, end=end)


SCOPE_KIND_EXPR = "splitByChar(':', scope)[1]"


COLD_START_HELP = (
    "compute even when the warm-up month has source data the run has not materialized "
    "(the result then differs from one long computation; recorded in metadata)"
)


class AggregateConfig(Config):
    """cross_shop_agg's own settings; the subset, device and outlier/quorum rules are the
    run's (`price_run` resource)."""

    lookback_minutes: int = Field(default=15, ge=15, description="a multiple of 15")
    cold_start: bool = Field(default=False, description=COLD_START_HELP)


class FeatureConfig(Config):
    cold_start: bool = Field(default=False, description=COLD_START_HELP)


def _report(context: AssetExecutionContext, computed: "Computed", device, extra: dict) -> None:
    context.add_output_metadata({
        "rows": len(computed.frame),
        "device": describe_device(device),
        **computed.info,
        **computed.seconds,
        **extra,
    })


def _begin(context: AssetExecutionContext, config: AggregateConfig | FeatureConfig,
           price_run: PriceRun, torch_device: TorchDeviceResource,
           clickhouse: ClickHouseResource, postgres: PostgresResource, input_table: str):
    """(run_id, warm_start, start, end, device) of a run over one month or a range of one run
    id, after making sure the warm-up month is there (or a cold start was asked for)."""
    run_id, _, start, end = context_window(context)
    warm_start = previous_month_start(start)
    warm_up = check_warmup(
        clickhouse, postgres, asset=context.asset_key.to_user_string(),
        input_table=input_table, run_id=run_id, warm_start=warm_start, start=start,
        cold_start=config.cold_start)
    context.add_output_metadata({"warm_up": warm_up})
    return run_id, warm_start, start, end, torch_device.get(price_run.device or None)


@asset(
    partitions_def=price_partitions,
    backfill_policy=BACKFILL,
    output_required=False,
    # Only the columns the statistics read: two months of price_aligned are the asset's
    # largest input, and the rest (run_id strings, grades, times) would double its memory.
    ins={"price_aligned": AssetIn(partition_mapping=same_month,
                                  metadata={"columns": ["bucket", "shop_id", "iphone_id",
                                                        "price_new"]})},
    resource_defs=PRICE_RUN_DEFAULTS,
    io_manager_key="clickhouse_io_manager",
    group_name="prices",
    owners=OWNERS,
    kinds={"pytorch", "clickhouse"},
    description=(
        "Cross-shop statistics per iPhone and 15-minute bucket: each shop's latest price in "
        "the lookback window, outliers beyond ±band around the median dropped where ≥ 3 shops "
        "report, then mean, median (numpy convention), sample std, shop count, dispersion and "
        "whether the quorum was met. The previous month is read for the lookback carry."
    ),
    metadata={"partition_expr": PARTITION_EXPR, "dagster/column_schema": CROSS_SHOP_AGG_SCHEMA},
)
def cross_shop_agg(
    context: AssetExecutionContext, config: AggregateConfig, price_aligned: pd.DataFrame,
    price_run: PriceRun, torch_device: TorchDeviceResource, clickhouse: ClickHouseResource,
    postgres: PostgresResource,
) -> Iterator[Output[pd.DataFrame]]:
    from kline_assets.prices.compute import cross_shop

    run_id, warm_start, start, end, device = _begin(
        context, config, price_run, torch_device, clickhouse, postgres, "price_aligned")
    if config.lookback_minutes % 15:
        raise ValueError(
            f"lookback_minutes must be a multiple of 15, got {config.lookback_minutes}")
    aligned = with_warm_up(clickhouse, "price_aligned", price_aligned, run_id, warm_start, start)
    if price_run.iphone_ids:
        aligned = aligned[aligned["iphone_id"].isin(price_run.iphone_ids)]
    if price_run.shop_ids:
        aligned = aligned[aligned["shop_id"].isin(price_run.shop_ids)]
    computed = cross_shop(
        aligned, run_id, warm_start, start, end, device,
        lookback_buckets=config.lookback_minutes // 15,
        outlier_filter=price_run.outlier_filter, band=price_run.outlier_band,
        min_quorum=price_run.min_quorum, quorum_policy=price_run.quorum_policy,
    )
    _report(context, computed, device, {"quorum_policy": price_run.quorum_policy,
                                        "min_quorum": price_run.min_quorum})
    yield from emit_unless_empty(context, clickhouse, computed.frame, table="cross_shop_agg",
                                 run_id=run_id, start=start, end=end)


def _warm_and_last(clickhouse: ClickHouseResource, run_id: str, warm_start, start, end):
    """(last mean per iPhone before the warm-up, last bucket of the months with source)."""
    last = last_means_before(clickhouse, run_id, warm_start)
    return last, last_bucket_with_source(clickhouse, run_id, start, end)


def _feature_inputs(clickhouse: ClickHouseResource, price_run: PriceRun,
                    cross_shop_agg: pd.DataFrame, run_id: str, warm_start, start, end):
    """(cross_shop_agg rows with the warm-up month, warm-up means, last bucket) of the run's
    iPhones (all when no subset): what features_wide and cohorts both start from."""
    last, last_bucket = _warm_and_last(clickhouse, run_id, warm_start, start, end)
    agg = with_warm_up(clickhouse, "cross_shop_agg", cross_shop_agg, run_id, warm_start, start)
    if price_run.iphone_ids:
        agg = agg[agg["iphone_id"].isin(price_run.iphone_ids)]
        last = last[last["iphone_id"].isin(price_run.iphone_ids)]
    return agg, last, last_bucket


def _plot(frame: pd.DataFrame) -> dict:
    if frame.empty:
        return {}
    scope = frame.groupby("scope")["shop_count"].sum().idxmax()
    return {"plot": features_markdown(frame, scope)}


FEATURE_ASSET_KW = dict(
    partitions_def=price_partitions,
    backfill_policy=BACKFILL,
    output_required=False,
    ins={"cross_shop_agg": AssetIn(partition_mapping=same_month)},
    resource_defs=PRICE_RUN_DEFAULTS,
    io_manager_key="clickhouse_io_manager",
    group_name="prices",
    owners=OWNERS,
    kinds={"pytorch", "clickhouse"},
)


def _emit_features(context: AssetExecutionContext, clickhouse: ClickHouseResource,
                   frame: pd.DataFrame, scope_kind: str, run_id: str, start, end):
    """features_wide and cohorts share a table: each clears only its own scope kind."""
    yield from emit_unless_empty(context, clickhouse, frame, table="features_wide", run_id=run_id,
                                 start=start, end=end,
                                 where=f"{SCOPE_KIND_EXPR} = '{scope_kind}'")


def features_wide_metadata(scope_kind: str) -> dict:
    """Both scope kinds share the features_wide table; each owns its scope-kind partitions."""
    return {"partition_expr": PARTITION_EXPR, "table": "features_wide",
            "extra_partition": {"expr": SCOPE_KIND_EXPR, "value": scope_kind},
            "dagster/column_schema": FEATURES_WIDE_SCHEMA}


@asset(
    **FEATURE_ASSET_KW,
    description=(
        "Per-iPhone features in features_wide (scope iphone:ID, e.g. `iphone:12`): the "
        "cross-shop stats and, on "
        "the forward-filled mean, EMA/SMA/WMA and Bollinger mid/up/low/width over 120, 900 and "
        "1800 minutes. A row for every bucket from the first observation to the last bucket "
        "holding source records; empty buckets carry NULL stats and shop_count 0."
    ),
    metadata=features_wide_metadata("iphone"),
)
def features_wide(
    context: AssetExecutionContext, config: FeatureConfig, cross_shop_agg: pd.DataFrame,
    price_run: PriceRun, clickhouse: ClickHouseResource, torch_device: TorchDeviceResource,
    postgres: PostgresResource,
) -> Iterator[Output[pd.DataFrame]]:
    from kline_assets.prices.compute import features_frame, series_from_rows

    run_id, warm_start, start, end, device = _begin(
        context, config, price_run, torch_device, clickhouse, postgres, "cross_shop_agg")
    agg, last, last_bucket = _feature_inputs(clickhouse, price_run, cross_shop_agg, run_id,
                                             warm_start, start, end)
    _, series = series_from_rows(agg, last.set_index("iphone_id")["mean"], warm_start, end,
                                 device)
    computed = features_frame(series, run_id, warm_start, start, end, last_bucket, device)
    _report(context, computed, device, _plot(computed.frame))
    yield from _emit_features(context, clickhouse, computed.frame, "iphone", run_id, start, end)


@asset(
    **FEATURE_ASSET_KW,
    description=(
        "Cohort features in features_wide (scope cohort:SLUG, e.g. `cohort:pro-latest`), "
        "cohorts and weights read from "
        "PostgreSQL (cohort, cohort_member): weighted mean over members with data in the bucket "
        "(weights renormalised), median and std across member means, summed shop counts, and "
        "the same features on the cohort mean. Never touches iphone rows."
    ),
    metadata=features_wide_metadata("cohort"),
)
def cohorts(
    context: AssetExecutionContext, config: FeatureConfig, cross_shop_agg: pd.DataFrame,
    price_run: PriceRun, clickhouse: ClickHouseResource, postgres: PostgresResource,
    torch_device: TorchDeviceResource,
) -> Iterator[Output[pd.DataFrame]]:
    from kline_assets.prices.compute import cohort_series, features_frame, series_from_rows

    run_id, warm_start, start, end, device = _begin(
        context, config, price_run, torch_device, clickhouse, postgres, "cross_shop_agg")
    t0 = time.perf_counter()
    members, rejected = screen_cohorts(read_cohorts(postgres))
    extra: dict = {"cohorts": int(members["slug"].nunique()), "members": len(members),
                   "members_rejected": len(rejected)}
    if len(rejected):
        extra["rejected_members"] = MetadataValue.md(rejected.to_markdown(index=False))
        context.log.warning(f"{len(rejected)} cohort member(s) ignored: "
                            f"{rejected[['slug', 'iphone_id', 'reason']].to_dict('records')}")
    # A subset run's cohorts are over the subset's members only.
    agg, last, last_bucket = _feature_inputs(clickhouse, price_run, cross_shop_agg, run_id,
                                             warm_start, start, end)
    ids, iphone = series_from_rows(agg, last.set_index("iphone_id")["mean"],
                                   warm_start, end, device)
    series = cohort_series(iphone, ids, members, cohort_seeds(last, members), device)
    computed = features_frame(series, run_id, warm_start, start, end, last_bucket, device)
    computed.seconds["total_seconds"] = round(time.perf_counter() - t0, 4)
    _report(context, computed, device, {**extra, **_plot(computed.frame)})
    yield from _emit_features(context, clickhouse, computed.frame, "cohort", run_id, start, end)


COMPUTED = [price_aligned, cross_shop_agg, features_wide, cohorts]
"""The price assets the project computes, in graph order."""
ALL = [raw_price_records, *COMPUTED]
"""Every price asset: the observed source, then what is computed from it."""
