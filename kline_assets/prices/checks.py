"""Asset checks of the price tables, run on the materialized partition in ClickHouse.

Every check is partitioned like its asset (run_id × month), so the UI shows a result per
partition, and each is one aggregate query over the partition (milliseconds on a month).
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    DagsterInstance,
    asset_check,
)

from kline_assets.kernels.feature_names import FEATURE_COLUMNS, WINDOWS_MINUTES_TO_BUCKETS
from kline_assets.lib.months import add_months, month_key, month_of
from kline_assets.lib.partitioned_checks import partitioned_check
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.assets import (
    SCOPE_KIND_EXPR,
    cohorts,
    cross_shop_agg,
    features_wide,
    price_aligned,
)
from kline_assets.prices.partitions import (
    LIVE,
    price_month_window,
    price_partition_key,
    price_partitions,
    split_price_key,
)
from kline_assets.prices.source import read_cohorts, screen_cohorts
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import quote_literal, time_range_where, values_where


def partition_filter(partition_key: str, alias: str = "") -> str:
    """WHERE clause of one (run_id, month) partition of a price table (columns of `alias`)."""
    run_id, month = split_price_key(partition_key)
    prefix = f"{alias}." if alias else ""
    return (f"{values_where(prefix + 'run_id', [run_id])} AND "
            f"{time_range_where(prefix + 'bucket', *price_month_window(month))}")


@partitioned_check(
    asset=price_aligned,
    partitions_def=price_partitions,
    blocking=True,
    description="Exactly one row per (shop, iPhone, bucket) in the partition.",
    resources={"clickhouse"},
)
def price_aligned_unique(partition_key: str, clickhouse: ClickHouseResource) -> AssetCheckResult:
    with clickhouse.client() as client:
        rows, distinct = client.query(
            f"SELECT count(), uniqExact(shop_id, iphone_id, bucket) "
            f"FROM {clickhouse.table('price_aligned')} FINAL "
            f"WHERE {partition_filter(partition_key)}", settings=cl.reads()
        ).result_rows[0]
    return AssetCheckResult(
        passed=rows == distinct,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": rows, "distinct_keys": distinct, "duplicates": rows - distinct},
    )


@partitioned_check(
    asset=price_aligned,
    partitions_def=price_partitions,
    description="Every record lies in its bucket: 0 ≤ alignment_diff_sec < 900.",
    resources={"clickhouse"},
)
def price_aligned_in_bucket(
    partition_key: str, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    with clickhouse.client() as client:
        bad = client.query(
            f"SELECT count() FROM {clickhouse.table('price_aligned')} FINAL "
            f"WHERE {partition_filter(partition_key)} AND (alignment_diff_sec < 0 "
            f"OR alignment_diff_sec >= 900 OR toStartOfFifteenMinutes(record_time) != bucket)",
            settings=cl.reads()).result_rows[0][0]
    return AssetCheckResult(passed=bad == 0, metadata={"rows_outside_bucket": bad})


price_aligned_checks = [price_aligned_unique, price_aligned_in_bucket]


def _counts(clickhouse: ClickHouseResource, table: str, partition_key: str, where: str,
            **exprs: str) -> dict[str, int]:
    """{name: value} of aggregate expressions over one partition of `table` (FINAL)."""
    names = list(exprs)
    with clickhouse.client() as client:
        row = client.query(
            f"SELECT {', '.join(exprs[n] for n in names)} FROM {clickhouse.table(table)} FINAL "
            f"WHERE {partition_filter(partition_key)} AND ({where})", settings=cl.reads()
        ).result_rows[0]
    return {n: int(v) for n, v in zip(names, row, strict=True)}


@partitioned_check(
    asset=cross_shop_agg,
    partitions_def=price_partitions,
    description="A standard deviation needs two shops: shop_count ≥ 2 wherever std is not NULL.",
    resources={"clickhouse"},
)
def cross_shop_agg_std_needs_two_shops(
    partition_key: str, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    n = _counts(clickhouse, "cross_shop_agg", partition_key, "1", rows="count()",
                offending_rows="countIf(isNotNull(std) AND shop_count < 2)")
    return AssetCheckResult(passed=n["offending_rows"] == 0, metadata=n)


@partitioned_check(
    asset=cross_shop_agg,
    partitions_def=price_partitions,
    description="dispersion = std / mean (relative 1e-9) where both exist, NULL otherwise.",
    resources={"clickhouse"},
)
def cross_shop_agg_dispersion_is_std_over_mean(
    partition_key: str, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    n = _counts(
        clickhouse, "cross_shop_agg", partition_key, "1", rows="count()",
        offending_rows=(
            "countIf(isNotNull(std) AND isNotNull(mean) AND mean != 0 AND (isNull(dispersion) "
            "OR abs(dispersion - std / mean) > 1e-9 * abs(std / mean))) "
            "+ countIf((isNull(std) OR isNull(mean)) AND isNotNull(dispersion))"),
    )
    return AssetCheckResult(passed=n["offending_rows"] == 0, metadata=n)


IPHONE_ROWS = f"{SCOPE_KIND_EXPR} = 'iphone'"
NUMBER_COLUMNS = ["mean", "median", "std", "dispersion", *FEATURE_COLUMNS]
SHORTEST = min(WINDOWS_MINUTES_TO_BUCKETS)
CONSTANT = f"boll_width_{SHORTEST} = 0"
EQUAL_TO_CONSTANT = [f"{kind}_{SHORTEST}" for kind in ("sma", "wma", "boll_up", "boll_low")]
EMAS = [f"ema_{m}" for m in WINDOWS_MINUTES_TO_BUCKETS]


def _off(column: str, level: str) -> str:
    return f"abs({column} - {level}) > 1e-9 * abs({level})"


@partitioned_check(
    asset=features_wide,
    partitions_def=price_partitions,
    blocking=True,
    description=(
        "One row per (scope, bucket) of the iphone:ID scopes, with no bucket missing "
        "between a scope's first and last row in the month as readers see it (FINAL), and no "
        "row stored twice as the same version (same inserted_at). Newer versions not merged "
        "yet are counted apart (`unmerged_row_versions`): the live refresh INSERTs them for the "
        "buckets it recomputes and ReplacingMergeTree merges them later."
    ),
    resources={"clickhouse"},
)
def features_wide_one_row_per_scope_and_bucket(
    partition_key: str, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    with clickhouse.client() as client:
        table = clickhouse.table("features_wide")
        where = f"WHERE {partition_filter(partition_key)} AND {IPHONE_ROWS} GROUP BY scope"
        scopes, gaps = client.query(
            "SELECT count(), countIf(n != span) FROM (SELECT scope, count() AS n, "
            "intDiv(toUnixTimestamp(max(bucket)) - toUnixTimestamp(min(bucket)), 900) + 1 "
            f"AS span FROM {table} FINAL {where})", settings=cl.reads()).result_rows[0]
        duplicated, versions = client.query(
            "SELECT countIf(n != v), sum(v - u) FROM (SELECT scope, count() AS n, "
            "uniqExact(bucket, inserted_at) AS v, uniqExact(bucket) AS u "
            f"FROM {table} {where})", settings=cl.reads()).result_rows[0]
    return AssetCheckResult(
        passed=duplicated == 0 and gaps == 0, severity=AssetCheckSeverity.ERROR,
        metadata={"scopes": int(scopes), "scopes_with_duplicates": int(duplicated),
                  "scopes_with_gaps": int(gaps), "unmerged_row_versions": int(versions or 0)})


@partitioned_check(
    asset=features_wide,
    partitions_def=price_partitions,
    description="No NaN in the stats and the 21 feature columns: a missing number is NULL.",
    resources={"clickhouse"},
)
def features_wide_no_nan(partition_key: str, clickhouse: ClickHouseResource) -> AssetCheckResult:
    n = _counts(clickhouse, "features_wide", partition_key, IPHONE_ROWS,
                **{c: f"countIf(isNaN({c}))" for c in NUMBER_COLUMNS})
    bad = {c: v for c, v in n.items() if v}
    return AssetCheckResult(passed=not bad, metadata={
        "offending_rows": sum(bad.values()), "columns_with_nan": ", ".join(bad) or "none"})


@partitioned_check(
    asset=features_wide,
    partitions_def=price_partitions,
    description=(
        f"Averages of a constant stretch equal the constant: where the input held one price "
        f"over the last {SHORTEST} minutes (boll_width_{SHORTEST} = 0), sma, wma and the "
        f"Bollinger bands of {SHORTEST} minutes equal boll_mid_{SHORTEST} (and the mean, where "
        "the bucket has one); at a scope's first observation, the one-value stretch, every EMA "
        "equals the mean it is seeded with. Relative tolerance 1e-9."
    ),
    resources={"clickhouse"},
)
def features_wide_constant_stretch(
    partition_key: str, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    level = f"boll_mid_{SHORTEST}"
    flat = " OR ".join([*(_off(c, level) for c in EQUAL_TO_CONSTANT),
                        f"(isNotNull(mean) AND {_off('mean', level)})"])
    seeded = " OR ".join(_off(c, "mean") for c in EMAS)
    run_id, _ = split_price_key(partition_key)
    table = clickhouse.table("features_wide")
    firsts = (f"(scope, bucket) IN (SELECT scope, min(bucket) FROM {table} FINAL "
              f"WHERE {values_where('run_id', [run_id])} AND {IPHONE_ROWS} GROUP BY scope)")
    n = _counts(clickhouse, "features_wide", partition_key, IPHONE_ROWS,
                constant_rows=f"countIf({CONSTANT})",
                first_observations=f"countIf({firsts})",
                offending_rows=f"countIf(({CONSTANT} AND ({flat})) OR ({firsts} AND ({seeded})))")
    return AssetCheckResult(passed=n["offending_rows"] == 0, metadata=n)


@partitioned_check(
    asset=cohorts,
    partitions_def=price_partitions,
    description=(
        "Weights are normalised: each cohort mean equals Σ wᵢ·meanᵢ / Σ wᵢ over the members "
        "with a cross-shop mean in the bucket (relative 1e-9), recomputed from cross_shop_agg "
        "and cohort_member."
    ),
    resources={"clickhouse", "postgres"},
)
def cohorts_weights_normalised(
    partition_key: str, clickhouse: ClickHouseResource, postgres: PostgresResource
) -> AssetCheckResult:
    members, _ = screen_cohorts(read_cohorts(postgres))
    if members.empty:
        return AssetCheckResult(passed=True, metadata={"cohorts": 0, "compared_rows": 0})
    values = ", ".join(f"({quote_literal(str(r.slug))}, {int(r.iphone_id)}, {float(r.weight)!r})"
                       for r in members.itertuples())
    query = f"""
        WITH expected AS (
            SELECT concat('cohort:', m.slug) AS scope, a.bucket AS bucket,
                   sum(m.weight * a.mean) / sum(m.weight) AS mean
            FROM {clickhouse.table('cross_shop_agg')} AS a FINAL
            INNER JOIN (SELECT * FROM values('slug String, iphone_id UInt32, weight Float64',
                                             {values})) AS m ON a.iphone_id = m.iphone_id
            WHERE {partition_filter(partition_key, 'a')}
              AND isNotNull(a.mean)
            GROUP BY scope, bucket)
        SELECT count(), countIf(abs(f.mean - e.mean) > 1e-9 * abs(e.mean))
        FROM {clickhouse.table('features_wide')} AS f FINAL
        INNER JOIN expected AS e ON f.scope = e.scope AND f.bucket = e.bucket
        WHERE {partition_filter(partition_key, 'f')}
          AND isNotNull(f.mean)"""
    with clickhouse.client() as client:
        compared, off = client.query(query, settings=cl.reads()).result_rows[0]
    return AssetCheckResult(passed=off == 0, metadata={
        "cohorts": int(members["slug"].nunique()), "compared_rows": int(compared),
        "offending_rows": int(off)})


aggregate_checks = [
    cross_shop_agg_std_needs_two_shops, cross_shop_agg_dispersion_is_std_over_mean,
    features_wide_one_row_per_scope_and_bucket, features_wide_no_nan,
    features_wide_constant_stretch, cohorts_weights_normalised,
]


# --------------------------------------------------------------------------- freshness

FRESH_MINUTES = 30
DAY_HOURS = (9, 21)
"""Tokyo hours in which the shops are scraped every 15 minutes; `live` must keep up then."""


def live_freshness(instance: DagsterInstance, now: datetime,
                   day_hours: tuple[int, int] = DAY_HOURS) -> AssetCheckResult:
    """`live` features (features_wide) materialized within FRESH_MINUTES of `now` during the
    day. Reads the latest materialization of the live partitions of this month and the last
    (a month starts without data), not any partition: experiments do not make live fresh."""
    local = now.astimezone(ZoneInfo(PRICE_TZ))
    month = month_of(local, PRICE_TZ)
    keys = [str(price_partition_key(LIVE, month_key(m))) for m in (month, add_months(month, -1))]
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=features_wide.key, asset_partitions=keys), limit=1).records
    daytime = day_hours[0] <= local.hour < day_hours[1]
    meta: dict[str, object] = {"now": local.isoformat(timespec="minutes"),
                               "day_hours": f"{day_hours[0]:02d}:00–{day_hours[1]:02d}:00 Tokyo"}
    if records:
        age = (local.timestamp() - records[0].timestamp) / 60
        meta.update(last_materialized_partition=records[0].partition_key,
                    age_minutes=round(age, 1))
    else:
        age = None
        meta["last_materialized_partition"] = "none this month or the last"
    passed = not daytime or (age is not None and age <= FRESH_MINUTES)
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN, metadata=meta,
                            description=None if daytime else "outside the day: not required")


@asset_check(
    asset=features_wide,
    description=(
        f"Freshness: between {DAY_HOURS[0]:02d}:00 and {DAY_HOURS[1]:02d}:00 Tokyo, a `live` "
        f"partition of features_wide was materialized in the last {FRESH_MINUTES} minutes "
        "(the 15-minute sensor keeps it so). Run every 15 minutes by the prices_watch schedule."
    ),
)
def live_features_fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return live_freshness(context.instance, datetime.now(UTC))
