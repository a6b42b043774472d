"""price_aligned, materialized by Dagster from real PostgreSQL into embedded ClickHouse."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from kline_assets.lib.errors import MissingTableError, ServiceUnavailableError
from kline_assets.prices.assets import price_aligned, raw_price_records
from kline_assets.prices.checks import price_aligned_checks
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets_tests.support.prices import RECORDS, insert_records, stored

OCT = "2025-10-01|live"
NOV = "2025-11-01|live"

def reference(records: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Independent pandas version of the computation contract."""
    df = records[(records.recorded_at >= pd.Timestamp(start, tz="Asia/Tokyo"))
                 & (records.recorded_at < pd.Timestamp(end, tz="Asia/Tokyo"))].copy()
    df["bucket"] = df.recorded_at.dt.floor("15min")
    df = df.sort_values(["recorded_at", "id"]).groupby(["shop_id", "iphone_id", "bucket"]).tail(1)
    out = pd.DataFrame({
        "bucket": df.bucket, "shop_id": df.shop_id, "iphone_id": df.iphone_id,
        "price_new": df.price_new.astype("int64"),
        "price_a": df.price_grade_a.where(df.price_grade_a > 0),
        "price_b": df.price_grade_b.where(df.price_grade_b > 0),
        "alignment_diff_sec": (df.recorded_at - df.bucket).dt.total_seconds().astype("int64"),
        "record_time": df.recorded_at.dt.floor("s"),
    })
    return out.sort_values(["shop_id", "iphone_id", "bucket"]).reset_index(drop=True)


def run(resources: dict, instance: DagsterInstance, key: str, checks: bool = True):
    checks_defs = price_aligned_checks if checks else []
    return materialize([raw_price_records, price_aligned, *checks_defs],
                       selection=[price_aligned], partition_key=key, resources=resources,
                       instance=instance)


def assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        got.astype({"price_a": "float64", "price_b": "float64"}),
        want.astype({"price_a": "float64", "price_b": "float64"}), check_dtype=False)


def test_month_matches_pandas_reference(price_resources, runs):
    records = insert_records(price_resources["postgres"], RECORDS)
    result = run(price_resources, runs, OCT)
    assert result.success
    got = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    assert_frames_equal(got, reference(records, "2025-10-01", "2025-11-01"))
    meta = result.asset_materializations_for_node("price_aligned")[0].metadata
    assert meta["rows_read"].value == 7 and meta["rows_aligned"].value == 5
    assert meta["duplicates_collapsed"].value == 2
    assert meta["grade_prices_set_null"].value == 1
    assert "cpu" in meta["device"].value
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_month_aligned_by_chunks_of_a_day_equals_the_month_in_one_chunk(
        price_resources, runs, demo_prices):
    for run_id, days in (("live", 31), ("backfill_v3", 1)):
        result = materialize([raw_price_records, price_aligned], selection=[price_aligned],
                             partition_key=f"2025-11-01|{run_id}", resources=price_resources,
                             instance=runs, run_config={"ops": {"price_aligned": {
                                 "config": {"chunk_days": days}}}})
        meta = result.asset_materializations_for_node("price_aligned")[0].metadata
        assert meta["chunk_days"].value == days
    whole = stored(price_resources["clickhouse"], "live", "2025-11-01", "2025-12-01")
    chunked = stored(price_resources["clickhouse"], "backfill_v3", "2025-11-01", "2025-12-01")
    assert len(whole) > 40_000
    pd.testing.assert_frame_equal(whole, chunked)


def test_late_record_goes_to_next_month(price_resources, runs):
    records = insert_records(price_resources["postgres"], RECORDS)
    assert run(price_resources, runs, NOV).success
    got = stored(price_resources["clickhouse"], "live", "2025-11-01", "2025-12-01")
    assert_frames_equal(got, reference(records, "2025-11-01", "2025-12-01"))
    assert got.record_time.tolist() == [pd.Timestamp("2025-11-01 00:00", tz="Asia/Tokyo")]


def test_rematerializing_leaves_the_same_rows(price_resources, runs):
    insert_records(price_resources["postgres"], RECORDS)
    assert run(price_resources, runs, OCT).success
    first = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    assert run(price_resources, runs, OCT).success
    second = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    pd.testing.assert_frame_equal(first, second)
    with price_resources["clickhouse"].client() as client:  # not even unmerged duplicates
        table = price_resources["clickhouse"].table("price_aligned")
        raw = client.query(f"SELECT count() FROM {table}")
    assert raw.result_rows[0][0] == len(first)


