"""Shared configurations and generated frames of the demo tests (generated once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.prices import generate_price_records
from kline_assets.demo.stocks import generate_stock_bars

SMALL = DemoConfig(months=1, n_shops=6, n_iphones=5, stock_codes=3, stock_months=1)
MEDIUM = DemoConfig(months=1, n_shops=12, n_iphones=20, stock_codes=0, stock_months=0)


@pytest.fixture(scope="session")
def small_records() -> pd.DataFrame:
    return generate_price_records(SMALL)


@pytest.fixture(scope="session")
def medium_records() -> pd.DataFrame:
    return generate_price_records(MEDIUM)


@pytest.fixture(scope="session")
def small_bars() -> pd.DataFrame:
    return generate_stock_bars(SMALL)
