"""stock_monthly_kline on plain PostgreSQL equals the view's definition computed in pandas."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance, RunConfig, materialize

from kline_assets.lib.months import MonthWindow
from kline_assets.lib.settings import SQL_DIR
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import monthly
from kline_assets.stocks.assets import MonthlyRefreshConfig, stock_1min, stock_monthly_kline
from kline_assets.stocks.checks import stock_monthly_kline_checks
from kline_assets.stocks.cli import stocks
from kline_assets.stocks.jobs import monthly_kline_full_refresh
from kline_assets_tests.support.stocks import (
    JAN,
    LANDING,
    assert_frames_equal,
    insert_bars,
    landing_config,
    make_bars,
    read_monthly,
    reference_monthly,
    run_months,
    stock_resources,
)

CHECK_NAMES = {k.name for k in stock_monthly_kline_checks.check_keys}


def test_monthly_kline_equals_pandas_reference_on_dirty_bars(
    postgres: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, bars = landed
    run_months(postgres, instance, root, ["2024-01-01", "2024-02-01", "2024-03-01"])

    actual = read_monthly(postgres)
    expected = reference_monthly(bars)
    assert_frames_equal(actual, expected)

    by_key = actual.set_index(["month", "code"])
    jan_600000 = by_key.loc[(pd.Timestamp("2024-01-01"), "600000.SH")]
    clean_600000 = bars[(bars["code"] == "600000.SH") & (bars["volume"] >= 0)
                        & bars["amount"].notna() & (bars["time"] < "2024-02-01")]
    assert jan_600000["open"] == clean_600000.iloc[0]["open"]  # first clean bar, not 09:31
    assert jan_600000["close"] == clean_600000.iloc[-1]["close"]  # last clean bar, not 15:00
    assert by_key.loc[(pd.Timestamp("2024-01-01"), "000001.SZ"), "high"] < 1e6
    assert by_key.loc[(pd.Timestamp("2024-02-01"), "000001.SZ"), "name"] == "RENAMED"
    assert by_key.loc[(pd.Timestamp("2024-01-01"), "000001.SZ"), "name"] == "NAME000001"
    assert (by_key.xs("300750.SZ", level="code")["low"] < 0).all()  # negative qfq kept
    assert np.isnan(by_key.loc[(pd.Timestamp("2024-03-01"), "300750.SZ"), "open"])


def test_month_edges_are_midnight_beijing_whatever_the_session_time_zone(
    postgres: PostgresResource, instance: DagsterInstance
) -> None:
    edge = make_bars(["600000.SH"], ["2024-01-31", "2024-02-01"], minutes=pd.to_timedelta(
        ["23:59:59", "00:00:00"]))
    insert_bars(postgres, edge)  # stamps outside sessions, written directly: only the edges
    with postgres.connect() as conn:
        conn.execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET TimeZone = 'America/New_York'")
    for key in ("2024-01-01", "2024-02-01"):
        assert materialize([stock_monthly_kline], partition_key=key, instance=instance,
                           resources=stock_resources(postgres)).success

    months = read_monthly(postgres)
    assert list(months["month"]) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]
    ordered = edge.sort_values("time")  # Jan 31 00:00, Jan 31 23:59:59, Feb 1 00:00, 23:59:59
    assert list(months["open"]) == list(ordered["open"].iloc[[0, 2]])
    assert list(months["close"]) == list(ordered["close"].iloc[[1, 3]])
    assert_frames_equal(months, reference_monthly(edge))


def test_rematerializing_a_month_gives_identical_rows_and_leaves_others_alone(
    postgres: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, _ = landed
    run_months(postgres, instance, root, ["2024-01-01", "2024-02-01"])
    before = read_monthly(postgres)
    with postgres.connect() as conn:  # a stale row in March must not be touched by January
        conn.execute("INSERT INTO stock_monthly_kline (month, code, name) "
                     "VALUES ('2024-03-01', 'STALE', 'x')")

    run_months(postgres, instance, root, ["2024-01-01"])

    assert_frames_equal(read_monthly(postgres, "month < '2024-03-01'"), before)
    assert len(read_monthly(postgres, "code = 'STALE'")) == 1


def test_materialization_reports_rows_codes_months_path_and_a_chart(
    postgres: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame]
) -> None:
    root, _ = landed
    result = materialize(
        [stock_1min, stock_monthly_kline], partition_key="2024-02-01", instance=instance,
        resources=stock_resources(postgres), run_config=landing_config(root),
    )
    meta = result.asset_materializations_for_node("stock_monthly_kline")[0].metadata
    assert meta["rows_refreshed"].value == 3
    assert meta["codes"].value == 3
    assert meta["months"].value == 1
    assert meta["path"].value == "plain"
    assert meta["seconds"].value >= 0
    assert "![" in meta["chart"].value and "data:image/png;base64," in meta["chart"].value


@pytest.fixture
def cli_env(postgres: PostgresResource, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Path:
    """The CLI's database and a Dagster home of its own (the CLI records its work there)."""
    monkeypatch.setenv("KLINE_PG_DSN", postgres.dsn)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_one_refresh_over_many_months_equals_per_month_partitions(
    postgres: PostgresResource, instance: DagsterInstance, landed: tuple[Path, pd.DataFrame],
    cli_env: Path,
) -> None:
    _, bars = landed
    insert_bars(postgres, bars)

    cli = CliRunner().invoke(stocks, ["refresh", "--from", "2024-01", "--to", "2024-03"])
    assert cli.exit_code == 0, cli.output
    assert "2024-01..2024-03 on plain PostgreSQL" in cli.output and "9 rows" in cli.output
    assert_frames_equal(read_monthly(postgres), reference_monthly(bars))

    result = monthly_kline_full_refresh.execute_in_process(
        instance=instance, resources=stock_resources(postgres),
        run_config={"ops": {"refresh_monthly_kline": {"config": {
            "from_month": "2023-12", "to_month": "2024-03"}}}},
    )
    assert result.success
    assert_frames_equal(read_monthly(postgres), reference_monthly(bars))


