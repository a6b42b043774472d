-- stock_1min_qfq as a TimescaleDB hypertable. Rendered by kline_assets.stocks.monthly:
-- placeholders in braces are filled with quoted names. Idempotent: it is run
-- before every load and refresh on the TimescaleDB path.
--
-- create_default_indexes => false: source.sql already holds (time) and the unique
-- (code, time) index, and the default index name would collide with the (time) one.
-- migrate_data => true: a table filled on the plain path keeps its rows when the
-- extension is installed later.

-- name: create_hypertable
SELECT create_hypertable(
    {source_name},
    by_range('time', INTERVAL '7 days'),
    create_default_indexes => false,
    if_not_exists => true,
    migrate_data => true
);
