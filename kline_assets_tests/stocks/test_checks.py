"""The validation queries, as asset checks: pass on clean data, fail on planted rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks.assets import stock_1min, stock_monthly_kline
from kline_assets.stocks.checks import (
    last_month_freshness,
    stock_1min_checks,
    stock_monthly_kline_checks,
)
from kline_assets.stocks.partitions import current_month, month_label
from kline_assets_tests.support.stocks import (
    dirty_bars,
    insert_bars,
    make_bars,
    stock_resources,
)

FEB = "2024-02-01"
CHECKS = AssetSelection.checks_for_assets(stock_monthly_kline)


def run(
    postgres: PostgresResource, instance: DagsterInstance, key: str = FEB,
    checks_only: bool = False,
) -> dict[str, tuple[bool, AssetCheckSeverity, dict[str, object]]]:
    """Materialize the partition with its checks, or (checks_only) run the checks on their own,
    which look at the whole table."""
    result: ExecuteInProcessResult = materialize(
        [stock_monthly_kline, stock_monthly_kline_checks], instance=instance,
        partition_key=None if checks_only else key, resources=stock_resources(postgres),
        selection=CHECKS if checks_only else None,
    )
    assert result.success  # failed checks do not fail the run
    return {
        e.check_name: (e.passed, e.severity, {k: v.value for k, v in e.metadata.items()})
        for e in result.get_asset_check_evaluations()
    }


@pytest.fixture
def clean_february(postgres: PostgresResource, instance: DagsterInstance) -> PostgresResource:
    """Dirty 1-minute bars in, clean monthly K-lines out, for February 2024 only."""
    bars = dirty_bars()
    insert_bars(postgres, bars[bars["time"].dt.month == 2])
    run(postgres, instance)
    return postgres


def test_all_checks_pass_on_the_clean_aggregate(
    postgres: PostgresResource, instance: DagsterInstance
) -> None:
    insert_bars(postgres, dirty_bars())

    results = run(postgres, instance, key="2024-01-01")

    assert len(results) == 8
    assert [name for name, (passed, _, _) in results.items() if not passed] == []
    assert results["row_count_matches_source"][2]["rows"] == 3
    assert results["row_count_matches_source"][2]["window"] == "2024-01"


PLANTED = {
    # check name: (planted row values, severity)
    "monthly_move_under_1000pct": ("'MOVE', 'm', 1, 20, 1, 12, 10, 10", AssetCheckSeverity.WARN),
    "no_negative_volume_or_amount": ("'NEGVOL', 'n', 1, 2, 1, 2, -10, 10",
                                     AssetCheckSeverity.ERROR),
    "consistent_price_range": ("'RANGE', 'r', 5, 4, 3, 6, 10, 10", AssetCheckSeverity.ERROR),
    "amount_with_volume": ("'NOAMT', 'a', 1, 2, 1, 2, 10, 0", AssetCheckSeverity.WARN),
    "name_present": ("'NONAME', NULL, 1, 2, 1, 2, 10, 10", AssetCheckSeverity.ERROR),
    # 'Infinity' passes every comparison of the cleaning rule; only this check sees it
    "finite_values": ("'INF', 'i', 1, 2, 1, 2, 'Infinity', 10", AssetCheckSeverity.ERROR),
}


def test_each_check_fails_on_its_planted_row_with_count_and_sample(
    clean_february: PostgresResource, instance: DagsterInstance
) -> None:
    with clean_february.connect() as conn:
        for values, _ in PLANTED.values():
            conn.execute(
                "INSERT INTO stock_monthly_kline "
                "(month, code, name, open, high, low, close, volume, amount) "
                f"VALUES ('{FEB}', {values})"
            )

    results = run(clean_february, instance, checks_only=True)

    for name, (values, severity) in PLANTED.items():
        passed, actual_severity, meta = results[name]
        planted_code = values.split(",")[0].strip("'")
        assert not passed, name
        assert actual_severity == severity, name
        assert meta["offending_rows"] == 1, name
        assert [r.data["code"] for r in meta["sample"].records] == [planted_code]
        assert "SELECT * FROM" in meta["query"]
    # planted codes have no source bars: the row count check names every one of them
    passed, _, meta = results["row_count_matches_source"]
    assert not passed and meta["offending_rows"] == len(PLANTED)
    assert {r.data["problem"] for r in meta["sample"].records} == {
        "no clean source bars"}


def test_row_count_check_names_a_missing_month_row(
    clean_february: PostgresResource, instance: DagsterInstance
) -> None:
    with clean_february.connect() as conn:
        conn.execute("DELETE FROM stock_monthly_kline "
                     f"WHERE code = '600000.SH' AND month = '{FEB}'")

    passed, _, meta = run(clean_february, instance, checks_only=True)["row_count_matches_source"]

    assert not passed
    assert (meta["rows"], meta["expected_rows"]) == (2, 3)
    [row] = [r.data for r in meta["sample"].records]
    assert row["code"] == "600000.SH" and row["problem"] == "missing from stock_monthly_kline"


def test_checks_in_a_partition_run_look_only_at_its_months(
    clean_february: PostgresResource, instance: DagsterInstance
) -> None:
    with clean_february.connect() as conn:  # a bad row outside February
        conn.execute("INSERT INTO stock_monthly_kline (month, code, name, volume, amount) "
                     "VALUES ('2024-01-01', 'ELSEWHERE', NULL, -1, 0)")

    in_february = run(clean_february, instance)
    everywhere = run(clean_february, instance, checks_only=True)

    assert all(passed for passed, _, _ in in_february.values())
    assert in_february["name_present"][2]["window"] == "2024-02"
    assert not everywhere["name_present"][0]
    assert everywhere["name_present"][2]["window"] == "all months"


def check_status_by_partition(instance: DagsterInstance, asset: str) -> dict[tuple[str, str], str]:
    """What the UI's checks tab shows per partition: the latest execution status."""
    checks = stock_monthly_kline_checks if asset == "stock_monthly_kline" else stock_1min_checks
    infos = instance.event_log_storage.get_asset_check_partition_info(list(checks.check_keys))
    return {(i.check_key.name, i.partition_key): i.latest_execution_status.value for i in infos}


