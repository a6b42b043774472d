"""`kline demo`: arguments are checked before anything is touched, errors are one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kline_assets.cli import cli
from kline_assets.demo.catalog import DemoConfig, DemoError
from kline_assets.demo.cli import demo
from kline_assets.demo.run import validate
from kline_assets.months import add_months, current_month, month_label
from kline_assets.resources import PostgresResource
from kline_assets.settings import PRICE_TZ


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