def test_runs_are_isolated(price_resources, runs):
    insert_records(price_resources["postgres"], RECORDS)
    assert run(price_resources, runs, OCT).success
    assert run(price_resources, runs, "2025-10-01|backfill_v3").success
    live = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    exp = stored(price_resources["clickhouse"], "backfill_v3", "2025-10-01", "2025-11-01")
    pd.testing.assert_frame_equal(live, exp)


def test_bad_rows_are_rejected_counted_and_reported(price_resources, runs):
    bad_rows = [
        (20, 1, 12, None, None, None, "2025-10-02 10:00:00"),
        (21, 1, 12, 0, None, None, "2025-10-02 10:01:00"),
        (22, 1, 12, -5, None, None, "2025-10-02 10:02:00"),
        (23, 99, 12, 50_000, None, None, "2025-10-02 10:03:00"),
        (24, 1, 999, 50_000, None, None, "2025-10-02 10:04:00"),
    ]
    insert_records(price_resources["postgres"], [*RECORDS, *bad_rows])
    result = run(price_resources, runs, OCT)
    meta = result.asset_materializations_for_node("price_aligned")[0].metadata
    assert meta["rows_rejected"].value == 5
    assert meta["rejections"].value == {
        "price_new is NULL": 1, "price_new <= 0": 2, "unknown shop_id": 1, "unknown iphone_id": 1}
    assert "99" in meta["rejected_sample"].value
    got = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    assert 12 not in set(got.iphone_id) and len(got) == 5


def test_empty_month_writes_nothing_and_clears_stale_rows(price_resources, runs):
    insert_records(price_resources["postgres"], RECORDS)
    assert run(price_resources, runs, OCT).success
    with price_resources["postgres"].connect() as conn:
        conn.execute("DELETE FROM purchasing_shop_price_record")
    result = run(price_resources, runs, OCT)
    assert result.asset_materializations_for_node("price_aligned")[0].metadata[
        "rows_read"].value == 0
    assert stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01").empty


def test_unregistered_run_id_fails_clearly(price_resources, runs):
    with pytest.raises(Exception, match="nope"):
        run(price_resources, runs, "2025-10-01|nope")


def test_malformed_run_id_cannot_be_registered(instance):
    from kline_assets.lib.errors import InvalidRunIdError
    from kline_assets.prices.partitions import create_run

    for bad in ("Live", "a|b", "x,y", "", "a" * 65, "white space"):
        with pytest.raises(InvalidRunIdError, match="malformed run id"):
            create_run(instance, bad)


def test_missing_source_table_is_a_clear_error(pg_dsn, clickhouse, runs):
    from kline_assets.resources import ClickHouseIOManager, TorchDeviceResource

    resources = {"postgres": PostgresResource(dsn=pg_dsn), "clickhouse": clickhouse,
                 "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
                 "torch_device": TorchDeviceResource(device="cpu")}
    with pytest.raises(MissingTableError, match="purchasing_shop_price_record"):
        run(resources, runs, OCT, checks=False)


def test_unreachable_postgres_names_the_address():
    pg = PostgresResource(dsn="postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout_s=2)
    with pytest.raises(ServiceUnavailableError, match=r"127\.0\.0\.1:1/nowhere"), pg.connect():
        pass


def test_failed_write_keeps_previous_rows(price_resources, runs, monkeypatch):
    insert_records(price_resources["postgres"], RECORDS)
    assert run(price_resources, runs, OCT).success
    before = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")

    def broken_insert(self, table, arrow_table, *a, **k):
        raise RuntimeError("disk full while inserting")

    monkeypatch.setattr(type(_client(price_resources["clickhouse"])), "insert_arrow",
                        broken_insert)
    with pytest.raises(Exception, match="disk full"):
        run(price_resources, runs, OCT, checks=False)
    monkeypatch.undo()
    after = stored(price_resources["clickhouse"], "live", "2025-10-01", "2025-11-01")
    pd.testing.assert_frame_equal(before, after)
    with price_resources["clickhouse"].client() as client:  # no staging table left behind
        tables = client.query(f"SHOW TABLES FROM {price_resources['clickhouse'].db}").result_rows
    assert not [t for (t,) in tables if "staging" in t]


def _client(clickhouse: ClickHouseResource):
    """The driver's client object (chdb or HTTP), whose class the test patches."""
    with clickhouse.client() as client:
        return client
