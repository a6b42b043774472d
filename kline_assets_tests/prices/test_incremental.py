"""Incremental live refresh: after any sequence of refreshes, `live` equals a full recompute of
its months (≤ 1e-9 relative, every column), with records arriving in batches — across a month
boundary, after a pause, and a late record for an earlier day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import build_sensor_context, materialize

from kline_assets.prices.assets import (
    ALL,
    COMPUTED,
)
from kline_assets.prices.live_job import live_refresh_job
from kline_assets.prices.sensors import live_prices_sensor
from kline_assets.resources import ClickHouseIOManager, ClickHouseResource
from kline_assets.resources.clickhouse.sql import read_frame
from kline_assets_tests.support.prices import insert_records

KEYS = {"price_aligned": ["iphone_id", "shop_id", "bucket"],
        "cross_shop_agg": ["iphone_id", "bucket"], "features_wide": ["scope", "bucket"]}


def materialize_month(resources, instance, month: str) -> None:
    assert materialize(ALL, selection=COMPUTED, partition_key=f"{month}|live",
                       resources=resources, instance=instance).success


def table(clickhouse: ClickHouseResource, name: str) -> pd.DataFrame:
    with clickhouse.client() as client:
        frame = read_frame(client, clickhouse.table(name), "run_id = 'live'")
    return frame.sort_values(KEYS[name]).reset_index(drop=True)


def hold_back(postgres, since: str) -> None:
    """Move the records from `since` (Tokyo) to a holding table: they have not arrived yet."""
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE held AS SELECT * FROM purchasing_shop_price_record "
                     "WHERE recorded_at >= %s::timestamp AT TIME ZONE 'Asia/Tokyo'", (since,))
        conn.execute("DELETE FROM purchasing_shop_price_record WHERE id IN (SELECT id FROM held)")


def arrive(postgres, start: str, end: str) -> int:
    """Held records with recorded_at in [start, end) arrive (new ids, in their order)."""
    with postgres.connect() as conn:
        cur = conn.execute(
            "WITH moved AS (DELETE FROM held WHERE recorded_at >= %s::timestamp AT TIME ZONE "
            "'Asia/Tokyo' AND recorded_at < %s::timestamp AT TIME ZONE 'Asia/Tokyo' "
            "RETURNING *) INSERT INTO purchasing_shop_price_record (shop_id, iphone_id, "
            "price_new, price_grade_a, price_grade_b, recorded_at) SELECT shop_id, iphone_id, "
            "price_new, price_grade_a, price_grade_b, recorded_at FROM moved ORDER BY id",
            (start, end))
        return cur.rowcount


def tick(resources, instance, cursor: str | None):
    """One sensor evaluation and the run it asks for; returns (new cursor, run request)."""
    context = build_sensor_context(instance=instance, cursor=cursor, resources={
        "postgres": resources["postgres"], "clickhouse": resources["clickhouse"]})
    result = live_prices_sensor(context)
    [request] = result.run_requests
    assert request.job_name == "live_refresh", request.tags["kline/plan"]
    refreshed = live_refresh_job.execute_in_process(
        run_config=request.run_config, instance=instance, resources={
            k: resources[k] for k in ("postgres", "clickhouse", "torch_device")})
    assert refreshed.success
    # Every partition the refresh wrote is checked in the same run, like a whole month.
    written = {(e.asset_key, e.partition) for e in refreshed.get_asset_materialization_events()}
    checked = {(e.asset_key, e.partition) for e in refreshed.get_asset_check_evaluations()}
    assert written and checked == written
    assert all(e.passed for e in refreshed.get_asset_check_evaluations())
    return result.cursor, request


def assert_equal_to_full_recompute(resources, instance, clickhouse_dsn, months) -> None:
    """Every table of `live`, FINAL, equals the months materialized in full in a store of
    their own: same keys, every column to 1e-9 relative."""
    full = {**resources, "clickhouse": ClickHouseResource(
        dsn=clickhouse_dsn, database=resources["clickhouse"].db + "_full")}
    full["clickhouse_io_manager"] = ClickHouseIOManager(clickhouse=full["clickhouse"])
    full["clickhouse"].ensure_schema()
    try:
        for month in months:
            materialize_month(full, instance, month)
        for name, keys in KEYS.items():
            live, expected = table(resources["clickhouse"], name), table(
                full["clickhouse"], name)
            assert len(live) == len(expected) > 0, name
            assert live[keys].equals(expected[keys]), name
            for col in live.columns.difference([*keys, "run_id"]):
                if pd.api.types.is_datetime64_any_dtype(live[col]):
                    assert live[col].equals(expected[col]), (name, col)
                    continue
                np.testing.assert_allclose(live[col].astype(float), expected[col].astype(float),
                                           rtol=1e-9, atol=0, equal_nan=True,
                                           err_msg=f"{name}.{col}")
    finally:
        full["clickhouse"].drop_database()


@pytest.mark.slow
def test_incremental_refreshes_equal_a_full_recompute(price_resources, runs, demo_prices,
                                                      clickhouse_dsn):
    postgres = demo_prices
    hold_back(postgres, "2025-10-31 23:30")
    with postgres.connect() as conn:
        cursor = str(conn.execute("SELECT max(id) FROM purchasing_shop_price_record")
                     .fetchone()[0])
    materialize_month(price_resources, runs, "2025-10-01")

    # Records around midnight of the month's turn: the window spans October and November.
    assert arrive(postgres, "2025-10-31 23:30", "2025-11-01 01:00") > 0
    cursor, request = tick(price_resources, runs, cursor)
    assert request.tags["kline/window_start"] == "2025-10-31T23:30:00+09:00"
    # A day and a half in one batch, except one record held back to arrive late.
    with postgres.connect() as conn:
        late_id = conn.execute("SELECT min(id) FROM held WHERE recorded_at >= "
                               "'2025-11-01 05:05+09' AND recorded_at < '2025-11-01 05:15+09'"
                               ).fetchone()[0]
        conn.execute("CREATE TABLE late AS SELECT * FROM held WHERE id = %s", (late_id,))
        conn.execute("DELETE FROM held WHERE id = %s", (late_id,))
    assert arrive(postgres, "2025-11-01 01:00", "2025-11-02 12:00") > 0
    cursor, request = tick(price_resources, runs, cursor)
    assert request.tags["kline/window_start"] == "2025-11-01T01:00:00+09:00"
    # The late record for the day before, with the next 15 minutes of records.
    with postgres.connect() as conn:
        conn.execute("INSERT INTO held SELECT * FROM late")
    assert arrive(postgres, "2025-11-01 05:05", "2025-11-01 05:15") == 1
    assert arrive(postgres, "2025-11-02 12:00", "2025-11-02 12:15") > 0
    cursor, request = tick(price_resources, runs, cursor)
    assert request.tags["kline/window_start"] == "2025-11-01T05:00:00+09:00"

    assert_equal_to_full_recompute(price_resources, runs, clickhouse_dsn,
                                   ["2025-10-01", "2025-11-01"])
    features = table(price_resources["clickhouse"], "features_wide")
    assert {s.split(":")[0] for s in features.scope} == {"iphone", "cohort"}
    assert features.bucket.max() == pd.Timestamp("2025-11-02 12:00", tz="Asia/Tokyo")


@pytest.mark.slow
def test_a_bucket_whose_every_shop_becomes_an_outlier_loses_its_row(price_resources, runs,
                                                                    clickhouse_dsn):
    """Two shops agree; two more arrive at twice the price: |p − median| > 0.2 × median for
    all four, so the full recompute has no cross_shop_agg row there — nor may `live`."""
    postgres = price_resources["postgres"]
    insert_records(postgres, [
        (1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00"),
        (2, 2, 10, 100_000, None, None, "2025-11-05 11:36:00"),
        (3, 1, 10, 100_000, None, None, "2025-11-05 11:50:00"),
        (4, 2, 10, 100_000, None, None, "2025-11-05 11:51:00"),
    ])
    materialize_month(price_resources, runs, "2025-11-01")
    insert_records(postgres, [
        (5, 3, 10, 200_000, None, None, "2025-11-05 11:52:00"),
        (6, 4, 10, 200_000, None, None, "2025-11-05 11:53:00"),
    ])
    tick(price_resources, runs, "4")
    agg = table(price_resources["clickhouse"], "cross_shop_agg")
    assert agg.bucket.tolist() == [pd.Timestamp("2025-11-05 11:30", tz="Asia/Tokyo")]
    assert_equal_to_full_recompute(price_resources, runs, clickhouse_dsn, ["2025-11-01"])


@pytest.mark.slow
def test_a_refresh_supersedes_rows_stamped_later_than_its_own_clock(price_resources, runs,
                                                                    clickhouse_dsn):
    """`inserted_at` counts seconds, so a refresh in the second the month was written would
    tie with the rows it rewrites, and rows stamped by a clock running ahead would win over
    it. Either way the refresh's rows must be the newest version: the month's rows are
    restamped a day ahead here, and `live` must still equal a full recompute afterwards, its
    uniqueness check passing."""
    postgres, clickhouse = price_resources["postgres"], price_resources["clickhouse"]
    insert_records(postgres, [
        (1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00"),
        (2, 2, 10, 100_000, None, None, "2025-11-05 11:36:00"),
        (3, 1, 10, 100_000, None, None, "2025-11-05 11:50:00"),
        (4, 2, 10, 101_000, None, None, "2025-11-05 11:51:00"),
    ])
    materialize_month(price_resources, runs, "2025-11-01")
    with clickhouse.client() as client:
        for name in KEYS:
            full = clickhouse.table(name)
            client.command(f"INSERT INTO {full} SELECT * REPLACE (now() + 86400 AS inserted_at) "
                           f"FROM {full} FINAL WHERE run_id = 'live'")
    insert_records(postgres, [(5, 3, 10, 104_000, None, None, "2025-11-05 11:52:00")])
    tick(price_resources, runs, "4")  # rewrites the 11:45 bucket
    assert_equal_to_full_recompute(price_resources, runs, clickhouse_dsn, ["2025-11-01"])
