"""What the stock domain shows the Dagster UI and the `kline` CLI: keys, partitions, jobs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    Definitions,
    IdentityPartitionMapping,
    build_schedule_context,
)

from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import PostgresIOManager
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks.cli import stocks
from kline_assets.stocks.definitions import defs
from kline_assets.stocks.schedules import current_month_keys, stock_current_month

SHANGHAI = ZoneInfo("Asia/Shanghai")
ONE_MIN, MONTHLY = AssetKey("stock_1min"), AssetKey("stock_monthly_kline")


def loaded() -> Definitions:
    """The domain merged with the resources the top-level definitions provide."""
    postgres = PostgresResource()
    return Definitions.merge(defs, Definitions(resources={
        "postgres": postgres, "postgres_io_manager": PostgresIOManager(postgres=postgres),
        "redis": RedisResource()}))


def test_assets_are_grouped_owned_described_and_carry_column_schemas() -> None:
    graph = loaded().resolve_asset_graph()
    for key, columns in ((ONE_MIN, "time"), (MONTHLY, "month")):
        node = graph.get(key)
        assert node.group_name == "stocks"
        assert node.owners == ["team:quant"]
        assert set(node.kinds) == {"postgres"}  # the path (plain or timescaledb) is metadata
        assert node.description
        schema = node.metadata["dagster/column_schema"]
        assert schema.columns[0].name == columns and len(schema.columns) == 9
    assert "Duplicates" in graph.get(ONE_MIN).description
    assert graph.get(MONTHLY).parent_keys == {ONE_MIN}


def test_both_assets_share_month_partitions_from_2000_through_the_current_month() -> None:
    graph = loaded().resolve_asset_graph()
    one_min, monthly = graph.get(ONE_MIN), graph.get(MONTHLY)
    assert one_min.partitions_def == monthly.partitions_def
    partitions = monthly.partitions_def
    assert partitions.timezone == "Asia/Shanghai"
    keys = partitions.get_partition_keys(current_time=datetime(2025, 3, 15, 10, tzinfo=SHANGHAI))
    assert keys[0] == "2000-01-01" and keys[-1] == "2025-03-01"
    mapping = graph.get_partition_mapping(MONTHLY, ONE_MIN)
    assert isinstance(mapping, IdentityPartitionMapping)


def test_jobs_checks_and_schedule_are_registered() -> None:
    definitions = loaded()
    assert definitions.resolve_job_def("stock_monthly_job")
    assert definitions.resolve_job_def("monthly_kline_full_refresh")
    checks = {k.name for k in definitions.resolve_asset_graph().asset_check_keys}
    assert checks == {
        "monthly_move_under_1000pct", "no_negative_volume_or_amount", "consistent_price_range",
        "amount_with_volume", "name_present", "finite_values", "row_count_matches_source",
        "refresh_policy_not_failing",
        "no_conflicting_duplicates", "bars_on_trading_days_in_sessions", "finite_bar_values",
        "at_most_241_bars_per_code_and_day", "last_month_loaded", "calendar_covers_next_30_days",
        "accuracy_vs_vendor", "no_missing_minutes", "vendor_bars_match_kernel",
    }
    assert definitions.resolve_schedule_def("stock_current_month").execution_timezone == (
        "Asia/Shanghai")
    assert definitions.resolve_schedule_def("stocks_watch").execution_timezone == (
        "Asia/Shanghai")


def test_the_schedule_refreshes_the_current_month_and_early_on_the_previous_one() -> None:
    assert current_month_keys(datetime(2024, 3, 15, 16, 30, tzinfo=SHANGHAI)) == ["2024-03-01"]
    assert current_month_keys(datetime(2024, 3, 1, 16, 30, tzinfo=SHANGHAI)) == [
        "2024-02-01", "2024-03-01"]
    # 2024-01-31 20:00 in New York is already February in Beijing
    new_york = datetime(2024, 1, 31, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert current_month_keys(new_york) == ["2024-01-01", "2024-02-01"]

    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 5, 20, 16, 30, tzinfo=SHANGHAI)
    )
    [request] = list(stock_current_month(context))
    assert request.partition_key == "2024-05-01"
    assert request.run_key == "2024-05-01@2024-05-20"


def test_cli_offers_refresh_with_from_to_force_and_recreate() -> None:
    result = CliRunner().invoke(stocks, ["refresh", "--help"])
    assert result.exit_code == 0
    for option in ("--from", "--to", "--force", "--recreate"):
        assert option in result.output


def test_the_watch_job_evaluates_the_calendar_check(monkeypatch, tmp_path) -> None:
    closures = tmp_path / "closures.csv"
    closures.write_text("year,2027\nnot a closure\n", encoding="utf-8")
    monkeypatch.setenv("KLINE_XSHG_CLOSURES", str(closures))
    job = loaded().resolve_job_def("stocks_watch")
    result = job.execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success  # a failed check does not fail the run
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"last_month_loaded", "calendar_covers_next_30_days"}
    calendar = checks["calendar_covers_next_30_days"]
    assert calendar.asset_key == ONE_MIN and not calendar.passed
    assert calendar.severity == AssetCheckSeverity.WARN
    assert f"{closures}:2: " in calendar.metadata["error"].value
