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

-- features_wide: scopes `iphone:<id>` (asset features_wide) and `cohort:<slug>` (asset cohorts).
-- The scope kind is part of the partition key, so each asset replaces only its own rows.
-- mean/median are Nullable: buckets without data carry NULL stats (shop_count 0) and the
-- features of the forward-filled mean. n_models (an extra column): for a cohort scope, the member
-- iPhones with data in the bucket; NULL for an iPhone scope.
CREATE TABLE IF NOT EXISTS features_wide (
    run_id              String,
    bucket              DateTime('Asia/Tokyo'),
    scope               String,
    mean                Nullable(Float64),
    median              Nullable(Float64),
    std                 Nullable(Float64),
    shop_count          UInt16,
    dispersion          Nullable(Float64),
    n_models            Nullable(UInt16),
    ema_120             Nullable(Float64),
    ema_900             Nullable(Float64),
    ema_1800            Nullable(Float64),
    sma_120             Nullable(Float64),
    sma_900             Nullable(Float64),
    sma_1800            Nullable(Float64),
    wma_120             Nullable(Float64),
    wma_900             Nullable(Float64),
    wma_1800            Nullable(Float64),
    boll_mid_120        Nullable(Float64),
    boll_up_120         Nullable(Float64),
    boll_low_120        Nullable(Float64),
    boll_width_120      Nullable(Float64),
    boll_mid_900        Nullable(Float64),
    boll_up_900         Nullable(Float64),
    boll_low_900        Nullable(Float64),
    boll_width_900      Nullable(Float64),
    boll_mid_1800       Nullable(Float64),
    boll_up_1800        Nullable(Float64),
    boll_low_1800       Nullable(Float64),
    boll_width_1800     Nullable(Float64),
    inserted_at         DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY (run_id, toYYYYMM(bucket), splitByChar(':', scope)[1])
ORDER BY (run_id, scope, bucket);

-- Tables created before n_models existed get it in place (metadata only, no rewrite).
ALTER TABLE features_wide ADD COLUMN IF NOT EXISTS n_models Nullable(UInt16) AFTER dispersion;

-- One row per step of a promote (started, backed_up, done): a promote killed half-way is
-- found by its (source, target) and re-run to the same end, reusing its backup run id.
CREATE TABLE IF NOT EXISTS promote_journal (
    id      String,
    source  String,
    target  String,
    backup  String,
    phase   String,
    at      DateTime64(3) DEFAULT now64(3)
) ENGINE = MergeTree
ORDER BY (source, target, id, at);
