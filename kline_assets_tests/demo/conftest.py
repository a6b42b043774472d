"""Shared configurations and generated frames of the demo tests (generated once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from kline_assets.demo.prices import generate_price_records
from kline_assets.demo.stocks import generate_stock_bars
from kline_assets_tests.support.demo import MEDIUM, SMALL


@pytest.fixture(scope="session")
def small_records() -> pd.DataFrame:
    return generate_price_records(SMALL)


@pytest.fixture(scope="session")
def medium_records() -> pd.DataFrame:
    return generate_price_records(MEDIUM)


@pytest.fixture(scope="session")
def small_bars() -> pd.DataFrame:
    return generate_stock_bars(SMALL)