def test_a_full_refresh_reports_only_months_with_rows_and_rechecks_them(
    postgres: PostgresResource, persistent_instance: DagsterInstance,
    landed: tuple[Path, pd.DataFrame],
) -> None:
    instance = persistent_instance
    _, bars = landed
    insert_bars(postgres, bars)
    result = monthly_kline_full_refresh.execute_in_process(
        instance=instance, resources=stock_resources(postgres),
        run_config={"ops": {"refresh_monthly_kline": {"config": {
            "from_month": "2023-06", "to_month": "2024-05"}}}},
    )
    assert result.success
    materialized = result.asset_materializations_for_node("refresh_monthly_kline")
    assert [m.partition for m in materialized] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [m.metadata["dagster/row_count"].value for m in materialized] == [3, 3, 3]
    assert "data:image/png;base64," in materialized[-1].metadata["chart"].value
    assert materialized[-1].metadata["last_refresh_window"].value == "2023-06..2024-05"
    checks = result.get_asset_check_evaluations()
    assert {(e.check_name, e.partition) for e in checks} == {
        (name, month) for name in CHECK_NAMES for month in ("2024-01-01", "2024-02-01",
                                                              "2024-03-01")}
    assert all(e.passed for e in checks)
    latest = instance.get_latest_materialization_event(AssetKey("stock_monthly_kline"))
    assert latest.asset_materialization.partition == "2024-03-01"


def test_the_cli_refresh_is_recorded_in_dagster(
    postgres: PostgresResource, landed: tuple[Path, pd.DataFrame], cli_env: Path,
) -> None:
    _, bars = landed
    insert_bars(postgres, bars)
    cli = CliRunner().invoke(stocks, ["refresh", "--from", "2023-12", "--to", "2024-02"])
    assert cli.exit_code == 0, cli.output
    assert "2 month(s) with rows materialized, 16 check evaluation(s), 0 failed" in cli.output
    with DagsterInstance.get() as instance:
        records = instance.fetch_materializations(AssetKey("stock_monthly_kline"),
                                                  limit=10).records
        assert sorted(r.partition_key for r in records) == ["2024-01-01", "2024-02-01"]
        (run_id,) = {r.run_id for r in records}
        assert instance.get_run_by_id(run_id).job_name == "kline_stocks_refresh"
        meta = records[0].asset_materialization.metadata
        assert meta["refreshed_by"].value == "kline stocks refresh"
        infos = instance.event_log_storage.get_asset_check_partition_info(
            list(stock_monthly_kline_checks.check_keys))
        assert {(i.check_key.name, i.partition_key) for i in infos} == {
            (n, m) for n in CHECK_NAMES for m in ("2024-01-01", "2024-02-01")}


