"""The price checks: each passes on the demo's months and fails on a row planted against it,
evaluated by Dagster with the materialization and recorded per partition."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    Definitions,
    define_asset_job,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from kline_assets.lib.months import month_key, month_of
from kline_assets.lib.settings import PRICE_TZ, SQL_DIR
from kline_assets.prices.assets import (
    cohorts,
    cross_shop_agg,
    features_wide,
    price_aligned,
    raw_price_records,
)
from kline_assets.prices.checks import (
    aggregate_checks,
    live_features_fresh,
    live_freshness,
    price_aligned_checks,
)
from kline_assets.prices.jobs import prices_watch_job
from kline_assets.prices.partitions import LIVE, create_run, price_partition_key
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets_tests.support.databases import ADMIN_DSN
from kline_assets_tests.support.prices import (
    HAND,
    demo_month_keys,
    insert_records,
    load_small_demo,
    resources_on,
)
from kline_assets_tests.support.readapi import scratch_database

pytestmark = pytest.mark.slow  # the demo's months materialized with every check

ASSETS = [raw_price_records, price_aligned, cross_shop_agg, features_wide, cohorts]
CHECKS = [*price_aligned_checks, *aggregate_checks]
NEW_CHECKS = {c.name for check in aggregate_checks for c in check.check_keys}


def evaluate(resources, instance, key: str, materialize_too: bool = True) -> dict:
    """{check name: (passed, metadata)} of one partition."""
    if materialize_too:
        result = materialize([*ASSETS, *CHECKS], partition_key=key, resources=resources,
                             instance=instance)
        assert result.success
    else:  # the checks alone, as the UI's "Execute checks" on a partition runs them
        job = define_asset_job("price_checks", selection=AssetSelection.checks(*aggregate_checks))
        defs = Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=[job], resources=resources)
        result = defs.resolve_job_def("price_checks").execute_in_process(
            tags={PARTITION_NAME_TAG: key}, instance=instance, raise_on_error=False)
        # a failed blocking check (ERROR severity) fails its step, and with it the run
    return {e.check_name: (e.passed, {k: v.value for k, v in e.metadata.items()})
            for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def checked_store(clickhouse_dsn) -> Iterator[dict]:
    """The small demo's two months materialized with their checks, once for the module (a
    minute of work): {resources, instance, key: the last month's key, by_month: {key:
    results}}.
    The planted-row test spoils this store, so it runs after the tests that read it."""
    with scratch_database(ADMIN_DSN) as dsn:
        postgres = PostgresResource(dsn=dsn)
        postgres.execute_file(SQL_DIR / "postgres" / "source.sql")
        load_small_demo(postgres)
        clickhouse = ClickHouseResource(dsn=clickhouse_dsn, database=f"c_{uuid.uuid4().hex[:10]}")
        clickhouse.ensure_schema()
        try:
            resources, instance = resources_on(postgres, clickhouse), DagsterInstance.ephemeral()
            for run_id in ("live", "backfill_v3"):
                create_run(instance, run_id)
            keys = [f"{month}|live" for month in demo_month_keys(postgres)]
            yield {"resources": resources, "instance": instance, "key": keys[-1],
                   "by_month": {key: evaluate(resources, instance, key) for key in keys}}
        finally:
            clickhouse.drop_database()


def test_every_check_passes_on_the_demo_and_is_exercised(checked_store):
    by_month = checked_store["by_month"]
    for results in by_month.values():
        assert set(results) >= NEW_CHECKS
        assert [n for n, (passed, _) in results.items() if not passed] == []
        assert results["cohorts_weights_normalised"][1]["compared_rows"] > 0
        assert results["features_wide_one_row_per_scope_and_bucket"][1]["scopes"] == 4
        assert results["cross_shop_agg_std_needs_two_shops"][1]["rows"] > 0

    def total(name: str) -> int:
        return sum(r["features_wide_constant_stretch"][1][name] for r in by_month.values())
    assert total("constant_rows") > 0 and total("first_observations") == 4


def test_the_checks_are_recorded_per_partition(checked_store):
    key = checked_store["key"]
    infos = checked_store["instance"].event_log_storage.get_asset_check_partition_info(
        [c for check in aggregate_checks for c in check.check_keys], partition_keys=[key])
    assert {(i.check_key.name, i.latest_execution_status.value) for i in infos} == {
        (name, "SUCCEEDED") for name in NEW_CHECKS}


def _columns(clickhouse: ClickHouseResource, table: str) -> list[str]:
    with clickhouse.client() as client:
        return [r[0] for r in client.query(
            f"SELECT name FROM system.columns WHERE database = '{clickhouse.db}' "
            f"AND table = '{table}' ORDER BY position").result_rows]


# --- freshness and the source's observation -------------------------------------------------

def _live_key(now: datetime) -> str:
    return str(price_partition_key(LIVE, month_key(month_of(now, PRICE_TZ))))


def test_live_features_must_be_fresher_than_30_minutes_during_the_day(runs):
    assert not live_freshness(runs, datetime.now(UTC), day_hours=(0, 24)).passed  # never
    runs.report_runless_asset_event(AssetMaterialization(
        features_wide.key, partition=f"{datetime.now(UTC):%Y-%m}-01|backfill_v3"))
    assert not live_freshness(runs, datetime.now(UTC), day_hours=(0, 24)).passed  # not live
    runs.report_runless_asset_event(AssetMaterialization(
        features_wide.key, partition=_live_key(datetime.now(UTC))))
    done = runs.fetch_materializations(features_wide.key, limit=1).records[0].timestamp
    at = datetime.fromtimestamp(done, UTC)

    fresh = live_freshness(runs, at + timedelta(minutes=29), day_hours=(0, 24))
    stale = live_freshness(runs, at + timedelta(minutes=31), day_hours=(0, 24))
    night = live_freshness(runs, at + timedelta(minutes=31), day_hours=(0, 0))

    assert fresh.passed and not stale.passed and night.passed
    assert stale.severity == AssetCheckSeverity.WARN
    assert stale.metadata["age_minutes"].value == pytest.approx(31, abs=0.1)


def test_the_watch_job_observes_the_source_and_checks_freshness(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    defs = Definitions(assets=ASSETS, asset_checks=[*CHECKS, live_features_fresh],
                       jobs=[prices_watch_job], resources=price_resources)
    result = defs.resolve_job_def("prices_watch").execute_in_process(instance=runs)
    assert result.success
    (observed,) = runs.fetch_observations(raw_price_records.key, limit=1).records
    assert observed.asset_observation.metadata["row_count"].value == len(HAND)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "live_features_fresh"


def test_a_backfill_range_records_each_check_per_month(price_resources, demo_months,
                                                       persistent_instance):
    """A single-run backfill is one run over a range: each month still gets its results."""
    instance = persistent_instance  # a storage of its own: the partition statuses are all ours
    create_run(instance, LIVE)
    keys = [f"{m}|live" for m in demo_months]
    result = materialize([*ASSETS, *CHECKS], resources=price_resources, instance=instance,
                         tags={ASSET_PARTITION_RANGE_START_TAG: keys[0],
                               ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
    assert result.success
    check_keys = [c for check in CHECKS for c in check.check_keys]
    infos = instance.event_log_storage.get_asset_check_partition_info(check_keys)
    status = {(i.check_key.name, i.partition_key): i.latest_execution_status.value
              for i in infos}
    assert status == {(c.name, k): "SUCCEEDED" for c in check_keys for k in keys}


def _insert(clickhouse: ClickHouseResource, table: str, select: str) -> None:
    """Insert rows derived from the table's own rows (a later inserted_at: FINAL keeps them)."""
    with clickhouse.client() as client:
        client.command(f"INSERT INTO {clickhouse.table(table)} {select}")


