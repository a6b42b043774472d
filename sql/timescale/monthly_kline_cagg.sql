-- stock_monthly_kline as a TimescaleDB continuous aggregate: the original view, index and
-- refresh policy. Rendered by kline_assets.stocks.monthly, which runs each named section:
-- placeholders in braces are filled with quoted identifiers, and the cleaning predicate
-- comes from kline_assets.stocks.monthly.CLEAN_PREDICATE, the one predicate that the plain
-- PostgreSQL path (sql/postgres/stock_monthly_kline.sql) uses as well.
--
-- create_view runs only when timescaledb_information.continuous_aggregates has no
-- stock_monthly_kline; the other sections are idempotent and run every time.
-- Refreshing happens outside any transaction, per month partition:
--   CALL refresh_continuous_aggregate('stock_monthly_kline', month_start, next_month_start)
-- (windows must cover whole one-month buckets; use localtimestamp, never now(), as an
-- upper bound: the time column is a timestamp without time zone).

-- name: create_view
CREATE MATERIALIZED VIEW {view}
WITH (timescaledb.continuous) AS
SELECT
    time_bucket('1 month', time) AS month,
    code,
    last(name, time) AS name,
    first(open, time) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, time) AS close,
    sum(volume) AS volume,
    sum(amount) AS amount
FROM {source}
WHERE {clean_predicate}
GROUP BY month, code
WITH NO DATA;

-- name: materialized_only
-- Readers see exactly what was refreshed, as on the plain path. The current month is kept
-- correct by the stock_current_month schedule, which re-materializes its partition.
ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = true);

-- name: index
CREATE INDEX IF NOT EXISTS idx_monthly_code_time ON {view} (code, month DESC);

-- name: policy
SELECT add_continuous_aggregate_policy({view_name},
    start_offset => INTERVAL '3 months',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes',
    if_not_exists => true);