def test_recreate_asks_first_and_says_what_it_drops(
    postgres: PostgresResource, cli_env: Path
) -> None:
    insert_bars(postgres, make_bars(["600000.SH"], JAN))
    runner = CliRunner()
    first = runner.invoke(stocks, ["refresh", "--from", "2024-01", "--to", "2024-01"])
    assert "created table stock_monthly_kline" in first.output

    refused = runner.invoke(stocks, ["refresh", "--from", "2024-01", "--to", "2024-01",
                                     "--recreate"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert "table stock_monthly_kline and its rows" in refused.output
    assert "dropping" not in refused.output and len(read_monthly(postgres)) == 1

    asked = runner.invoke(stocks, ["refresh", "--from", "2024-01", "--to", "2024-01",
                                   "--recreate"], input="y\n")
    assert asked.exit_code == 0, asked.output

    again = runner.invoke(stocks, ["refresh", "--from", "2024-01", "--to", "2024-01",
                                   "--recreate", "--yes"])
    assert again.exit_code == 0, again.output
    assert "dropping table stock_monthly_kline and its rows" in again.output
    assert "dropping index idx_monthly_code_time" in again.output
    assert "1 rows" in again.output

    bad = runner.invoke(stocks, ["refresh", "--from", "2024-13"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output


def test_a_failed_refresh_leaves_the_previous_months_in_place(
    postgres: PostgresResource,
) -> None:
    insert_bars(postgres, make_bars(["600000.SH"], JAN))
    window = MonthWindow(pd.Timestamp("2024-01-01").to_pydatetime(),
                         pd.Timestamp("2024-02-01").to_pydatetime())
    monthly.refresh(postgres, window)
    before = read_monthly(postgres)
    with postgres.connect() as conn:  # a code whose bars make the insert fail mid-window
        conn.execute("ALTER TABLE stock_monthly_kline ADD CONSTRAINT short_code "
                     "CHECK (length(code) < 10)")
        conn.execute("INSERT INTO stock_1min_qfq VALUES ('2024-01-05 10:00', 'TOO-LONG-CODE', "
                     "'x', 1, 1, 1, 1, 1, 1)")
    with pytest.raises(Exception, match="short_code"):
        monthly.refresh(postgres, window)
    assert_frames_equal(read_monthly(postgres), before)


def _normalized_sql(text: str) -> str:
    text = re.sub(r"--[^\n]*", "", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def test_the_continuous_aggregate_is_the_original_view_with_the_shared_predicate(
    postgres: PostgresResource,
) -> None:
    seed = """
        CREATE MATERIALIZED VIEW "stock_monthly_kline"
        WITH (timescaledb.continuous) AS
        SELECT time_bucket('1 month', time) AS month, code,
            last(name, time) as name, first(open, time) as open, max(high) as high,
            min(low) as low, last(close, time) as close, sum(volume) as volume,
            sum(amount) as amount
        FROM "stock_1min_qfq"
        WHERE volume >= 0 AND amount >= 0
          AND high >= GREATEST(open, close) AND low <= LEAST(open, close)
        GROUP BY month, code
        WITH NO DATA;"""
    with postgres.connect() as conn:
        rendered = monthly.render(monthly.CAGG_SQL, "create_view", "stock_1min_qfq")
        assert _normalized_sql(rendered.as_string(conn)) == _normalized_sql(seed)
        plain = monthly.render(monthly.PLAIN_SQL, "insert_window", "stock_1min_qfq")
        assert _normalized_sql(monthly.CLEAN_PREDICATE) in _normalized_sql(plain.as_string(conn))
    assert (SQL_DIR / "timescale" / "hypertable.sql").exists()


def test_materialized_monthly_config_force_is_accepted_on_the_plain_path(
    postgres: PostgresResource, instance: DagsterInstance
) -> None:
    insert_bars(postgres, make_bars(["600000.SH"], JAN)[LANDING])
    result = materialize(
        [stock_monthly_kline], partition_key="2024-01-01", instance=instance,
        resources=stock_resources(postgres),
        run_config=RunConfig(ops={"stock_monthly_kline": MonthlyRefreshConfig(
            force=True, chart_code="600000.SH")}),
    )
    assert result.success
    meta = result.asset_materializations_for_node("stock_monthly_kline")[0].metadata
    assert meta["chart_code"].value == "600000.SH"


def test_a_month_without_bars_is_not_materialized(
    postgres: PostgresResource, persistent_instance: DagsterInstance
) -> None:
    instance = persistent_instance  # no earlier materialization of the month with rows
    insert_bars(postgres, make_bars(["600000.SH"], JAN)[LANDING])
    result = materialize([stock_monthly_kline], partition_key="2024-02-01", instance=instance,
                         resources=stock_resources(postgres))
    assert result.success
    assert result.asset_materializations_for_node("stock_monthly_kline") == []
    said = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("2024-02 holds no rows: nothing is materialized" in m for m in said)


def test_a_policy_that_never_succeeded_reads_as_never_and_failing():
    """TimescaleDB reports last_successful_finish = -infinity for a policy that failed before
    it ever succeeded: metadata says 'never', flags the failure and carries the last error."""
    stats = (1000, "Failed", "2026-12-01 10:00:00+00", "-infinity", "infinity", 3, 3)
    error = ("2026-12-01 10:00:01+00", "42P01", 'relation "x" does not exist')
    meta = monthly.policy_metadata(stats, error)
    assert meta["policy_last_successful_finish"] == "never"
    assert meta["policy_next_start"] == "never"
    assert meta["policy_last_run_started_at"] == "2026-12-01 10:00:00+00"
    assert meta["policy_failing"] is True and meta["policy_total_failures"] == 3
    assert "42P01" in meta["policy_last_error"]
    assert monthly.policy_metadata(None) == {"policy_job": "none (no refresh policy found)"}
    healthy = monthly.policy_metadata((1000, "Success", None, "2026-12-01 10:00:00+00",
                                       "2026-12-01 11:00:00+00", 5, 0))
    assert healthy["policy_failing"] is False and "policy_last_error" not in healthy
