"""Pure tensor kernels (no Dagster, no I/O): price grid, cross-shop stats, features, cohorts.

Names resolve lazily (PEP 562): importing `kline_assets.kernels.align` — NumPy only — must not
pull in torch, which costs seconds in every Dagster step process that never touches it.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "QUORUM_POLICIES": "aggregate",
    "CrossShopStats": "aggregate",
    "aggregate_cross_shop": "aggregate",
    "CohortStats": "cohorts",
    "aggregate_cohorts": "cohorts",
    "FEATURE_COLUMNS": "feature_names",
    "WINDOWS_MINUTES_TO_BUCKETS": "feature_names",
    "compute_features": "features",
    "feature_columns": "feature_names",
    "forward_fill": "features",
    "build_price_tensor": "grid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