def test_each_check_fails_on_its_planted_row(checked_store):
    """Last in the module: it plants bad rows in the shared store."""
    key, resources = checked_store["key"], checked_store["resources"]
    instance = checked_store["instance"]
    ch = resources["clickhouse"]
    agg, wide = ch.table("cross_shop_agg"), ch.table("features_wide")
    # one shop and a std; a dispersion that is not std / mean
    _insert(ch, "cross_shop_agg",
            f"SELECT run_id, bucket, iphone_id, mean, median, 5.0, 1, 0.5, quorum_met, "
            f"now() + 60 FROM {agg} FINAL ORDER BY bucket DESC LIMIT 1")
    # a newer version of an iphone row (what the live refresh writes) carrying a NaN, and a
    # constant 2-hour window whose WMA is off
    cols = [c for c in _columns(ch, "features_wide") if c != "inserted_at"]
    copy = ", ".join(
        "nan" if c == "median" else
        "0" if c == "boll_width_120" else
        "boll_mid_120 * 1.01" if c == "wma_120" else c for c in cols)
    _insert(ch, "features_wide",
            f"SELECT {copy}, now() + 60 FROM {wide} FINAL WHERE scope LIKE 'iphone:%' "
            f"AND isNotNull(boll_mid_120) ORDER BY bucket DESC LIMIT 1")
    # the same version of an iphone row stored twice (the staged swap never writes one)
    _insert(ch, "features_wide",
            f"SELECT {', '.join(cols)}, inserted_at FROM {wide} FINAL "
            f"WHERE scope LIKE 'iphone:%' AND isNotNull(mean) ORDER BY bucket DESC LIMIT 1")
    # a cohort mean off its members' weighted mean
    moved = ", ".join("mean * 1.01" if c == "mean" else c for c in cols)
    _insert(ch, "features_wide",
            f"SELECT {moved}, now() + 60 FROM {wide} FINAL WHERE scope LIKE 'cohort:%' "
            f"AND isNotNull(mean) ORDER BY bucket DESC LIMIT 1")

    results = evaluate(resources, instance, key, materialize_too=False)

    failed = {n for n, (passed, _) in results.items() if not passed}
    assert failed == NEW_CHECKS
    assert results["features_wide_no_nan"][1]["columns_with_nan"] == "median"
    assert results["features_wide_one_row_per_scope_and_bucket"][1][
        "scopes_with_duplicates"] == 1
    assert results["cohorts_weights_normalised"][1]["offending_rows"] == 1
