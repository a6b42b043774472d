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
from kline_assets.prices.partitions import create_run
from kline_assets.resources import ClickHouseIOManager, ClickHouseResource
from kline_assets_tests.prices.test_assets import ALL, COMPUTED, run, table

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
