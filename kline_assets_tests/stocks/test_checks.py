"""The validation queries, as asset checks: pass on clean data, fail on planted rows."""

from __future__ import annotations

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks.assets import stock_monthly_kline
from kline_assets.stocks.checks import stock_monthly_kline_checks
from kline_assets_tests.support.stocks import (
    dirty_bars,
    insert_bars,
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

    assert len(results) == 7
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
        assert meta["offending rows"] == 1, name
        assert [r.data["code"] for r in meta["sample (first 20)"].records] == [planted_code]
        assert "SELECT * FROM" in meta["query"]
    # planted codes have no source bars: the row count check names every one of them
    passed, _, meta = results["row_count_matches_source"]
    assert not passed and meta["offending rows"] == len(PLANTED)
    assert {r.data["problem"] for r in meta["sample (first 20)"].records} == {
        "no clean source bars"}


def test_row_count_check_names_a_missing_month_row(
    clean_february: PostgresResource, instance: DagsterInstance
) -> None:
    with clean_february.connect() as conn:
        conn.execute("DELETE FROM stock_monthly_kline "
                     f"WHERE code = '600000.SH' AND month = '{FEB}'")

    passed, _, meta = run(clean_february, instance, checks_only=True)["row_count_matches_source"]

    assert not passed
    assert (meta["rows"], meta["expected rows"]) == (2, 3)
    [row] = [r.data for r in meta["sample (first 20)"].records]
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
