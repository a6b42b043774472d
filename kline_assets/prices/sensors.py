"""Keeping `live` current: every 15 minutes, new source rows → re-materialize their months.

The cursor is the highest record id seen, not the newest recorded_at: a scraper that delivers
late (an old recorded_at, a new id) still triggers the month the record belongs to. A record
dated outside the price partitions (a typo such as 2099, or before they start) is counted and
reported, and never blocks the valid records of the same batch.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

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

from kline_assets.errors import MissingTableError, ServiceUnavailableError
from kline_assets.prices.jobs import price_assets_job
from kline_assets.prices.partitions import (
    LIVE,
    RUN_ID_DIMENSION,
    month_partitions,
    price_partition_key,
)
from kline_assets.prices.source import PRICE_TABLE
from kline_assets.resources import PostgresResource
from kline_assets.resources.postgres import table_ident
from kline_assets.settings import PRICE_TZ


def months_with_new_rows(postgres: PostgresResource, after_id: int
                         ) -> tuple[int, dict[str, int]]:
    """(highest id, rows with id > after_id per Tokyo month 'YYYY-MM-01')."""
    with postgres.connect() as conn:
        top = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(
            table_ident(PRICE_TABLE)))
        max_id = int(top.fetchone()[0])
        if max_id <= after_id:
            return max_id, {}
        rows = conn.execute(
            sql.SQL(
                "SELECT to_char(date_trunc('month', recorded_at AT TIME ZONE {tz}), "
                "'YYYY-MM-DD'), count(*) FROM {t} WHERE id > %s AND id <= %s "
                "GROUP BY 1 ORDER BY 1"
            ).format(tz=sql.Literal(PRICE_TZ), t=table_ident(PRICE_TABLE)),
            (after_id, max_id),
        ).fetchall()
    return max_id, {month: int(n) for month, n in rows if month is not None}


def split_known_months(months: dict[str, int], now: datetime | None = None
                       ) -> tuple[list[str], dict[str, int]]:
    """(months that are price partitions, {other month: rows}) of new records."""
    known = set(month_partitions.get_partition_keys(
        current_time=now or datetime.now(ZoneInfo(PRICE_TZ))))
    inside = [m for m in months if m in known]
    return inside, {m: n for m, n in months.items() if m not in known}


@sensor(
    job=price_assets_job,
    minimum_interval_seconds=15 * 60,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Every 15 minutes: if new price records arrived (by id), materialize every price asset "
        "for run `live` in each month they belong to (late records included). Records dated "
        "outside the price partitions are counted in the log and skipped."
    ),
)
def live_prices_sensor(
    context: SensorEvaluationContext, postgres: PostgresResource
) -> SensorResult | SkipReason:
    after = int(context.cursor or 0)
    try:
        postgres.require_tables([PRICE_TABLE])
        max_id, months = months_with_new_rows(postgres, after)
    except (ServiceUnavailableError, MissingTableError) as exc:
        return SkipReason(str(exc))
    if not months:
        return SkipReason(f"no new price records after id {after}")
    inside, outside = split_known_months(months)
    if outside:
        context.log.warning(
            f"{sum(outside.values())} new record(s) dated outside the price partitions "
            f"(ids {after + 1}…{max_id}), skipped: {outside}")
    if not inside:
        return SensorResult(
            skip_reason=SkipReason(
                f"{sum(outside.values())} new record(s) after id {after}, all dated outside "
                f"the price partitions {outside}; cursor moved to {max_id}"),
            cursor=str(max_id))
    requests = [
        RunRequest(partition_key=price_partition_key(LIVE, month),
                   run_key=f"{LIVE}:{month}:{max_id}",
                   tags={"kline/trigger": "live_prices_sensor",
                         "kline/records_outside_partitions": str(sum(outside.values()))})
        for month in inside
    ]
    dynamic = []
    if not context.instance.has_dynamic_partition(RUN_ID_DIMENSION, LIVE):
        dynamic.append(AddDynamicPartitionsRequest(RUN_ID_DIMENSION, [LIVE]))
    return SensorResult(run_requests=requests, dynamic_partitions_requests=dynamic,
                        cursor=str(max_id))
