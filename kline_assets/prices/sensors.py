"""Keeping `live` current: every 15 minutes, new source rows → an incremental, exact refresh.

The cursor is the highest record id seen, not the newest recorded_at: a scraper that delivers
late (an old recorded_at, a new id) still triggers the buckets the record belongs to. What is
recomputed is planned by `incremental.plan_refresh`: the window from the earliest affected
bucket to the newest record (one `live_refresh` run), or whole months (one `price_assets` run
over their range) when the window would be long or has no stored state to continue from. A
record dated outside the price partitions (a typo such as 2099, or before they start) is
counted and reported, and never blocks the valid records of the same batch. A store that
cannot be reached is a skip naming it, never a failed tick.

Deployments run the sensor by default: `KLINE_LIVE_REFRESH=on` (docker-compose sets it) makes
its default status RUNNING; elsewhere (tests, a laptop) it starts stopped.
"""

from __future__ import annotations

import os

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kline_assets.lib.errors import MissingTableError, ServiceUnavailableError
from kline_assets.prices.incremental import RefreshPlan, new_records, plan_refresh
from kline_assets.prices.jobs import price_assets_job
from kline_assets.prices.live_job import live_refresh_job, window_run_config
from kline_assets.prices.partitions import LIVE, RUN_ID_DIMENSION, price_partition_key
from kline_assets.prices.source import PRICE_TABLE
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.clickhouse.worker import in_engine_worker

LIVE_REFRESH_ENV = "KLINE_LIVE_REFRESH"
LIVE_WRITER_TAG = "kline/live_writer"


def live_refresh_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether the live sensor and the daily safety net start RUNNING (deployments)."""
    value = (os.environ if environ is None else environ).get(LIVE_REFRESH_ENV, "")
    return value.strip().lower() in {"1", "on", "true", "yes"}


def live_default_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if live_refresh_enabled() else DefaultSensorStatus.STOPPED


def run_request(plan: RefreshPlan, max_id: int, tags: dict[str, str]) -> RunRequest:
    """One run for the plan; the run key (window or months, and the cursor) keeps it unique."""
    tags = {**tags, LIVE_WRITER_TAG: LIVE}
    if plan.incremental:
        return RunRequest(
            job_name=live_refresh_job.name, run_config=window_run_config(plan),
            run_key=f"{LIVE}:window:{plan.start.isoformat()}:{max_id}",
            tags={**tags, "kline/window_start": plan.start.isoformat()})
    first, last = plan.months[0], plan.months[-1]
    key = f"{LIVE}:months:{first}:{last}:{max_id}"
    if first == last:
        return RunRequest(job_name=price_assets_job.name, run_key=key,
                          partition_key=price_partition_key(LIVE, first), tags=tags)
    return RunRequest(job_name=price_assets_job.name, run_key=key, tags={
        **tags,
        ASSET_PARTITION_RANGE_START_TAG: str(price_partition_key(LIVE, first)),
        ASSET_PARTITION_RANGE_END_TAG: str(price_partition_key(LIVE, last))})


@sensor(
    jobs=[live_refresh_job, price_assets_job],
    minimum_interval_seconds=15 * 60,
    default_status=live_default_status(),
    description=(
        "Every 15 minutes: if new price records arrived (by id), refresh run `live` from the "
        "earliest bucket they change (late records included) to the newest, writing only those "
        "buckets; whole months when that window is over 3 days or has nothing to continue "
        "from. Records dated outside the price partitions are counted and skipped. On by "
        f"default where {LIVE_REFRESH_ENV}=on (docker-compose)."
    ),
)
def live_prices_sensor(
    context: SensorEvaluationContext, postgres: PostgresResource, clickhouse: ClickHouseResource
) -> SensorResult | SkipReason:
    after = int(context.cursor or 0)
    try:
        postgres.require_tables([PRICE_TABLE])
        new = new_records(postgres, after)
        if not new.months and not new.outside:
            return SkipReason(f"no new price records after id {after}")
        plan = None
        if new.months:
            # A tick skips rather than queue behind a run; the code server lives for weeks,
            # so its engine opens happen in a retired worker.
            plan = in_engine_worker(plan_refresh, clickhouse.short_look(), new)
    except (ServiceUnavailableError, MissingTableError) as exc:
        return SkipReason(str(exc))
    outside = sum(new.outside.values())
    if outside:
        context.log.warning(
            f"{outside} new record(s) dated outside the price partitions "
            f"(ids {after + 1}…{new.max_id}), skipped: {new.outside}")
    if plan is None:
        return SensorResult(
            skip_reason=SkipReason(
                f"{outside} new record(s) after id {after}, all dated outside "
                f"the price partitions {new.outside}; cursor moved to {new.max_id}"),
            cursor=str(new.max_id))
    context.log.info(f"{sum(new.months.values())} new record(s): {plan.reason}")
    request = run_request(plan, new.max_id, {
        "kline/trigger": "live_prices_sensor",
        "kline/plan": plan.reason[:200],
        "kline/records_outside_partitions": str(outside)})
    dynamic = []
    if not context.instance.has_dynamic_partition(RUN_ID_DIMENSION, LIVE):
        dynamic.append(AddDynamicPartitionsRequest(RUN_ID_DIMENSION, [LIVE]))
    return SensorResult(run_requests=[request], dynamic_partitions_requests=dynamic,
                        cursor=str(new.max_id))