def test_checks_are_recorded_per_month_partition(
    postgres: PostgresResource, persistent_instance: DagsterInstance
) -> None:
    instance = persistent_instance  # a storage of its own: the partition statuses are all ours
    insert_bars(postgres, dirty_bars())
    run(postgres, instance, key="2024-01-01")
    status = check_status_by_partition(instance, "stock_monthly_kline")
    assert status and {p for _, p in status} == {"2024-01-01"}
    assert set(status.values()) == {"SUCCEEDED"}


def test_a_backfill_range_records_each_month_of_each_check(
    postgres: PostgresResource, persistent_instance: DagsterInstance
) -> None:
    instance = persistent_instance  # a storage of its own: the partition statuses are all ours
    insert_bars(postgres, dirty_bars())
    result = materialize(
        [stock_1min, stock_monthly_kline, stock_1min_checks, stock_monthly_kline_checks],
        instance=instance, resources=stock_resources(postgres),
        selection=AssetSelection.assets(stock_monthly_kline)
        | AssetSelection.checks_for_assets(stock_monthly_kline),
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-01",
              ASSET_PARTITION_RANGE_END_TAG: "2024-03-01"})
    assert result.success
    status = check_status_by_partition(instance, "stock_monthly_kline")
    months = ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert {(c.name, m) for c in stock_monthly_kline_checks.check_keys for m in months} <= set(
        status)
    assert {status[(c.name, m)] for c in stock_monthly_kline_checks.check_keys
            for m in months} == {"SUCCEEDED"}
    windows = {e.partition: e.metadata["window"].value for e in
               result.get_asset_check_evaluations() if e.check_name == "name_present"}
    assert windows == {"2024-01-01": "2024-01", "2024-02-01": "2024-02", "2024-03-01": "2024-03"}


def test_more_than_241_bars_a_day_warns(
    postgres: PostgresResource, instance: DagsterInstance
) -> None:
    bars = make_bars(["600000.SH", "000001.SZ"], ["2024-01-02"])
    extra = bars[bars["code"] == "000001.SZ"].head(2).assign(
        time=pd.to_datetime(["2024-01-02 09:30", "2024-01-02 09:29"]))
    insert_bars(postgres, pd.concat([bars, extra]))
    result = materialize(
        [stock_1min, stock_1min_checks], instance=instance, resources=stock_resources(postgres),
        selection=AssetSelection.checks_for_assets(stock_1min))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    per_day = checks["at_most_241_bars_per_code_and_day"]
    assert not per_day.passed and per_day.severity == AssetCheckSeverity.WARN
    assert [r.data for r in per_day.metadata["sample"].value.records] == [
        {"code": "000001.SZ", "day": "2024-01-02", "bars": 242}]


def test_the_last_month_must_be_loaded_within_one_trading_day(
    persistent_instance: DagsterInstance,
) -> None:
    instance = persistent_instance
    now = datetime.now(UTC)
    assert not last_month_freshness(instance, now).passed  # never loaded
    for month in {current_month(now), current_month(now - timedelta(days=10))}:
        instance.report_runless_asset_event(AssetMaterialization(
            "stock_monthly_kline", partition=f"{month_label(month)}-01"))
    loaded = datetime.fromtimestamp(
        instance.fetch_materializations(AssetKey("stock_monthly_kline"), limit=1)
        .records[0].timestamp, UTC)

    just_loaded = last_month_freshness(instance, loaded)
    two_weeks_on = last_month_freshness(instance, loaded + timedelta(days=14))

    assert just_loaded.passed, just_loaded.metadata
    assert not two_weeks_on.passed and two_weeks_on.severity == AssetCheckSeverity.WARN
    assert two_weeks_on.metadata["loaded_no_earlier_than"].value.endswith("16:30 Beijing")
