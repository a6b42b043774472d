"""Keeping `live` current: every 15 minutes, new source rows → re-materialize their months.

The cursor is the highest record id seen, not the newest recorded_at: a scraper that delivers
late (an old recorded_at, a new id) still triggers the month the record belongs to.
"""

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from psycopg import sql

from kline_assets.prices.definitions_jobs import price_assets_job
from kline_assets.prices.partitions import RUN_ID_DIMENSION, price_partition_key
from kline_assets.prices.runs import LIVE
from kline_assets.resources import PostgresResource
from kline_assets.settings import PRICE_TZ


def months_with_new_rows(postgres: PostgresResource, after_id: int) -> tuple[int, list[str]]:
    """(highest id, Tokyo months 'YYYY-MM-01' of the rows with id > after_id)."""
    table = sql.Identifier(*postgres.price_table.split("."))
    with postgres.connect() as conn:
        top = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(table))
        max_id = int(top.fetchone()[0])
        if max_id <= after_id:
            return max_id, []
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT to_char(date_trunc('month', recorded_at AT TIME ZONE {tz}), "
                "'YYYY-MM-DD') FROM {t} WHERE id > %s AND id <= %s ORDER BY 1"
            ).format(tz=sql.Literal(PRICE_TZ), t=table),
            (after_id, max_id),
        ).fetchall()
    return max_id, [r[0] for r in rows]


@sensor(
    job=price_assets_job,
    minimum_interval_seconds=15 * 60,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Every 15 minutes: if new price records arrived (by id), materialize every price asset "
        "for run `live` in each month they belong to (late records included)."
    ),
)
def live_prices_sensor(
    context: SensorEvaluationContext, postgres: PostgresResource
) -> SensorResult | SkipReason:
    postgres.require_tables([postgres.price_table])
    after = int(context.cursor or 0)
    max_id, months = months_with_new_rows(postgres, after)
    if not months:
        return SkipReason(f"no new price records after id {after}")
    requests = [
        RunRequest(partition_key=price_partition_key(LIVE, month),
                   run_key=f"{LIVE}:{month}:{max_id}",
                   tags={"kline/trigger": "live_prices_sensor"})
        for month in months
    ]
    dynamic = []
    if not context.instance.has_dynamic_partition(RUN_ID_DIMENSION, LIVE):
        dynamic.append(AddDynamicPartitionsRequest(RUN_ID_DIMENSION, [LIVE]))
    return SensorResult(run_requests=requests, dynamic_partitions_requests=dynamic,
                        cursor=str(max_id))
