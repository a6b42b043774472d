-- ClickHouse tables. The resource applies each statement to the configured database
-- (KLINE_CLICKHOUSE_DATABASE, default `kline`), so names here are unqualified.
-- Every table is partitioned by (run_id, month): a run's month is replaced atomically with
-- REPLACE PARTITION … FROM a staging table, and a run is dropped partition by partition.

CREATE TABLE IF NOT EXISTS price_aligned (
    run_id             String,
    bucket             DateTime('Asia/Tokyo'),
    shop_id            UInt32,
    iphone_id          UInt32,
    price_new          UInt32,
    price_a            Nullable(UInt32),
    price_b            Nullable(UInt32),
    alignment_diff_sec Int32,
    record_time        DateTime('Asia/Tokyo'),
    inserted_at        DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY (run_id, toYYYYMM(bucket))
ORDER BY (run_id, iphone_id, shop_id, bucket);

CREATE TABLE IF NOT EXISTS cross_shop_agg (
    run_id      String,
    bucket      DateTime('Asia/Tokyo'),
    iphone_id   UInt32,
    mean        Nullable(Float64),
    median      Nullable(Float64),
    std         Nullable(Float64),
    shop_count  UInt16,
    dispersion  Nullable(Float64),
    quorum_met  UInt8,
    inserted_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY (run_id, toYYYYMM(bucket))
ORDER BY (run_id, iphone_id, bucket);
