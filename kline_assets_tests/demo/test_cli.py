"""`kline demo`: arguments are checked before anything is touched, errors are one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

from kline_assets.cli import cli
from kline_assets.demo.catalog import DemoConfig, DemoError
from kline_assets.demo.cli import demo
from kline_assets.demo.run import validate
from kline_assets.lib.months import add_months, current_month, month_label
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.resources import PostgresResource


def _state(postgres: PostgresResource) -> tuple:
    with postgres.connect() as conn:
        return (
            conn.execute("SELECT id, price_new FROM purchasing_shop_price_record ORDER BY id"
                         ).fetchall(),
            conn.execute("SELECT to_regclass('kline_demo_load') IS NULL").fetchone()[0],
        )


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2024-12-01", "--months", "1"], "outside the price partitions"),
    (["--months", "0"], "months must be ≥ 1"),
    (["--start", "2025-10-15"], "expected a month"),
    (["--stock-months", "1200"], "outside the XSHG calendar"),
])
def test_bad_arguments_exit_2_and_change_nothing(
    postgres: PostgresResource, pg_dsn: str, args: list[str], message: str
) -> None:
    with postgres.connect() as conn:
        conn.execute(
            "INSERT INTO purchasing_shop_price_record (shop_id, iphone_id, price_new, recorded_at)"
            " VALUES (1, 1, 12345, '2025-10-20 12:00+09')"
        )
    before = _state(postgres)
    result = CliRunner().invoke(cli, ["demo", *args], env={"KLINE_PG_DSN": pg_dsn})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert _state(postgres) == before == ([(1, 12345)], True)


def test_months_after_the_last_price_partition_are_refused() -> None:
    next_month = month_label(add_months(current_month(PRICE_TZ), 1))
    with pytest.raises(DemoError, match="outside the price partitions"):
        validate(DemoConfig(start=next_month, months=1, stock_months=0))
    validate(DemoConfig())  # the defaults are inside


def test_every_option_has_a_help_line() -> None:
    for param in demo.params:
        assert getattr(param, "help", None), param.name
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0 and "--stock-months" in result.output


@pytest.mark.slow
def test_demo_shows_progress_per_price_month_and_step(pg_dsn, clickhouse, clickhouse_dsn,
                                                      tmp_path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--months", "2", "--shops", "3", "--iphones", "2", "--stock-months", "1"],
        env={"KLINE_PG_DSN": pg_dsn, "KLINE_CLICKHOUSE_DSN": clickhouse_dsn,
             "KLINE_CLICKHOUSE_DATABASE": clickhouse.db, "DAGSTER_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    months = [line for line in lines if "price assets, month" in line]
    assert [m.split("month ")[1][:7] for m in months] == ["2025-10", "2025-11"]
    steps = [line.split()[0] for line in lines if "done in" in line and "(" in line]
    assert steps == ["align", "aggregate", "features", "cohorts"] * 2
    assert "cohorts" in result.output.split("rows written")[1]
    unchecked = unevaluated_checks(DagsterInstance.from_config(str(tmp_path)))
    assert unchecked == [], unchecked


def unevaluated_checks(instance: DagsterInstance) -> list[tuple[str, str]]:
    """(check, partition) for every partitioned check of the project whose asset has a
    materialized partition that the check never evaluated, and (check, "") for every
    unpartitioned check of a materialized asset that was never evaluated."""
    from kline_assets.definitions import defs

    evaluated = {(e.event_specific_data.asset_check_key, e.event_specific_data.partition)
                 for r in
                 instance.get_event_records(EventRecordsFilter(
                     DagsterEventType.ASSET_CHECK_EVALUATION))
                 for e in [r.event_log_entry.dagster_event]}
    missing = []
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        if graph.get(check_key).partitions_def is None:
            if (instance.get_latest_materialization_event(check_key.asset_key)
                    and not any(k == check_key for k, _ in evaluated)):
                missing.append((check_key.to_user_string(), ""))
            continue
        for partition in instance.get_materialized_partitions(check_key.asset_key):
            if (check_key, partition) not in evaluated:
                missing.append((check_key.to_user_string(), partition))
    return sorted(missing)


def test_demo_options_have_help_lines() -> None:
    text = CliRunner().invoke(cli, ["demo", "--help"]).output
    for option in ("--seed", "--start", "--months", "--shops", "--iphones", "--stock-months"):
        line = next(x for x in text.splitlines() if x.strip().startswith(option))
        assert len(line.split(None, 2)) == 3, line  # option, metavar, help text
    text = CliRunner().invoke(cli, ["runs", "list", "--help"]).output
    assert "--json" in text and "Print JSON" in text
