-- stock_monthly_kline on plain PostgreSQL (no TimescaleDB): a table holding the same rows
-- as the continuous aggregate of sql/timescale/monthly_kline_cagg.sql. Rendered by
-- kline_assets.stocks.monthly: placeholders in braces are quoted identifiers, or the
-- shared cleaning predicate (kline_assets.stocks.monthly.CLEAN_PREDICATE).
--
-- first(open, time) / last(x, time) are the values of the clean bars at the month's
-- earliest / latest clean time. (code, time) is unique in the source table, so those bars
-- are single rows: no ties to break, and the result equals TimescaleDB's first()/last(),
-- which also return a NULL open/close/name when that bar carries one.

-- name: create_table
CREATE TABLE IF NOT EXISTS {view} (
    month  timestamp NOT NULL,
    code   text NOT NULL,
    name   text,
    open   double precision,
    high   double precision,
    low    double precision,
    close  double precision,
    volume double precision,
    amount double precision
);

-- name: index
CREATE UNIQUE INDEX IF NOT EXISTS idx_monthly_code_time ON {view} (code, month DESC);

-- name: delete_window
-- delete_window and insert_window run in one transaction: readers see the old months or
-- the new ones, never a gap.
DELETE FROM {view} WHERE month >= %(start)s AND month < %(end)s;

-- name: insert_window
INSERT INTO {view} (month, code, name, open, high, low, close, volume, amount)
WITH clean AS (
    SELECT time, code, high, low, volume, amount
    FROM {source}
    WHERE time >= %(start)s AND time < %(end)s
      AND {clean_predicate}
), agg AS (
    SELECT date_trunc('month', time) AS month, code,
           min(time) AS first_time, max(time) AS last_time,
           max(high) AS high, min(low) AS low,
           sum(volume) AS volume, sum(amount) AS amount
    FROM clean
    GROUP BY 1, 2
)
-- One index probe per (month, code) for its first and last bar; LIMIT 1 keeps the planner
-- from turning the probes into hash joins over the whole table.
SELECT a.month, a.code, l.name, f.open, a.high, a.low, l.close, a.volume, a.amount
FROM agg a
CROSS JOIN LATERAL (
    SELECT s.open FROM {source} s WHERE s.code = a.code AND s.time = a.first_time LIMIT 1
) f
CROSS JOIN LATERAL (
    SELECT s.name, s.close FROM {source} s WHERE s.code = a.code AND s.time = a.last_time LIMIT 1
) l;
