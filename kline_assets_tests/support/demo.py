"""Demo sizes the demo tests share: small enough for every test, medium where counts matter."""

from __future__ import annotations

from kline_assets.demo.catalog import DemoConfig

SMALL = DemoConfig(months=1, n_shops=6, n_iphones=5, stock_codes=3, stock_months=1)
MEDIUM = DemoConfig(months=1, n_shops=12, n_iphones=20, stock_codes=0, stock_months=0)
