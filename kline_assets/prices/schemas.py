"""Column schemas shown in the Dagster UI (mirroring sql/clickhouse/init.sql)."""

from dagster import TableColumn, TableSchema

from kline_assets.kernels.feature_names import FEATURE_COLUMNS, describe_feature

PRICE_ALIGNED_SCHEMA = TableSchema(
    columns=[
        TableColumn("run_id", "String", description="live or an experiment id"),
        TableColumn("bucket", "DateTime('Asia/Tokyo')", description="15-minute bucket start"),
        TableColumn("shop_id", "UInt32"),
        TableColumn("iphone_id", "UInt32"),
        TableColumn("price_new", "UInt32", description="yen, latest record in the bucket"),
        TableColumn("price_a", "Nullable(UInt32)", description="grade A price"),
        TableColumn("price_b", "Nullable(UInt32)", description="grade B price"),
        TableColumn("alignment_diff_sec", "Int32", description="recorded_at − bucket"),
        TableColumn("record_time", "DateTime('Asia/Tokyo')", description="recorded_at"),
        TableColumn("inserted_at", "DateTime", description="ReplacingMergeTree version"),
    ]
)


CROSS_SHOP_AGG_SCHEMA = TableSchema(
    columns=[
        TableColumn("run_id", "String"),
        TableColumn("bucket", "DateTime('Asia/Tokyo')"),
        TableColumn("iphone_id", "UInt32"),
        TableColumn("mean", "Nullable(Float64)", description="NULL below quorum with `require`"),
        TableColumn("median", "Nullable(Float64)", description="even count: mean of middle two"),
        TableColumn("std", "Nullable(Float64)", description="sample (ddof=1), NULL below 2"),
        TableColumn("shop_count", "UInt16", description="shops kept after the outlier filter"),
        TableColumn("dispersion", "Nullable(Float64)", description="std / mean"),
        TableColumn("quorum_met", "UInt8", description="shop_count ≥ min_quorum"),
        TableColumn("inserted_at", "DateTime"),
    ]
)

_STATS = [
    TableColumn("run_id", "String"),
    TableColumn("bucket", "DateTime('Asia/Tokyo')"),
    TableColumn("scope", "String",
                description="iphone:ID or cohort:SLUG, e.g. iphone:12, cohort:pro-latest"),
    TableColumn("mean", "Nullable(Float64)"),
    TableColumn("median", "Nullable(Float64)"),
    TableColumn("std", "Nullable(Float64)"),
    TableColumn("shop_count", "UInt16"),
    TableColumn("dispersion", "Nullable(Float64)"),
    TableColumn("n_models", "Nullable(UInt16)",
                description="cohort scopes: member iPhones with data in the bucket"),
]
_FEATURES = [
    TableColumn(name, "Nullable(Float64)", description=describe_feature(name))
    for name in FEATURE_COLUMNS
]
FEATURES_WIDE_SCHEMA = TableSchema(
    columns=[*_STATS, *_FEATURES, TableColumn("inserted_at", "DateTime")]
)
