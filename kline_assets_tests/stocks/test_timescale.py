"""The TimescaleDB path: hypertable, continuous aggregate, policy — and the same rows as plain.

Runs only against a server with the extension: set KLINE_TIMESCALE_DSN (a database on that
server the tests may create databases from, e.g. postgresql://postgres@127.0.0.1:5433/postgres).
Without it every test here is reported as skipped, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from dagster import DagsterInstance

from kline_assets.lib.months import MonthWindow
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import monthly
from kline_assets.stocks.cli import stocks
from kline_assets_tests.support.stocks import (
    assert_frames_equal,
    dirty_bars,
    insert_bars,
    read_bars,
    read_monthly,
    reference_monthly,
    run_months,
)

pytestmark = pytest.mark.timescale

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def one(resource: PostgresResource, query: str) -> object:
    with resource.connect() as conn:
        return conn.execute(query).fetchone()


def test_cagg_equals_the_plain_path_and_the_pandas_reference(
    timescale: PostgresResource, postgres: PostgresResource, instance: DagsterInstance,
    landed: tuple[Path, pd.DataFrame],
) -> None:
    root, bars = landed
    run_months(timescale, instance, root, MONTHS, checks=True)
    run_months(postgres, instance, root, MONTHS, checks=True)

    on_timescale, on_plain = read_monthly(timescale), read_monthly(postgres)
    assert_frames_equal(on_timescale, on_plain)
    assert_frames_equal(on_timescale, reference_monthly(bars))
    pd.testing.assert_frame_equal(read_bars(timescale), read_bars(postgres))


def test_hypertable_cagg_index_and_policy_are_created_once(
    timescale: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, _ = landed
    run_months(timescale, instance, root, ["2024-01-01", "2024-01-01", "2024-02-01"],
               checks=True)

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
    run_months(timescale, instance, root, ["2024-01-01"], checks=True)
    (root / "2024-01" / "2024-01-31.csv").unlink()  # the vendor withdraws a day

    run_months(timescale, instance, root, ["2024-01-01"], checks=True)

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
