"""Column schemas shown in the Dagster UI (mirroring sql/clickhouse/init.sql)."""

from dagster import TableColumn, TableSchema

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
