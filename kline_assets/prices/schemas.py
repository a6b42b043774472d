"""Column schemas shown in the Dagster UI: the columns and types are sql/clickhouse/init.sql's
(read from it, so they cannot drift), the descriptions are here."""

from kline_assets.kernels.feature_names import FEATURE_COLUMNS, describe_feature
from kline_assets.resources.clickhouse.resource import INIT_SQL
from kline_assets.resources.ddl import ddl_schema

PRICE_ALIGNED_SCHEMA = ddl_schema(INIT_SQL, "price_aligned", {
    "run_id": "live or an experiment id",
    "bucket": "15-minute bucket start",
    "price_new": "yen, latest record in the bucket",
    "price_a": "grade A price",
    "price_b": "grade B price",
    "alignment_diff_sec": "recorded_at − bucket",
    "record_time": "recorded_at",
    "inserted_at": "ReplacingMergeTree version",
})

CROSS_SHOP_AGG_SCHEMA = ddl_schema(INIT_SQL, "cross_shop_agg", {
    "mean": "NULL below quorum with `require`",
    "median": "even count: mean of middle two",
    "std": "sample (ddof=1), NULL below 2",
    "shop_count": "shops kept after the outlier filter",
    "dispersion": "std / mean",
    "quorum_met": "shop_count ≥ min_quorum",
})

FEATURES_WIDE_SCHEMA = ddl_schema(INIT_SQL, "features_wide", {
    "scope": "iphone:ID or cohort:SLUG, e.g. iphone:12, cohort:pro-latest",
    "n_models": "cohort scopes: member iPhones with data in the bucket",
    **{name: describe_feature(name) for name in FEATURE_COLUMNS},
})
