"""The TimescaleDB path: hypertable, continuous aggregate, policy — and the same rows as plain.

Runs only against a server with the extension: set KLINE_TIMESCALE_DSN (a database on that
server the tests may create databases from, e.g. postgresql://postgres@127.0.0.1:5433/postgres).
Without it every test here is reported as skipped, with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, materialize

from kline_assets.months import MonthWindow
from kline_assets.resources.postgres import PostgresResource
from kline_assets.settings import SQL_DIR
from kline_assets.stocks import monthly
from kline_assets.stocks.assets import stock_1min, stock_monthly_kline
from kline_assets.stocks.checks import stock_monthly_kline_checks
from kline_assets.stocks.cli import stocks
from kline_assets_tests.support.stocks import (
    assert_frames_equal,
    dirty_bars,
    insert_bars,
    landing_config,
    read_bars,
    read_monthly,
    reference_monthly,
    stock_resources,
    with_dbname,
    write_csv,
)

pytestmark = pytest.mark.timescale

TIMESCALE_DSN = os.environ.get("KLINE_TIMESCALE_DSN")
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


@pytest.fixture
def timescale() -> Iterator[PostgresResource]:
    """A fresh database with the timescaledb extension and the source schema."""
    if not TIMESCALE_DSN:
        pytest.skip("KLINE_TIMESCALE_DSN is not set (a PostgreSQL server with TimescaleDB)")
    try:
        admin = psycopg.connect(TIMESCALE_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"KLINE_TIMESCALE_DSN unreachable: {exc}")
    with admin:
        available = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available is None:
            pytest.skip("the server at KLINE_TIMESCALE_DSN has no timescaledb extension")
        name = f"kline_ts_{uuid.uuid4().hex[:10]}"
        admin.execute(f'CREATE DATABASE "{name}"')
    resource = PostgresResource(dsn=with_dbname(TIMESCALE_DSN, name))
    try:
        with resource.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        resource.execute_file(SQL_DIR / "postgres" / "source.sql")
        yield resource
    finally:
        with psycopg.connect(TIMESCALE_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def landed(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    bars = dirty_bars()
    for day, frame in bars.groupby(bars["time"].dt.strftime("%Y-%m-%d")):
        write_csv(frame, tmp_path / day[:7] / f"{day}.csv")
    return tmp_path, bars


def run_months(
    resource: PostgresResource, instance: DagsterInstance, root: Path, keys: list[str] = MONTHS
) -> None:
    for key in keys:
        result = materialize(
            [stock_1min, stock_monthly_kline, stock_monthly_kline_checks], partition_key=key,
            instance=instance, resources=stock_resources(resource), run_config=landing_config(root),
        )
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())


def one(resource: PostgresResource, query: str) -> object:
    with resource.connect() as conn:
        return conn.execute(query).fetchone()


def test_cagg_equals_the_plain_path_and_the_pandas_reference(
    timescale: PostgresResource, postgres: PostgresResource, instance: DagsterInstance,
    landed: tuple[Path, pd.DataFrame],
) -> None:
    root, bars = landed
    run_months(timescale, instance, root)
    run_months(postgres, instance, root)

    on_timescale, on_plain = read_monthly(timescale), read_monthly(postgres)
    assert_frames_equal(on_timescale, on_plain)
    assert_frames_equal(on_timescale, reference_monthly(bars))
    pd.testing.assert_frame_equal(read_bars(timescale), read_bars(postgres))


def test_hypertable_cagg_index_and_policy_are_created_once(
    timescale: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, _ = landed
    run_months(timescale, instance, root, ["2024-01-01", "2024-01-01", "2024-02-01"])

    hypertables = one(timescale, "SELECT count(*) FROM timescaledb_information.hypertables "
                                 "WHERE hypertable_name = 'stock_1min_qfq'")
    assert hypertables == (1,)
    caggs = one(timescale, "SELECT count(*), bool_and(materialized_only) FROM "
                           "timescaledb_information.continuous_aggregates "
                           "WHERE view_name = 'stock_monthly_kline'")
    assert caggs == (1, True)
    assert one(timescale, "SELECT count(*) FROM pg_indexes "
                          "WHERE indexname = 'idx_monthly_code_time'") == (1,)
    policy = one(timescale, "SELECT count(*), min(schedule_interval)::text, "
                            "min(config->>'start_offset'), min(config->>'end_offset') "
                            "FROM timescaledb_information.jobs "
                            "WHERE proc_name = 'policy_refresh_continuous_aggregate'")
    assert policy == (1, "00:30:00", "3 mons", "01:00:00")


def test_reloading_a_month_refreshes_its_aggregate(
    timescale: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, bars = landed
    run_months(timescale, instance, root, ["2024-01-01"])
    (root / "2024-01" / "2024-01-31.csv").unlink()  # the vendor withdraws a day

    run_months(timescale, instance, root, ["2024-01-01"])

    january = bars[(bars["time"] < "2024-01-31")]
    assert_frames_equal(read_monthly(timescale), reference_monthly(january))


def test_measured_refresh_facts_of_timescaledb(timescale: PostgresResource) -> None:
    insert_bars(timescale, dirty_bars())
    monthly.refresh(timescale, MonthWindow(datetime(2024, 1, 1), datetime(2024, 2, 1)))
    with timescale.connect(autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="invalid time argument type"):
            conn.execute("CALL refresh_continuous_aggregate('stock_monthly_kline', "
                         "'2024-01-01', now())")
        conn.execute("CALL refresh_continuous_aggregate('stock_monthly_kline', "
                     "'2024-01-01', localtimestamp)")
        with pytest.raises(psycopg.Error, match=r"(?i)refresh window"):
            conn.execute("CALL refresh_continuous_aggregate('stock_monthly_kline', "
                         "'2024-02-01', '2024-02-15')")
    assert len(read_monthly(timescale)) == 9


def test_a_plain_table_from_before_the_extension_is_replaced_only_on_recreate(
    timescale: PostgresResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_bars(timescale, dirty_bars())
    with timescale.connect() as conn:
        conn.execute(monthly.render(monthly.PLAIN_SQL, "create_table", "stock_1min_qfq"))
    window = MonthWindow(datetime(2024, 1, 1), datetime(2024, 4, 1))
    with pytest.raises(monthly.StorageConflictError, match="--recreate"):
        monthly.refresh(timescale, window)

    monkeypatch.setenv("KLINE_PG_DSN", timescale.dsn)
    replaced = CliRunner().invoke(
        stocks, ["refresh", "--from", "2024-01", "--to", "2024-03", "--recreate", "--yes"])
    assert replaced.exit_code == 0, replaced.output
    assert "dropping table stock_monthly_kline and its rows" in replaced.output
    assert "created continuous aggregate stock_monthly_kline" in replaced.output

    again = CliRunner().invoke(
        stocks, ["refresh", "--from", "2024-01", "--to", "2024-03", "--recreate", "--force",
                 "--yes"])
    assert again.exit_code == 0, again.output
    assert "dropping continuous aggregate stock_monthly_kline" in again.output
    assert "(policy_refresh_continuous_aggregate)" in again.output
    assert "dropping index" in again.output and "idx_monthly_code_time" in again.output
    assert "on TimescaleDB" in again.output and "9 rows" in again.output
    assert_frames_equal(read_monthly(timescale), reference_monthly(dirty_bars()))
