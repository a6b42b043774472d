"""Backfills of the price assets through Dagster's own backfill machinery: what an asset
backfill targets (AssetBackfillData, as the UI's backfill dialog and `launchPartitionBackfill`
build it) and the runs it submits (build_run_requests_with_backfill_policies, as the backfill
daemon calls it), executed and compared with months materialized one by one."""

from __future__ import annotations

import time

import numpy as np
import pytest
from dagster import AssetKey, materialize, partition_loading_context
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.asset_backfill import AssetBackfillData

from kline_assets.definitions import defs
from kline_assets.prices.assets import ALL, COMPUTED
from kline_assets.prices.partitions import create_run
from kline_assets.resources import ClickHouseIOManager, ClickHouseResource
from kline_assets_tests.support.prices import run, table

pytestmark = pytest.mark.slow  # Dagster's backfill machinery over two months

PRICE_KEYS = [a.key for a in COMPUTED]


def backfill_target(instance, partition_names: list[str]) -> dict[AssetKey, list[str]]:
    """Partitions per asset that an asset backfill of `partition_names` targets."""
    graph = defs.resolve_asset_graph()
    data = AssetBackfillData.from_asset_partitions(
        asset_graph=graph, partition_names=partition_names, asset_selection=PRICE_KEYS,
        dynamic_partitions_store=instance, backfill_start_timestamp=time.time(),
        all_partitions=False)
    with partition_loading_context(dynamic_partitions_store=instance):
        return {key: sorted(subset.get_partition_keys()) for key, subset in
                data.target_subset.partitions_subsets_by_asset_key.items()}


def backfill_runs(instance, partition_names: list[str]):
    target = backfill_target(instance, partition_names)
    partitions = [AssetKeyPartitionKey(key, pk) for key, pks in target.items() for pk in pks]
    with partition_loading_context(dynamic_partitions_store=instance):
        return build_run_requests_with_backfill_policies(
            partitions, defs.resolve_asset_graph(), instance)


def test_a_one_month_backfill_targets_that_month_only(instance):
    create_run(instance, "solo")
    target = backfill_target(instance, ["2025-11-01|solo"])
    assert target == {key: ["2025-11-01|solo"] for key in PRICE_KEYS}


def test_a_two_month_backfill_is_one_run_over_the_range(instance):
    create_run(instance, "solo")
    requests = backfill_runs(instance, ["2025-10-01|solo", "2025-11-01|solo"])
    assert len(requests) == 1
    (request,) = requests
    assert set(request.asset_selection) == set(PRICE_KEYS)
    assert request.tags["dagster/asset_partition_range_start"] == "2025-10-01|solo"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-11-01|solo"


def test_a_backfill_of_one_month_over_two_run_ids_fails_with_advice(instance, price_resources):
    """Dagster groups by the dimension with fewer keys: one month × two run ids becomes one run
    over a range of run ids, which the price assets refuse with what to do instead."""
    for run_id in ("solo", "other"):
        create_run(instance, run_id)
    (request,) = backfill_runs(instance, ["2025-10-01|solo", "2025-10-01|other"])
    result = materialize(ALL, selection=request.asset_selection, tags=request.tags,
                         resources=price_resources, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "launch one backfill per run id" in str(failure.event_specific_data.error)


def test_the_backfill_run_equals_two_sequential_months(price_resources, runs, demo_months,
                                                        clickhouse_dsn):
    keys = [f"{m}|live" for m in demo_months]
    assert keys[0] != keys[1]
    (request,) = backfill_runs(runs, keys)
    backfilled = ClickHouseResource(dsn=clickhouse_dsn,
                                    database=price_resources["clickhouse"].db + "_bf")
    backfilled.ensure_schema()
    try:
        resources = {**price_resources, "clickhouse": backfilled,
                     "clickhouse_io_manager": ClickHouseIOManager(clickhouse=backfilled)}
        result = materialize(ALL, selection=request.asset_selection, tags=request.tags,
                             resources=resources, instance=runs)
        assert result.success
        materialized = {(e.asset_key, e.partition) for e in
                        result.get_asset_materialization_events()}
        assert materialized == {(k, p) for k in PRICE_KEYS for p in keys}
        for key in keys:
            run(price_resources, runs, key)
        for name, order in (("cross_shop_agg", ["iphone_id", "bucket"]),
                            ("features_wide", ["scope", "bucket"])):
            a = table(price_resources["clickhouse"], name).sort_values(order)
            b = table(backfilled, name).sort_values(order)
            assert len(a) == len(b) > 0
            assert a[order].reset_index(drop=True).equals(b[order].reset_index(drop=True))
            for col in a.columns.difference([*order, "run_id"]):
                np.testing.assert_allclose(a[col].astype(float), b[col].astype(float),
                                           rtol=1e-9, equal_nan=True, err_msg=col)
    finally:
        backfilled.drop_database()


def test_each_month_of_a_backfill_run_is_materialized_alone_and_an_empty_month_not_at_all(
        price_resources, runs, demo_months):
    """A backfill of the month before the demo's data and the demo's two months: one run, but
    each month with data gets its own materialization (its own row count and partition), the
    empty month none, and the checks evaluate only the months that were materialized."""
    from kline_assets.lib.months import add_months, month_key, parse_month
    from kline_assets.prices.checks import aggregate_checks, price_aligned_checks

    empty = month_key(add_months(parse_month(demo_months[0]), -1))
    keys = [f"{m}|live" for m in (empty, *demo_months)]
    (request,) = backfill_runs(runs, keys)
    assert request.tags["dagster/asset_partition_range_start"] == keys[0]
    result = materialize([*ALL, *price_aligned_checks, *aggregate_checks],
                         selection=request.asset_selection, tags=request.tags,
                         resources=price_resources, instance=runs)
    assert result.success
    events = result.get_asset_materialization_events()
    materialized = sorted((e.asset_key.to_user_string(), e.partition) for e in events)
    assert materialized == sorted((k.to_user_string(), p) for k in PRICE_KEYS
                                  for p in keys[1:])
    for event in events:
        m = event.materialization.metadata
        name = event.asset_key.to_user_string()
        where = f"run_id = 'live' AND toStartOfMonth(bucket, 'Asia/Tokyo') = " \
                f"'{event.partition[:10]}'"
        if name in ("features_wide", "cohorts"):
            kind = "iphone" if name == "features_wide" else "cohort"
            where += f" AND splitByChar(':', scope)[1] = '{kind}'"
        stored = len(table(price_resources["clickhouse"], "features_wide" if name in
                           ("features_wide", "cohorts") else name, where))
        assert m["dagster/row_count"].value == m["rows"].value == stored > 0, (name, event)
        assert m["month"].value == event.partition[:7]
        assert "/" + event.partition[:7].replace("-", "") in m["partitions_replaced"].value
        assert event.materialization.tags[
            "dagster/partition/month"] == event.partition[:10]
    counts = {e.partition: e.materialization.metadata["rows"].value for e in events
              if e.asset_key == AssetKey("price_aligned")}
    assert counts[keys[1]] != counts[keys[2]]
    checked = {(e.asset_key.to_user_string(), e.partition)
               for e in result.get_asset_check_evaluations()}
    assert checked and {p for _, p in checked} == set(keys[1:])
    assert runs.get_materialized_partitions(AssetKey("price_aligned")) == set(keys[1:])
