-- Years of 1-minute bars in TimescaleDB's columnstore (compression): stock_1min_qfq and
-- stock_1min_synth, segmented by code and ordered by time (the bar's frame) inside a segment,
-- so a symbol's bars of a chunk compress together and a read of one symbol decompresses only
-- its own batches. Rendered by kline_assets.stocks.columnstore, which runs the sections it
-- needs: placeholders in braces are filled with quoted names and values. `kline init` applies
-- them where the timescaledb extension is installed, idempotently: the columnstore is enabled
-- once, a policy is replaced only when its age differs from the setting. Needs TimescaleDB
-- 2.18+ (the columnstore procedures); the deployment runs 2.28.
--
-- The loaders keep replacing old months and days on compressed chunks through TimescaleDB's
-- DML on the columnstore (2.11+): their DELETE of a time window (segmentby code / orderby
-- time filters) moves only the overlapping batches back to the rowstore, the COPY after it
-- lands there, the unique (code, time) index is still enforced, and the next policy run
-- compresses the chunk again.

-- name: is_enabled
SELECT compression_enabled FROM timescaledb_information.hypertables
WHERE hypertable_name = {table_name} AND hypertable_schema = current_schema();

-- name: enable
ALTER TABLE {table} SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'code',
    timescaledb.orderby = 'time'
);

-- name: policy_age
SELECT (config ->> 'compress_after')::interval FROM timescaledb_information.jobs
WHERE proc_name = 'policy_compression' AND hypertable_name = {table_name}
  AND hypertable_schema = current_schema();

-- name: remove_policy
CALL remove_columnstore_policy({table_name}, if_exists => true);

-- name: add_policy
CALL add_columnstore_policy({table_name}, after => {age}::interval, if_not_exists => true);

-- name: retention_age
SELECT (config ->> 'drop_after')::interval FROM timescaledb_information.jobs
WHERE proc_name = 'policy_retention' AND hypertable_name = {table_name}
  AND hypertable_schema = current_schema();

-- name: remove_retention
SELECT remove_retention_policy({table_name}, if_exists => true);

-- name: add_retention
SELECT add_retention_policy({table_name}, drop_after => {age}::interval, if_not_exists => true);
