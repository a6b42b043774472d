"""The read side of the price domain: what a web backend, the HTTP service and `kline runs
list` call to read runs, scopes, aligned prices and features (`pages`), under one set of
argument rules (`args`), and which runs hold data (`runs`, fast or exact)."""

from kline_assets.prices.source import COHORT_TABLE, IPHONE_TABLE, SHOP_TABLE

from .args import (
    DEFAULT_LIMIT,
    FEATURE_VALUE_NAMES,
    FEATURES_COLUMNS,
    HTTP_HINT,
    MAX_LIMIT,
    PRICE_ALIGNED_COLUMNS,
    final_at,
    finality,
    is_final,
    iso,
    parse_ordering,
    parse_time,
)
from .pages import (
    Page,
    count_feature_values,
    count_features,
    count_price_aligned,
    feature_values_page,
    features_page,
    list_scopes,
    price_aligned_page,
    query_feature_values,
    query_features,
    query_price_aligned,
)
from .runs import list_runs, summarize_runs

__all__ = [
    "COHORT_TABLE",
    "DEFAULT_LIMIT",
    "FEATURES_COLUMNS",
    "FEATURE_VALUE_NAMES",
    "HTTP_HINT",
    "IPHONE_TABLE",
    "MAX_LIMIT",
    "PRICE_ALIGNED_COLUMNS",
    "SHOP_TABLE",
    "Page",
    "count_feature_values",
    "count_features",
    "count_price_aligned",
    "feature_values_page",
    "features_page",
    "final_at",
    "finality",
    "is_final",
    "iso",
    "list_runs",
    "list_scopes",
    "parse_ordering",
    "parse_time",
    "price_aligned_page",
    "query_feature_values",
    "query_features",
    "query_price_aligned",
    "summarize_runs",
]
