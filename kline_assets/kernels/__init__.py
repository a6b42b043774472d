"""Pure tensor kernels (no Dagster, no I/O): price grid, cross-shop stats, features, cohorts."""

from kline_assets.kernels.aggregate import QUORUM_POLICIES, CrossShopStats, aggregate_cross_shop
from kline_assets.kernels.cohorts import CohortStats, aggregate_cohorts
from kline_assets.kernels.features import (
    FEATURE_COLUMNS,
    WINDOWS_MINUTES_TO_BUCKETS,
    compute_features,
    feature_columns,
    forward_fill,
)
from kline_assets.kernels.grid import build_price_tensor

__all__ = [
    "FEATURE_COLUMNS",
    "QUORUM_POLICIES",
    "WINDOWS_MINUTES_TO_BUCKETS",
    "CohortStats",
    "CrossShopStats",
    "aggregate_cohorts",
    "aggregate_cross_shop",
    "build_price_tensor",
    "compute_features",
    "feature_columns",
    "forward_fill",
]
