"""The PostgreSQL IO manager stock_1min writes through, and the checks on what it wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    DailyPartitionsDefinition,
    asset,
    materialize,
)

from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import ArrowStream, PostgresIOManager
from kline_assets.stocks.assets import stock_1min
from kline_assets.stocks.checks import stock_1min_checks
from kline_assets_tests.support.stocks import (
    LANDING,
    insert_bars,
    landing_config,
    make_bars,
    stock_resources,
    write_csv,
)

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", timezone="Asia/Tokyo")


def events_asset(batches: list[list[tuple[str, float]]], fail_after: int | None = None):
    """A generic asset streaming `batches` into `events` (timestamptz), one table per batch."""

    @asset(partitions_def=DAYS, io_manager_key="io_manager", group_name="test",
           metadata={"partition_expr": "at", "table": "events"})
    def events() -> ArrowStream:
        def tables() -> Iterator[pa.Table]:
            for i, batch in enumerate(batches):
                if fail_after is not None and i == fail_after:
                    raise RuntimeError("the source broke mid-stream")
                yield pa.table({
                    "at": pa.array(pd.to_datetime([t for t, _ in batch]).tz_localize(
                        "Asia/Tokyo"), pa.timestamp("us", "UTC")),
                    "v": [v for _, v in batch],
                })
        return ArrowStream(tables())

    return events


def rows(postgres: PostgresResource) -> list[tuple]:
    with postgres.connect() as conn:
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        return [(str(t)[:16], v) for t, v in
                conn.execute("SELECT at, v FROM events ORDER BY at, v").fetchall()]


@pytest.fixture
def events_table(postgres: PostgresResource) -> PostgresResource:
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE events (at timestamptz NOT NULL, v double precision)")
    return postgres


def write(postgres: PostgresResource, instance: DagsterInstance, asset_def, key: str) -> bool:
    return materialize(
        [asset_def], partition_key=key, instance=instance, raise_on_error=False,
        resources={"io_manager": PostgresIOManager(postgres=postgres)},
    ).success


def test_a_partition_is_replaced_atomically_and_a_rerun_gives_the_same_rows(
    events_table: PostgresResource, instance: DagsterInstance
) -> None:
    day1 = [[("2024-01-01 00:00", 1.0), ("2024-01-01 12:00", 2.0)], [("2024-01-01 23:59", 3.0)]]
    other = [[("2024-01-02 00:00", 9.0)]]
    assert write(events_table, instance, events_asset(other), "2024-01-02")
    assert write(events_table, instance, events_asset(day1), "2024-01-01")
    first = rows(events_table)
    assert write(events_table, instance, events_asset(day1), "2024-01-01")
    assert rows(events_table) == first == [
        ("2024-01-01 00:00", 1.0), ("2024-01-01 12:00", 2.0), ("2024-01-01 23:59", 3.0),
        ("2024-01-02 00:00", 9.0)]

    # a stream that breaks after its first table has written it: all of it is rolled back
    replacement = [[("2024-01-01 06:00", 7.0)], [("2024-01-01 07:00", 8.0)]]
    assert not write(events_table, instance, events_asset(replacement, fail_after=1),
                     "2024-01-01")
    assert rows(events_table) == first
    # a row of another day is refused rather than written where its own partition cannot
    # replace it
    assert not write(events_table, instance, events_asset(other), "2024-01-01")
    assert rows(events_table) == first


def conflicting_load(root: Path, postgres: PostgresResource, instance: DagsterInstance,
                     conflict: bool) -> dict[str, tuple[bool, AssetCheckSeverity, dict]]:
    bars = make_bars(["600000.SH"], ["2024-01-02"])
    write_csv(bars, root / "2024-01" / "a.csv")
    stray = bars.head(2).copy()
    if conflict:
        stray["close"] += 1.0
    write_csv(stray, root / "2024-01" / "zz_stray.csv")
    result = materialize([stock_1min, stock_1min_checks], partition_key="2024-01-01",
                         instance=instance, resources=stock_resources(postgres),
                         run_config=landing_config(root))
    assert result.success
    return {e.check_name: (e.passed, e.severity, {k: v.value for k, v in e.metadata.items()})
            for e in result.get_asset_check_evaluations()}


def test_conflicting_duplicates_warn_until_a_clean_load(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    checks = conflicting_load(tmp_path, postgres, instance, conflict=True)
    passed, severity, meta = checks["no_conflicting_duplicates"]
    assert (passed, severity) == (False, AssetCheckSeverity.WARN)
    assert meta["conflicting_keys"] == 2 and meta["by_month"] == {"2024-01": 2}
    assert checks["bars_on_trading_days_in_sessions"][0] and checks["finite_bar_values"][0]

    checks = conflicting_load(tmp_path, postgres, instance, conflict=False)
    assert checks["no_conflicting_duplicates"][0]


def test_bars_off_the_calendar_or_not_finite_in_the_table_warn(
    postgres: PostgresResource, instance: DagsterInstance
) -> None:
    bars = pd.DataFrame([
        ("2024-01-02 10:00", "OK", "n", 1, 1, 1, 1, 1, 1),
        ("2024-01-01 10:00", "HOLIDAY", "n", 1, 1, 1, 1, 1, 1),  # New Year's Day
        ("2024-01-02 12:00", "LUNCH", "n", 1, 1, 1, 1, 1, 1),
        ("2024-01-03 10:00", "INF", "n", 1, 1, 1, 1, float("inf"), 1),
    ], columns=LANDING).assign(time=lambda f: pd.to_datetime(f["time"]))
    insert_bars(postgres, bars)

    result = materialize(  # the checks on their own look at the whole table
        [stock_1min, stock_1min_checks], instance=instance, resources=stock_resources(postgres),
        selection=AssetSelection.checks_for_assets(stock_1min))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}

    calendar = checks["bars_on_trading_days_in_sessions"]
    assert not calendar.passed and calendar.severity == AssetCheckSeverity.WARN
    sample = {r.data["code"]: r.data["reason"]
              for r in calendar.metadata["sample"].value.records}
    assert sample == {"HOLIDAY": "non_trading_day", "LUNCH": "outside_session"}
    finite = checks["finite_bar_values"]
    assert not finite.passed and finite.metadata["offending_rows"].value == 1
