"""Realistic synthetic data for the quickstart, the benchmarks and the tests.

catalog (configuration, iPhones, shops, cohorts), prices (price records), stocks (1-minute
bars, landing files), ticks (exchange snapshots), load (into PostgreSQL, only the demo's own
rows), run (`kline demo`: load and materialize), cli (the click command).

Names resolve lazily, so mounting the `kline demo` command does not import NumPy or pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DemoConfig": "catalog", "DemoError": "catalog", "generate_catalog": "catalog",
    "COHORTS": "catalog", "IPHONE_MODELS": "catalog", "STOCK_CODES": "catalog",
    "generate_price_records": "prices", "BAD_ROWS": "prices", "release_time": "prices",
    "generate_stock_bars": "stocks", "write_stock_landing": "stocks",
    "DIRTY_BAR_RULES": "stocks", "NEGATIVE_CODE": "stocks", "RENAMED_CODE": "stocks",
    "generate_ticks": "ticks", "TICK_EVENTS": "ticks", "TICK_CODES": "ticks",
    "load_demo": "load",
    "run_demo": "run", "DEMO_RUN_ID": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
