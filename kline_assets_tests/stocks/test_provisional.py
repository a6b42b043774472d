"""Materializations of days the closures file decides say so: `calendar: provisional (closures
file …)` on stock_1min, stock_monthly_kline and the refresh events of the CLI and the full
refresh job; months the package decides carry no such entry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetMaterialization, DagsterInstance, materialize

from kline_assets.lib.months import MonthWindow
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import monthly
from kline_assets.stocks.assets import stock_1min, stock_monthly_kline
from kline_assets.stocks.refresh_events import refresh_events
from kline_assets_tests.support.calendar import package_ending
from kline_assets_tests.support.stocks import (
    landing_config,
    make_bars,
    read_bars,
    stock_resources,
    write_csv,
)

JAN_2026 = "2026-01-01"
DEC_2025 = "2025-12-01"


def test_provisional_months_say_so_in_their_metadata(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As with 2027 on exchange-calendars 4.13: the package ends with 2025, the file has 2026.
    note = package_ending(monkeypatch, "2025-12-31", tmp_path / "closures.csv",
                          "year,2026\n2026-01-01,New Year's Day\n")
    root = tmp_path / "landing"
    bars = make_bars(["600000.SH"], ["2025-12-31", "2026-01-01", "2026-01-05"])
    for month in ("2025-12", "2026-01"):
        write_csv(bars[bars["time"].dt.strftime("%Y-%m") == month], root / month / "a.csv")

    meta = {}
    for key in (DEC_2025, JAN_2026):
        result = materialize([stock_1min, stock_monthly_kline], partition_key=key,
                             instance=instance, resources=stock_resources(postgres),
                             run_config=landing_config(root))
        assert result.success
        meta[key] = {node: {k: v.value for k, v in
                            result.asset_materializations_for_node(node)[0].metadata.items()}
                     for node in ("stock_1min", "stock_monthly_kline")}

    for node in ("stock_1min", "stock_monthly_kline"):
        assert meta[JAN_2026][node]["calendar"] == note
        assert "calendar" not in meta[DEC_2025][node]
    assert meta[JAN_2026]["stock_1min"]["rejected_non_trading_day"] == 240  # New Year's Day
    days = pd.to_datetime(read_bars(postgres)["time"]).dt.strftime("%Y-%m-%d").unique()
    assert days.tolist() == ["2025-12-31", "2026-01-05"]

    report = monthly.refresh(postgres, MonthWindow.of_months("2025-12", "2026-01"))
    events = refresh_events(postgres, report, refreshed_by="test")
    by_month = {e.partition: e.metadata for e in events if isinstance(e, AssetMaterialization)}
    assert by_month[JAN_2026]["calendar"].value == note
    assert "calendar" not in by_month[DEC_2025]
