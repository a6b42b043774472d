"""The live refresh as a Dagster job: one op that recomputes the window the live sensor
planned (`incremental.refresh_window`), then reports what a whole-month materialization would
— the months it touched, materialized, and their checks, evaluated on what was written."""

from datetime import datetime

from dagster import (
    AssetKey,
    AssetMaterialization,
    Config,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field

from kline_assets.lib.partitioned_checks import evaluators_of
from kline_assets.prices import checks as price_checks
from kline_assets.prices.incremental import RefreshPlan, refresh_window
from kline_assets.prices.partitions import LIVE, price_partition_key
from kline_assets.resources import ClickHouseResource, PostgresResource, TorchDeviceResource


class LiveRefreshConfig(Config):
    """The window the live sensor computed; ISO-8601 instants with their offset."""

    window_start: str = Field(description="first bucket to recompute, e.g. 2025-11-05T12:15+09:00")
    window_end: str = Field(description="end of the window: the end of the newest record's month")
    run_id: str = Field(default=LIVE, description="the run id to refresh (live)")
    device: str = Field(default="", description="override KLINE_DEVICE: auto, cpu, cuda:N")


def window_run_config(plan: RefreshPlan, run_id: str = LIVE) -> dict:
    return {"ops": {"refresh_live_window": {"config": {
        "window_start": plan.start.isoformat(), "window_end": plan.end.isoformat(),
        "run_id": run_id}}}}


@op(description="Recompute the price tables of `live` for the buckets new records can change "
                "and INSERT only those (ReplacingMergeTree keeps the newest; readers use FINAL).")
def refresh_live_window(context: OpExecutionContext, config: LiveRefreshConfig,
                 postgres: PostgresResource, clickhouse: ClickHouseResource,
                 torch_device: TorchDeviceResource) -> None:
    start = datetime.fromisoformat(config.window_start)
    end = datetime.fromisoformat(config.window_end)
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError(f"window must be two ISO instants with offsets, start < end: "
                         f"{config.window_start!r} → {config.window_end!r}")
    device = torch_device.get(config.device or None)
    report = refresh_window(postgres, clickhouse, device, config.run_id, start, end)
    context.log.info(f"refreshed {config.run_id} from {start:%Y-%m-%d %H:%M}: {report.rows}, "
                     f"{report.seconds}")
    for month in report.months:
        key = price_partition_key(config.run_id, month)
        for asset in ("price_aligned", "cross_shop_agg", "features_wide", "cohorts"):
            context.log_event(AssetMaterialization(
                asset_key=AssetKey(asset), partition=str(key),
                description="incremental live refresh (only the window's buckets written)",
                metadata={"incremental_window": f"{start.isoformat()} → {end.isoformat()}",
                          "rows_refreshed": report.rows.get(asset, 0),
                          "cross_shop_rows_deleted": report.deleted,
                          **report.seconds}))
            # What a whole-month materialization would check (price_checks defines them),
            # checked on what was written.
            for evaluator in evaluators_of(AssetKey(asset), price_checks):
                context.log_event(evaluator.evaluation(
                    str(key), {"clickhouse": clickhouse, "postgres": postgres}))


@job(name="live_refresh", tags={"kline/live_writer": "live"},
     description="Incremental, exact refresh of `live` over one window (launched by the live "
                 "sensor); whole months go through price_assets instead.")
def live_refresh_job() -> None:
    refresh_live_window()
